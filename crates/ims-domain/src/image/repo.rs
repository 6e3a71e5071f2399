//! What the image aggregate needs from the catalog: images, their members, quotas and
//! leases.

use std::collections::BTreeSet;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;
use crate::image::listing::{ListQuery, ListScope};
use crate::image::member::{Member, MemberStatus};
use crate::image::{Image, ImageId, ImageStatus};
use crate::job::Job;

/// Per-project totals used by quotas and the usage API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Images that are not deleted.
    pub image_count: u64,
    /// Bytes of image data stored, plus bytes being uploaded.
    pub image_size: u64,
    /// Images currently staging or importing.
    pub uploading_count: u64,
}

/// A transfer's claim on its owner's `image_size_total` quota, for
/// [`ImageRepo::reserve_size`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeClaim<'a> {
    /// The image receiving data.
    pub image: ImageId,
    /// The status it must still be in (`saving`, `uploading` or `importing`).
    pub status: ImageStatus,
    /// The project whose quota it counts against.
    pub owner: &'a str,
    /// Bytes the image must be granted at least (received so far, or declared).
    pub need: u64,
    /// Bytes it would like (room for the next stretch of an undeclared stream).
    pub want: u64,
    /// The quota.
    pub limit: u64,
}

/// Who holds an image while data moves into it, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node id holding the lease.
    pub owner: String,
    /// When the lease lapses unless renewed.
    pub until: OffsetDateTime,
}

/// The catalog of images and their members.
#[async_trait]
pub trait ImageRepo: Send + Sync {
    /// Inserts a new image, and the job that works on it in the same transaction;
    /// `AlreadyExists` if the id was ever used.
    async fn insert(&self, image: &Image, job: Option<&Job>) -> Result<()>;
    /// Inserts new images, each with its job when it has one, in one transaction (an
    /// image imported together with its data images): all of them or none. With
    /// `max_images`, each owner's images that are not deleted or killed, these included,
    /// are counted inside that transaction while the owner's creates are serialised (a
    /// per-project lock row), and when there would be more than `max_images` nothing is
    /// written and the answer is `false`: parallel creates cannot exceed the quota.
    async fn insert_all(
        &self,
        batch: &[(Image, Option<Job>)],
        max_images: Option<u64>,
    ) -> Result<bool>;
    /// A cheap round trip to the catalog, for health checks.
    async fn ping(&self) -> Result<()>;
    /// Loads an image, whatever its status.
    async fn get(&self, id: ImageId) -> Result<Option<Image>>;
    /// Saves the whole aggregate if its status is still `expected` and its stored revision
    /// is still `image.version` (nobody saved it since it was read); `Conflict` otherwise.
    /// The stored revision then moves on by one. A job, when given, is inserted in the same
    /// transaction.
    async fn save(&self, image: &Image, expected: ImageStatus, job: Option<&Job>) -> Result<()>;
    /// Lists images for a scope.
    async fn list(&self, query: &ListQuery, scope: &ListScope) -> Result<Vec<Image>>;
    /// Searches images of a scope with generic conditions (fields of
    /// [`crate::image::search::FIELDS`]), in one statement; deleted and killed images
    /// are never found.
    async fn search(
        &self,
        query: &crate::query::Query,
        scope: &ListScope,
    ) -> Result<crate::query::Found<Image>>;
    /// Per-project usage.
    async fn usage(&self, owner: &str) -> Result<Usage>;
    /// Renews the worker lease on an image; `false` if `owner` no longer holds it.
    async fn renew_lease(&self, id: ImageId, owner: &str, until: OffsetDateTime) -> Result<bool>;
    /// Images in `statuses` holding a lease that lapsed before `now`, or (at start-up)
    /// one held by `restarted_owner`, a previous incarnation of this node.
    async fn abandoned(
        &self,
        statuses: &[ImageStatus],
        now: OffsetDateTime,
        restarted_owner: Option<&str>,
    ) -> Result<Vec<Image>>;
    /// The blob key and stores of every image that is not deleted and has data.
    async fn live_blobs(&self) -> Result<Vec<(String, BTreeSet<String>)>>;
    /// Each image that is not deleted and holds the blob `key` as its data: the stores
    /// it lists (an empty set: the data is not placed in a store yet) and the stores an
    /// import is copying it into (`os_glance_importing_to_stores`).
    async fn blob_holders(&self, key: &str) -> Result<Vec<(BTreeSet<String>, BTreeSet<String>)>>;
    /// Records `store` as the store of active and deactivated images whose data no store
    /// lists (written before stores were recorded); returns how many.
    async fn place_unplaced(&self, store: &str) -> Result<u64>;

    /// The membership status of `project` in image `id`.
    async fn membership(&self, id: ImageId, project: &str) -> Result<Option<MemberStatus>>;
    /// All members of an image.
    async fn members(&self, id: ImageId) -> Result<Vec<Member>>;
    /// Adds a member; `Conflict` if present.
    async fn add_member(&self, member: &Member) -> Result<()>;
    /// Updates a member's status.
    async fn update_member(&self, member: &Member) -> Result<()>;
    /// Removes a member; `NotFound` if absent.
    async fn remove_member(&self, id: ImageId, project: &str) -> Result<()>;
    /// Writes one sharing batch and its finished job in one transaction: all or nothing.
    /// Members to add that exist already are left as they are; members to remove that do
    /// not exist are ignored.
    async fn apply_sharing(&self, batch: &SharingBatch, job: &Job) -> Result<()>;

    /// Reserves room for a transfer's data: records on the image (as its `size`, while
    /// it is still in `claim.status`) as much as fits under the quota beside everything
    /// else its owner stores or is transferring, up to `want`; `None`, and nothing
    /// recorded, when not even `need` fits. Claims of one owner are serialised, so
    /// parallel transfers cannot each take the same headroom. `Conflict` if the image
    /// left `claim.status`.
    async fn reserve_size(&self, claim: &SizeClaim<'_>) -> Result<Option<u64>>;
}

/// The writes of one IMS sharing batch, checked by the domain.
#[derive(Debug, Default)]
pub struct SharingBatch {
    /// Images whose metadata changes (private becomes shared), saved like
    /// [`ImageRepo::save`] with their status unchanged.
    pub saves: Vec<Image>,
    /// New members.
    pub add: Vec<Member>,
    /// Memberships to end: image and project.
    pub remove: Vec<(ImageId, String)>,
    /// Members whose status changes.
    pub update: Vec<Member>,
}
