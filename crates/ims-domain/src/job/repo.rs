//! The port the job engine stores jobs through: a lease-based durable queue.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Job, JobKind, JobQuery, JobStatus};
use crate::error::Result;
use crate::image::ImageId;

/// The durable job queue.
#[async_trait]
pub trait JobRepo: Send + Sync {
    /// Claims a runnable job for `owner` under a lease until `until`: waiting (and past
    /// its `not_before`), or running under a lapsed lease. Fair between projects: the
    /// project with the fewest running jobs first, then the one served longest ago, then
    /// the oldest job. Kinds in `skip` are left alone (their per-kind limit is reached
    /// on this node), and so are jobs pinned to another node seen since `alive_since`.
    async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        skip: &[JobKind],
        alive_since: OffsetDateTime,
    ) -> Result<Option<Job>>;
    /// Records that `node` runs at `at`.
    async fn node_seen(&self, node: &str, at: OffsetDateTime) -> Result<()>;
    /// The nodes seen at or after `since`.
    async fn nodes_seen_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<std::collections::HashSet<String>>;
    /// Extends a lease and records progress; `false` if `owner` no longer holds it (the
    /// lease lapsed and another node claimed the job, or it was finished).
    async fn heartbeat(
        &self,
        id: &str,
        owner: &str,
        until: OffsetDateTime,
        progress: u8,
    ) -> Result<bool>;
    /// Stores a job that needs no worker (one recorded complete).
    async fn record(&self, job: &Job) -> Result<()>;
    /// Records the outcome (or, for a job to retry, puts it back to wait until its
    /// `not_before`); `false`, with nothing written, if `owner` no longer holds the lease.
    async fn finish(&self, job: &Job, owner: &str) -> Result<bool>;
    /// Expires every lease held by `owner` (a previous incarnation of this node).
    async fn expire_leases(&self, owner: &str) -> Result<u64>;
    /// Loads a job.
    async fn get(&self, id: &str) -> Result<Option<Job>>;
    /// Jobs of an image, newest first.
    async fn for_image(&self, image_id: ImageId) -> Result<Vec<Job>>;
    /// Jobs in `status`, oldest first.
    async fn in_status(&self, status: JobStatus) -> Result<Vec<Job>>;
    /// One page of jobs (Glance's task list).
    async fn list(&self, query: &JobQuery) -> Result<Vec<Job>>;
    /// Jobs waiting or running, of one project or (`None`) of all.
    async fn count_active(&self, project_id: Option<&str>) -> Result<u64>;
}
