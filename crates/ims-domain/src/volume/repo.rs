//! The ports volumes are stored through: the catalog ([`VolumeRepo`]) and the question
//! the image aggregate asks before it removes a blob ([`BlobPins`]).

use std::collections::HashSet;

use async_trait::async_trait;

use super::{Volume, VolumeId, VolumeStatus};
use crate::error::Result;

/// Per-project volume limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VolumeQuotas {
    /// Volumes holding data (creating, ready or deleted).
    pub count: Option<u64>,
    /// Sum of their virtual sizes, in bytes.
    pub size_total: Option<u64>,
}

/// What a quota-checked write decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Written.
    Admitted,
    /// Not written: the project would have more volumes than allowed.
    OverCount,
    /// Not written: the project's volumes would be larger in total than allowed.
    OverSize,
}

/// A project's volume usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VolumeUsage {
    /// Volumes holding data.
    pub count: u64,
    /// Their total virtual size, in bytes.
    pub size_total: u64,
}

/// One page of a volume listing, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeQuery {
    /// Only this project's volumes; `None` for every project's (administrators).
    pub project_id: Option<String>,
    /// Only volumes in this status; `None` for all but expunged ones.
    pub status: Option<VolumeStatus>,
    /// Only volumes of this exact name.
    pub name: Option<String>,
    /// The last volume of the previous page.
    pub marker: Option<VolumeId>,
    /// Volumes per page (bounded by the service).
    pub limit: u32,
}

/// The volume catalog. Every change to a stored volume is a compare-and-set on its
/// status and revision ([`Volume::version`]), which moves the revision on.
#[async_trait]
pub trait VolumeRepo: Send + Sync {
    /// Writes a new volume if its project stays within `quotas` with it; the count and
    /// total are taken inside the inserting transaction, serialised per project.
    async fn insert_within_quota(&self, volume: &Volume, quotas: VolumeQuotas)
    -> Result<Admission>;
    /// Loads a volume, whatever its status.
    async fn get(&self, id: VolumeId) -> Result<Option<Volume>>;
    /// Stores `volume` if it is still `expected` at revision `volume.version`; a
    /// `Conflict` otherwise.
    async fn save(&self, volume: &Volume, expected: VolumeStatus) -> Result<()>;
    /// [`VolumeRepo::save`] for a volume that grows: written only if the project's total
    /// size stays within `size_total`, checked like an insert.
    async fn save_within_quota(
        &self,
        volume: &Volume,
        expected: VolumeStatus,
        size_total: Option<u64>,
    ) -> Result<Admission>;
    /// One page of volumes.
    async fn list(&self, query: &VolumeQuery) -> Result<Vec<Volume>>;
    /// A project's usage.
    async fn usage(&self, project_id: &str) -> Result<VolumeUsage>;
    /// Whether a volume that holds data is an overlay on the blob `key`.
    async fn backs(&self, key: &str) -> Result<bool>;
    /// The blob keys volumes that hold data are overlays on.
    async fn backing_keys(&self) -> Result<HashSet<String>>;
    /// Volumes still `creating` that were last changed before `before`, oldest first.
    async fn creating_since(&self, before: time::OffsetDateTime) -> Result<Vec<Volume>>;
    /// The volumes (of `project`, or of all projects when `None`) meeting `query`'s
    /// conditions, expunged ones never, in one statement (see [`super::search::FIELDS`]).
    async fn search(
        &self,
        project: Option<&str>,
        query: &crate::query::Query,
    ) -> Result<crate::query::Found<Volume>>;
}

/// Blobs the image store must keep although no live image names them: the image
/// aggregate asks this before it removes image data.
#[async_trait]
pub trait BlobPins: Send + Sync {
    /// Whether something still reads the blob `key`.
    async fn pinned(&self, key: &str) -> Result<bool>;
    /// Every pinned key (for orphan collection).
    async fn pinned_keys(&self) -> Result<HashSet<String>>;
}

/// Who else holds volumes: a volume that is a running image server's root volume must not
/// be deleted, resized or expunged under its VM.
#[async_trait]
pub trait VolumeHolders: Send + Sync {
    /// The id of the image server that holds volume `id` now (running, or being
    /// captured), if any.
    async fn holder(&self, id: VolumeId) -> Result<Option<String>>;
}

/// Nothing holds volumes (a deployment without image servers; unit tests).
pub struct NoHolders;

#[async_trait]
impl VolumeHolders for NoHolders {
    async fn holder(&self, _id: VolumeId) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Nothing pins blobs (a deployment without volumes; unit tests).
pub struct NoPins;

#[async_trait]
impl BlobPins for NoPins {
    async fn pinned(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
    async fn pinned_keys(&self) -> Result<HashSet<String>> {
        Ok(HashSet::new())
    }
}

/// Volumes pin the blobs they are overlays on.
#[async_trait]
impl<T: VolumeRepo + ?Sized> BlobPins for T {
    async fn pinned(&self, key: &str) -> Result<bool> {
        self.backs(key).await
    }
    async fn pinned_keys(&self) -> Result<HashSet<String>> {
        self.backing_keys().await
    }
}
