//! The image use cases. Dialects call exactly one method here per request.
//!
//! `ImageService` is declared in `metadata.rs` with the metadata use cases (create, get,
//! list, update, delete, (de)activate); each other file adds the use cases of one concern.

pub mod bucket_jobs;
pub mod encryption;
pub mod glance_download;
mod import;
mod lifecycle;
mod members;
pub(crate) mod metadata;
mod remote;
mod sharing;
pub mod stores;
pub mod tags;
pub mod tasks;
pub mod transfer;
pub mod upload_limits;

pub use bucket_jobs::{
    DataImageFromFile, ImageCopy, ImageExport, SystemImageFromFile, SystemImageType,
};
pub use glance_download::GlanceDownloadSettings;
pub use import::ImportRequest;
pub use lifecycle::NewImageFromUrl;
pub use metadata::{
    ImageChange, ImageService, ImageSettings, ImportMethod, JobLimits, Quotas, UrlFilter,
};
pub use sharing::{SharedPair, SharingChange, SharingLimits, SharingRecord};
pub use transfer::{Download, UploadSource};
pub use upload_limits::UploadLimits;
