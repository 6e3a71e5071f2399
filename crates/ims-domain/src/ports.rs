//! Ports: what the domain needs from storage. Each aggregate keeps its own ports beside
//! it (`image/repo.rs`, `identity/repo.rs`, `job/repo.rs`, `storage/`); this module
//! re-exports them under their old paths.

pub use crate::identity::repo::IdentityRepo;
pub use crate::image::repo::{ImageRepo, Lease, SharingBatch, SizeClaim, Usage};
pub use crate::job::repo::JobRepo;
pub use crate::storage::bucket::{BucketRepo, BucketSource, ObjectInfo};
pub use crate::storage::remote::RemoteSource;
pub use crate::storage::{BlobStore, BlobWriter, ByteRange, ByteStream, Converter, StoredBlob};
