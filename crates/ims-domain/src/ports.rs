//! Ports: what the domain needs from storage. Each aggregate keeps its own ports beside
//! it (`image/repo.rs`, `identity/repo.rs`, `storage/`); this module re-exports them under
//! their old paths and still holds the job queue.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;
use crate::image::ImageId;
use crate::job::{Job, JobStatus};

pub use crate::identity::repo::IdentityRepo;
pub use crate::image::repo::{ImageRepo, Lease, SharingBatch, SizeClaim, Usage};
pub use crate::storage::bucket::{BucketRepo, BucketSource, ObjectInfo};
pub use crate::storage::remote::RemoteSource;
pub use crate::storage::{BlobStore, BlobWriter, ByteRange, ByteStream, Converter};

/// The durable job queue.
#[async_trait]
pub trait JobRepo: Send + Sync {
    /// Claims a runnable job for `owner`: waiting (and past its retry time, kept in
    /// `lease_until`), or running under a lapsed lease. Fair between projects: the
    /// project with the fewest running jobs first, then the one served longest ago, then
    /// the oldest job. Kinds in `skip` are left alone (their per-kind limit is reached
    /// on this node).
    async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        skip: &[crate::job::JobKind],
    ) -> Result<Option<Job>>;
    /// Extends a lease; `false` if `owner` no longer holds it.
    async fn heartbeat(
        &self,
        id: &str,
        owner: &str,
        until: OffsetDateTime,
        progress: u8,
    ) -> Result<bool>;
    /// Stores a job that needs no worker (one recorded complete).
    async fn record(&self, job: &Job) -> Result<()>;
    /// Records the outcome; `false` if `owner` no longer holds the lease.
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
    async fn list(&self, query: &crate::job::JobQuery) -> Result<Vec<Job>>;
    /// Jobs waiting or running, of one project or (`None`) of all.
    async fn count_active(&self, project_id: Option<&str>) -> Result<u64>;
}
