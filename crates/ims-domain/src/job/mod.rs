//! Durable jobs: rows in the catalog, claimed under a lease, shown by every dialect.
//!
//! The engine knows no aggregate: a job names its subject as a `(kind, id)` pair, the
//! runner dispatches through a registry of [`JobHandler`]s, use cases put work on the
//! [`JobQueue`], and periodic upkeep runs through [`Sweeper`]s.

use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::image::ImageId;

pub mod handler;
pub mod lease;
pub mod maintenance;
pub mod queue;
pub mod repo;
pub mod runner;

pub use handler::{JobHandler, JobHandlers};
pub use maintenance::{Maintenance, Sweeper};
pub use queue::JobQueue;
pub use repo::JobRepo;
pub use runner::{JobRunner, MAX_ATTEMPTS, retry_delay};

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
        /// A Glance task of type `import` (`POST /v2/tasks`): a new image filled from a URL.
        TaskImport = "task_import",
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
        /// An image made from a volume's flattened content.
        ImageFromVolume = "image_from_volume",
        /// Make an image server's root volume and start its VM (Workspace
        /// `CREATE_SERVER`).
        ServerCreate = "server_create",
        /// Capture an image server's disk into a new image (`CREATE_SERVER_IMAGE`).
        ServerCapture = "server_capture",
        /// Remove image servers, their VMs and volumes (`DELETE_SERVER`).
        ServerDelete = "server_delete",
    }
}

crate::string_enum! {
    /// What kind of entity a job works on. Persisted: never rename a value.
    SubjectKind {
        /// An image (`ImageId`).
        Image = "image",
        /// An image server (`ServerId`).
        Server = "server",
    }
}

/// The entity a job works on: its kind and its id as that kind spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobSubject {
    /// Which kind of entity `id` names.
    pub kind: SubjectKind,
    /// The entity's id.
    pub id: String,
}

impl JobSubject {
    /// The image server `id`.
    pub fn server(id: crate::server::ServerId) -> Self {
        JobSubject {
            kind: SubjectKind::Server,
            id: id.to_string(),
        }
    }

    /// The image `id`.
    pub fn image(id: ImageId) -> Self {
        JobSubject {
            kind: SubjectKind::Image,
            id: id.to_string(),
        }
    }
}

/// An id type that can be a job's subject.
pub trait SubjectId: Sized {
    /// The subject kind this id names.
    const KIND: SubjectKind;
    /// Parses a stored subject id; `None` if it is not one.
    fn parse_subject(id: &str) -> Option<Self>;
}

impl SubjectId for crate::server::ServerId {
    const KIND: SubjectKind = SubjectKind::Server;
    fn parse_subject(id: &str) -> Option<Self> {
        crate::server::ServerId::parse(id)
    }
}

impl SubjectId for ImageId {
    const KIND: SubjectKind = SubjectKind::Image;
    fn parse_subject(id: &str) -> Option<Self> {
        ImageId::parse(id)
    }
}

crate::string_enum! {
    /// Why a job failed, for dialects to map to their own codes. Persisted: never rename
    /// a value (rows written before this enum hold the same spellings).
    JobErrorCode {
        /// Something the job needs does not exist (a bucket, an object, an image).
        NotFound = "NotFound",
        /// The job's input is invalid.
        InvalidInput = "InvalidInput",
        /// The data exceeds a size limit or a quota.
        TooLarge = "TooLarge",
        /// The data is not what it should be (format, safety checks).
        UnsupportedMedia = "UnsupportedMedia",
        /// The job's subject went away meanwhile (deleted, no longer importing).
        Gone = "Gone",
        /// A transient failure that outlasted the retries.
        Unavailable = "Unavailable",
        /// No handler on this node runs the job's kind.
        NoHandler = "NoHandler",
        /// Anything else.
        Internal = "Internal",
    }
}

impl JobErrorCode {
    /// The code of a failure.
    pub fn of(e: &Error) -> Self {
        match e {
            Error::NotFound { .. } => JobErrorCode::NotFound,
            Error::InvalidInput(_) | Error::InvalidField { .. } => JobErrorCode::InvalidInput,
            Error::TooLarge(_) | Error::QuotaExceeded(_) => JobErrorCode::TooLarge,
            Error::UnsupportedMedia(_) => JobErrorCode::UnsupportedMedia,
            Error::Gone(_) => JobErrorCode::Gone,
            Error::Unavailable(_) => JobErrorCode::Unavailable,
            _ => JobErrorCode::Internal,
        }
    }

    /// A stored code; one this version does not know reads as `Internal`.
    pub fn from_stored(code: &str) -> Self {
        code.parse().unwrap_or(JobErrorCode::Internal)
    }
}

crate::string_enum! {
    /// What a job listing can be sorted by (after which it is always sorted by creation
    /// time, then id, so pages are stable).
    JobSortKey {
        /// When the job was queued.
        CreatedAt = "created_at",
        /// The job id (random, so a stable order with no meaning).
        Id = "id",
        /// The status name, in text order.
        Status = "status",
        /// The kind name, in text order.
        Kind = "kind",
        /// The id of the project the job belongs to.
        Project = "project_id",
    }
}

/// One page of a job listing: which jobs, in which order, after which one.
#[derive(Debug, Clone, PartialEq)]
pub struct JobQuery {
    /// Kinds to include (at least one).
    pub kinds: Vec<JobKind>,
    /// Only this project's jobs; `None` for every project's.
    pub project_id: Option<String>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs whose subject is this image.
    pub image_id: Option<ImageId>,
    /// Sort key; creation time, then id, break ties.
    pub sort: JobSortKey,
    /// Ascending rather than descending.
    pub ascending: bool,
    /// The last job of the previous page.
    pub marker: Option<Job>,
    /// Jobs per page, as the dialect bounded it.
    pub limit: u32,
}

/// One job row.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// A random UUID, hyphenated lower case, made by [`Job::new`].
    pub id: String,
    /// What it does: decides which use case the runner calls and the payload's shape.
    pub kind: JobKind,
    /// Where it is in its lifecycle; `SUCCESS` and `FAIL` are final. The runner moves
    /// it; sharing batches are written `SUCCESS` at once.
    pub status: JobStatus,
    /// The project it belongs to, counts against (`[jobs] max_per_project`) and is shown
    /// to: the requesting caller's project (a job that makes a new image takes that
    /// image's owner, set from the same caller).
    pub project_id: String,
    /// The entity it works on, if any.
    pub subject: Option<JobSubject>,
    /// Kind-specific parameters.
    pub payload: serde_json::Value,
    /// Percent done, 0–100: written by the heartbeat while running (never backwards),
    /// 100 on success.
    pub progress: u8,
    /// How many times a worker claimed it (each claim adds one). A job claimed more than
    /// `MAX_ATTEMPTS` times fails without running.
    pub attempts: u32,
    /// Machine-readable error code, on failure.
    pub error_code: Option<JobErrorCode>,
    /// A reason safe to show users, on failure.
    pub fail_reason: Option<String>,
    /// The node id holding the lease while `RUNNING`; `None` otherwise.
    pub lease_owner: Option<String>,
    /// When the lease lapses (while running).
    pub lease_until: Option<OffsetDateTime>,
    /// The earliest time a waiting job may be claimed (backoff after a transient
    /// failure); `None` for at once.
    pub not_before: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When a worker first claimed it (kept across retries); `None` while never run.
    pub begin_time: Option<OffsetDateTime>,
    /// When it reached `SUCCESS` or `FAIL`; `None` before.
    pub end_time: Option<OffsetDateTime>,
    /// The node that must run it while that node is alive (an image server's VM runs
    /// there); `None` for any node.
    pub pinned_node: Option<String>,
    /// The node whose lapsed lease the latest claim took over (it died or stalled while
    /// running the job); `None` when the claim found the job waiting.
    pub taken_from: Option<String>,
}

impl Job {
    /// A new job waiting for a worker.
    pub fn new(
        kind: JobKind,
        project_id: &str,
        subject: Option<JobSubject>,
        payload: serde_json::Value,
        now: OffsetDateTime,
    ) -> Self {
        Job {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            status: JobStatus::Init,
            project_id: project_id.to_string(),
            subject,
            payload,
            progress: 0,
            attempts: 0,
            error_code: None,
            fail_reason: None,
            lease_owner: None,
            lease_until: None,
            not_before: None,
            created_at: now,
            begin_time: None,
            end_time: None,
            pinned_node: None,
            taken_from: None,
        }
    }
}

/// The payload key that makes a failed job remove the new image it was filling, instead
/// of leaving it (`queued` or `killed`) for its owner: creations that are all-or-nothing
/// (ZStack's AddImage and templates) must not leave a half-made image behind, whether or
/// not anyone polls the job.
pub const DISCARD_IMAGE_ON_FAILURE: &str = "discard_image_on_failure";

impl Job {
    /// Whether the job's image is removed when the job fails for good
    /// ([`DISCARD_IMAGE_ON_FAILURE`]).
    pub fn discards_image_on_failure(&self) -> bool {
        self.payload
            .get(DISCARD_IMAGE_ON_FAILURE)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// The image this job works on, if its subject is an image.
    pub fn image_id(&self) -> Option<ImageId> {
        self.subject_id()
    }

    /// The subject's id as `I`, if the subject is of `I`'s kind.
    pub fn subject_id<I: SubjectId>(&self) -> Option<I> {
        self.subject
            .as_ref()
            .filter(|s| s.kind == I::KIND)
            .and_then(|s| I::parse_subject(&s.id))
    }

    /// What a worker needs: the payload as `P`, and the subject's id as `I`. A job
    /// without them was written by a bug, so their absence is an internal error.
    pub fn decode<P: DeserializeOwned, I: SubjectId>(&self) -> Result<(P, I)> {
        let payload = serde_json::from_value(self.payload.clone()).map_err(|e| {
            Error::internal(format!("job {} ({}): bad payload: {e}", self.id, self.kind))
        })?;
        let id = self.subject_id().ok_or_else(|| {
            Error::internal(format!(
                "job {} ({}) has no {} subject",
                self.id,
                self.kind,
                I::KIND
            ))
        })?;
        Ok((payload, id))
    }
}

/// Where a job that spawned others keeps their ids in its payload.
pub const SUB_JOBS: &str = "sub_jobs";

impl Job {
    /// The ids of the jobs this one spawned (data images imported beside a system image).
    pub fn sub_job_ids(&self) -> Vec<String> {
        self.payload
            .get(SUB_JOBS)
            .and_then(|v| v.as_array())
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Folds the outcome of the jobs this one spawned into its own, as callers see it:
    /// it is done only when they all are, and it failed if any of them did.
    pub fn fold_sub_jobs(&mut self, subs: &[Job]) {
        if self.status != JobStatus::Success {
            return;
        }
        if subs
            .iter()
            .any(|s| matches!(s.status, JobStatus::Init | JobStatus::Running))
        {
            self.status = JobStatus::Running;
            self.end_time = None;
            let total: u32 = subs.iter().map(|s| u32::from(s.progress)).sum::<u32>() + 100;
            self.progress = (total / (subs.len() as u32 + 1)).min(99) as u8;
            return;
        }
        if let Some(failed) = subs.iter().find(|s| s.status == JobStatus::Fail) {
            self.status = JobStatus::Fail;
            self.error_code = failed.error_code;
            self.fail_reason = Some(format!(
                "A data image failed (job {}): {}",
                failed.id,
                failed.fail_reason.as_deref().unwrap_or("unknown reason")
            ));
        }
        if let Some(last) = subs.iter().filter_map(|s| s.end_time).max() {
            self.end_time = self.end_time.max(Some(last));
        }
    }
}

#[cfg(test)]
mod sub_job_tests {
    use super::*;

    fn job(status: JobStatus, progress: u8) -> Job {
        let mut j = Job::new(
            JobKind::DataImageFromFile,
            "p",
            None,
            serde_json::json!({}),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        j.status = status;
        j.progress = progress;
        j
    }

    #[test]
    fn a_parent_is_done_only_when_its_sub_jobs_are() {
        let mut parent = job(JobStatus::Success, 100);
        parent.end_time = Some(time::OffsetDateTime::UNIX_EPOCH);
        parent.fold_sub_jobs(&[job(JobStatus::Success, 100), job(JobStatus::Running, 40)]);
        assert_eq!(parent.status, JobStatus::Running);
        assert_eq!(parent.progress, 80);
        assert!(parent.end_time.is_none());
    }

    #[test]
    fn a_failed_sub_job_fails_the_parent_with_its_code() {
        let mut parent = job(JobStatus::Success, 100);
        let mut failed = job(JobStatus::Fail, 0);
        failed.error_code = Some(JobErrorCode::UnsupportedMedia);
        failed.fail_reason = Some("not a disk".into());
        parent.fold_sub_jobs(&[job(JobStatus::Success, 100), failed]);
        assert_eq!(parent.status, JobStatus::Fail);
        assert_eq!(parent.error_code, Some(JobErrorCode::UnsupportedMedia));
        assert!(parent.fail_reason.unwrap().contains("not a disk"));
    }

    #[test]
    fn a_parent_that_failed_or_runs_keeps_its_own_status() {
        for status in [JobStatus::Fail, JobStatus::Running, JobStatus::Init] {
            let mut parent = job(status, 10);
            parent.fold_sub_jobs(&[job(JobStatus::Success, 100)]);
            assert_eq!(parent.status, status);
        }
        let mut alone = job(JobStatus::Success, 100);
        alone.fold_sub_jobs(&[]);
        assert_eq!(alone.status, JobStatus::Success);
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    fn job(subject: Option<JobSubject>, payload: serde_json::Value) -> Job {
        Job::new(
            JobKind::ImageCopy,
            "p",
            subject,
            payload,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Copy {
        source: String,
    }

    #[test]
    fn decode_gives_the_payload_and_the_subject_id() {
        let id = ImageId::new();
        let j = job(
            Some(JobSubject::image(id)),
            serde_json::json!({"source": "s"}),
        );
        let (p, got): (Copy, ImageId) = j.decode().unwrap();
        assert_eq!((p.source.as_str(), got), ("s", id));
        assert_eq!(j.image_id(), Some(id));
    }

    #[test]
    fn decode_refuses_a_missing_subject_or_a_bad_payload() {
        let none = job(None, serde_json::json!({"source": "s"}));
        let err = none.decode::<Copy, ImageId>().unwrap_err();
        assert!(matches!(err, Error::Internal(ref m) if m.contains("no image subject")));
        let bad = job(
            Some(JobSubject::image(ImageId::new())),
            serde_json::json!({"nope": 1}),
        );
        let err = bad.decode::<Copy, ImageId>().unwrap_err();
        assert!(matches!(err, Error::Internal(ref m) if m.contains("bad payload")));
    }

    #[test]
    fn error_codes_keep_their_stored_spellings() {
        let cases = [
            (Error::UnsupportedMedia("x".into()), "UnsupportedMedia"),
            (Error::Gone("x".into()), "Gone"),
            (Error::TooLarge("x".into()), "TooLarge"),
            (Error::QuotaExceeded("x".into()), "TooLarge"),
            (Error::invalid("x"), "InvalidInput"),
            (Error::Unavailable("x".into()), "Unavailable"),
            (Error::internal("x"), "Internal"),
        ];
        for (e, stored) in cases {
            let code = JobErrorCode::of(&e);
            assert_eq!(code.as_str(), stored);
            assert_eq!(JobErrorCode::from_stored(stored), code);
        }
        assert_eq!(
            JobErrorCode::from_stored("SomethingNewer"),
            JobErrorCode::Internal
        );
    }
}
