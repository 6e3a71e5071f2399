//! Durable jobs: rows in the catalog, claimed under a lease, shown by every dialect.

use time::OffsetDateTime;

use crate::image::ImageId;

crate::string_enum! {
    /// Job lifecycle (IMS's vocabulary; Glance tasks map it to pending/processing/…).
    JobStatus {
        /// Waiting for a worker.
        Init = "INIT",
        /// A worker holds the lease.
        Running = "RUNNING",
        /// Finished successfully.
        Success = "SUCCESS",
        /// Finished with an error.
        Fail = "FAIL",
    }
}

crate::string_enum! {
    /// What a job does. Persisted: never rename a value.
    JobKind {
        /// Glance interoperable import (glance-direct or web-download).
        ImageImport = "image_import",
        /// A data-disk image from a bucket file (IMS).
        DataImageFromFile = "data_image_from_file",
        /// A system-disk or ISO image from a bucket file (IMS).
        SystemImageFromFile = "system_image_from_file",
        /// A copy of an image within the region (IMS).
        ImageCopy = "image_copy",
        /// An export of an image to a bucket (IMS).
        ImageExport = "image_export",
        /// A bucket file registered as a queued image's data (IMS).
        RegisterImage = "register_image",
        /// Images shared with projects in one batch (IMS); recorded complete.
        AddMembers = "add_members",
        /// Sharing ended in one batch (IMS); recorded complete.
        RemoveMembers = "remove_members",
        /// Shares answered in one batch (IMS); recorded complete.
        UpdateMembers = "update_members",
    }
}

/// One job row.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Id (UUID).
    pub id: String,
    /// Kind.
    pub kind: JobKind,
    /// Status.
    pub status: JobStatus,
    /// The project that asked for it.
    pub project_id: String,
    /// The image it works on.
    pub image_id: Option<ImageId>,
    /// Kind-specific parameters.
    pub payload: serde_json::Value,
    /// 0–100.
    pub progress: u8,
    /// Attempts so far.
    pub attempts: u32,
    /// Machine-readable error code, on failure.
    pub error_code: Option<String>,
    /// A reason safe to show users, on failure.
    pub fail_reason: Option<String>,
    /// Node holding the lease while running.
    pub lease_owner: Option<String>,
    /// When the lease lapses.
    pub lease_until: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When a worker first started it.
    pub begin_time: Option<OffsetDateTime>,
    /// When it finished.
    pub end_time: Option<OffsetDateTime>,
}

impl Job {
    /// A new job waiting for a worker.
    pub fn new(
        kind: JobKind,
        project_id: &str,
        image_id: Option<ImageId>,
        payload: serde_json::Value,
        now: OffsetDateTime,
    ) -> Self {
        Job {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            status: JobStatus::Init,
            project_id: project_id.to_string(),
            image_id,
            payload,
            progress: 0,
            attempts: 0,
            error_code: None,
            fail_reason: None,
            lease_owner: None,
            lease_until: None,
            created_at: now,
            begin_time: None,
            end_time: None,
        }
    }
}
