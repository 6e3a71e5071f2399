//! Adapters for the domain's data ports: [`FsBlobStore`] (a local directory),
//! [`S3BlobStore`] (image blobs in an S3-compatible bucket), [`FsBuckets`] (directories standing in for object-storage buckets), [`S3Buckets`]
//! (buckets in S3-compatible storage or Huawei OBS), [`BucketRouter`] (each bucket to its
//! store) and [`HttpSource`] (web-download).

mod buckets;
mod fs;
mod http;
mod router;
mod s3;
mod s3_blobs;

pub use buckets::FsBuckets;
pub use fs::{FsBlobStore, private_dir};
pub use http::{HttpSettings, HttpSource};
pub use router::BucketRouter;
pub use s3::{Flavor, PART_SIZE, S3Buckets, S3Settings, Secret, WRITE_CONCURRENCY, storage_class};
pub use s3_blobs::{S3BlobSettings, S3BlobStore};
