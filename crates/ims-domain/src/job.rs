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
    /// Only jobs of this image.
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
    /// The image it works on; `None` for sharing batches, which name their images in the
    /// payload.
    pub image_id: Option<ImageId>,
    /// Kind-specific parameters as JSON; each kind's use case decodes its own shape.
    pub payload: serde_json::Value,
    /// Percent done, 0–100: written by the heartbeat while running (never backwards),
    /// 100 on success.
    pub progress: u8,
    /// How many times a worker claimed it (each claim adds one). A job claimed more than
    /// `MAX_ATTEMPTS` times fails without running.
    pub attempts: u32,
    /// On `FAIL`: a stable code (`service::jobs::error_code`: `NotFound`,
    /// `InvalidInput`, `TooLarge`, `UnsupportedMedia`, `Gone`, `Unavailable`, `Internal`)
    /// that dialects map to their own codes.
    pub error_code: Option<String>,
    /// On `FAIL`: a reason safe to show users (internal errors hidden, credentials and
    /// query strings of URLs redacted).
    pub fail_reason: Option<String>,
    /// The node id holding the lease while `RUNNING`; `None` otherwise.
    pub lease_owner: Option<String>,
    /// While `RUNNING`: when the lease lapses unless renewed. While `INIT` after a
    /// transient failure: the earliest time it may be claimed again (the retry delay).
    pub lease_until: Option<OffsetDateTime>,
    /// When it was queued (UTC).
    pub created_at: OffsetDateTime,
    /// When a worker first claimed it (kept across retries); `None` while never run.
    pub begin_time: Option<OffsetDateTime>,
    /// When it reached `SUCCESS` or `FAIL`; `None` before.
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
            self.error_code = failed.error_code.clone();
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
        failed.error_code = Some("unsupported_media".into());
        failed.fail_reason = Some("not a disk".into());
        parent.fold_sub_jobs(&[job(JobStatus::Success, 100), failed]);
        assert_eq!(parent.status, JobStatus::Fail);
        assert_eq!(parent.error_code.as_deref(), Some("unsupported_media"));
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
