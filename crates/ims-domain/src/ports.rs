//! Ports: what the domain needs from storage. Adapters live in other crates.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use time::OffsetDateTime;

use crate::error::Result;
use crate::identity::{Credential, Domain, IdentitySeed, Project, Role, TokenRecord, User};
use crate::image::{Image, ImageId, ImageStatus};
use crate::job::Job;
use crate::listing::{ListQuery, ListScope};
use crate::member::{Member, MemberStatus};

/// A stream of data chunks from a blob or a request body.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

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
    /// `Conflict` if the id was ever used.
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
    /// Loads an image, whatever its status.
    async fn get(&self, id: ImageId) -> Result<Option<Image>>;
    /// Saves the whole aggregate if its status is still `expected` and its stored revision
    /// is still `image.version` (nobody saved it since it was read); `Conflict` otherwise.
    /// The stored revision then moves on by one. A job, when given, is inserted in the same
    /// transaction.
    async fn save(&self, image: &Image, expected: ImageStatus, job: Option<&Job>) -> Result<()>;
    /// Lists images for a scope.
    async fn list(&self, query: &ListQuery, scope: &ListScope) -> Result<Vec<Image>>;
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
    /// Id, status and data location of every image that is not deleted.
    async fn live_images(&self) -> Result<Vec<(ImageId, ImageStatus, Option<String>)>>;

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

pub use crate::job::repo::JobRepo;

/// Identity storage.
#[async_trait]
pub trait IdentityRepo: Send + Sync {
    /// Loads a domain by id.
    async fn domain_by_id(&self, id: &str) -> Result<Option<Domain>>;
    /// Finds a domain by name.
    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>>;
    /// Stores `seed` in one transaction; `false`, with nothing written, when its domain
    /// exists already (bootstrapped before, or by another node at the same moment).
    async fn bootstrap(&self, seed: &IdentitySeed) -> Result<bool>;
    /// Creates a project; `Conflict` on a duplicate name in its domain.
    async fn insert_project(&self, project: &Project) -> Result<()>;
    /// Loads a project by id.
    async fn get_project(&self, id: &str) -> Result<Option<Project>>;
    /// Lists projects, optionally by exact name.
    async fn list_projects(&self, name: Option<&str>) -> Result<Vec<Project>>;
    /// Deletes a project and its role assignments.
    async fn delete_project(&self, id: &str) -> Result<bool>;
    /// Creates a user; `Conflict` on a duplicate name in its domain.
    async fn insert_user(&self, user: &User) -> Result<()>;
    /// Loads a user by id.
    async fn get_user(&self, id: &str) -> Result<Option<User>>;
    /// Finds a user by name within a domain.
    async fn find_user(&self, domain_id: &str, name: &str) -> Result<Option<User>>;
    /// Lists users, optionally by exact name.
    async fn list_users(&self, name: Option<&str>) -> Result<Vec<User>>;
    /// Replaces a user's password hash and revokes every token the user holds.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<bool>;
    /// Deletes a user, its assignments and its tokens.
    async fn delete_user(&self, id: &str) -> Result<bool>;
    /// Creates a role; `Conflict` on a duplicate name.
    async fn insert_role(&self, role: &Role) -> Result<()>;
    /// Loads a role by id.
    async fn get_role(&self, id: &str) -> Result<Option<Role>>;
    /// Lists roles, optionally by exact name.
    async fn list_roles(&self, name: Option<&str>) -> Result<Vec<Role>>;
    /// Deletes a role and its assignments.
    async fn delete_role(&self, id: &str) -> Result<bool>;
    /// Grants a role (idempotent).
    async fn grant(&self, project_id: &str, user_id: &str, role_id: &str) -> Result<()>;
    /// Revokes a role; `false` if it was not granted.
    async fn revoke(&self, project_id: &str, user_id: &str, role_id: &str) -> Result<bool>;
    /// Roles granted to a user on a project.
    async fn roles_of(&self, project_id: &str, user_id: &str) -> Result<Vec<Role>>;
    /// Stores a token.
    async fn insert_token(&self, token: &TokenRecord) -> Result<()>;
    /// Loads a token by digest.
    async fn get_token(&self, digest: &str) -> Result<Option<TokenRecord>>;
    /// Revokes a token; `false` if unknown.
    async fn revoke_token(&self, digest: &str) -> Result<bool>;
    /// Deletes tokens that expired before `now`.
    async fn purge_tokens(&self, now: OffsetDateTime) -> Result<u64>;
    /// Stores a new AK/SK credential.
    async fn insert_credential(&self, credential: &Credential) -> Result<()>;
    /// A credential by access key.
    async fn get_credential(&self, access: &str) -> Result<Option<Credential>>;
    /// A user's credentials.
    async fn list_credentials(&self, user_id: &str) -> Result<Vec<Credential>>;
    /// Deletes a credential; false if absent.
    async fn delete_credential(&self, access: &str) -> Result<bool>;
}

/// Fetches data from a URL for `web-download`.
#[async_trait]
pub trait RemoteSource: Send + Sync {
    /// Opens `url` after checking it, and every address it resolves to, against `filter`.
    /// Returns the body and its declared length.
    async fn open(
        &self,
        url: &str,
        filter: &crate::service::UrlFilter,
    ) -> Result<(ByteStream, Option<u64>)>;
}

/// An inclusive byte range `[start, end]` within a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a bucket says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its storage class as the store names it (`STANDARD`, `WARM`, `COLD`, `STANDARD_IA`,
    /// …); imports need `STANDARD`. Always set by `head`; empty in a listing whose store
    /// does not report classes there (S3/OBS through opendal).
    pub storage_class: String,
}

/// Object storage that image files are imported from and exported to. Names arrive
/// validated ([`crate::bucket::ObjectRef`]); a missing bucket is `NotFound { kind:
/// "bucket" }` and a missing object `NotFound { kind: "object" }`.
#[async_trait]
pub trait BucketSource: Send + Sync {
    /// An object's size and storage class.
    async fn head(&self, object: &crate::bucket::ObjectRef) -> Result<ObjectInfo>;
    /// Streams an object.
    async fn open(&self, object: &crate::bucket::ObjectRef) -> Result<ByteStream>;
    /// Writes a new object, visible only on commit; an existing one is a `Conflict`.
    async fn create(&self, object: &crate::bucket::ObjectRef) -> Result<Box<dyn BlobWriter>>;
    /// The objects of a bucket whose keys start with `prefix`, in key order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>>;
}

/// The catalog's record of bucket owners and shares (`ims bucket create --project`,
/// `share`, `unshare`, `[buckets.owners]`). Project ids are checked by the catalog: an
/// unknown one is `InvalidInput`.
#[async_trait]
pub trait BucketRepo: Send + Sync {
    /// Who may use `bucket`; `None` if the catalog does not know it.
    async fn bucket_grants(&self, bucket: &str) -> Result<Option<crate::bucket::BucketGrants>>;
    /// Records a new bucket; `Conflict` if it is recorded already.
    async fn insert_bucket(&self, bucket: &str, owner: Option<&str>) -> Result<()>;
    /// Records each of `buckets` the catalog does not know yet as `owner`'s; returns
    /// those it recorded.
    async fn adopt_buckets(&self, buckets: &[String], owner: &str) -> Result<Vec<String>>;
    /// Sets a bucket's owner, recording the bucket if it is new.
    async fn set_bucket_owner(&self, bucket: &str, owner: Option<&str>) -> Result<()>;
    /// Shares a recorded bucket read-only with a project (idempotent); `NotFound` if the
    /// bucket is not recorded.
    async fn share_bucket(&self, bucket: &str, project_id: &str) -> Result<()>;
    /// Ends a share; `false` if there was none.
    async fn unshare_bucket(&self, bucket: &str, project_id: &str) -> Result<bool>;
    /// Every recorded bucket, by name.
    async fn list_buckets(&self) -> Result<Vec<crate::bucket::BucketGrants>>;
}

/// Converts image data between disk formats. Implementations keep their scratch files
/// to themselves: the result is a stream, and nothing is left once it is dropped.
#[async_trait]
pub trait Converter: Send + Sync {
    /// Converts `data`, which must be `from`, into `to`.
    async fn convert(
        &self,
        data: ByteStream,
        from: ims_format::Format,
        to: ims_format::Format,
    ) -> Result<ByteStream>;
}

/// Image data storage. Keys are opaque, slash-free names chosen by the domain.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts writing a blob; nothing is visible under `key` until `commit`.
    async fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>>;
    /// Streams a blob, or part of it.
    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream>;
    /// Deletes a blob; a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Lists every committed key (for orphan collection).
    async fn keys(&self) -> Result<Vec<String>>;
    /// Removes partial writes left by a crashed process of this node.
    async fn recover(&self) -> Result<u64>;
}

/// A blob being written.
#[async_trait]
pub trait BlobWriter: Send {
    /// Appends a chunk.
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    /// Makes the data durable and visible under its key.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Discards everything written.
    async fn abort(self: Box<Self>);
}
