//! The use cases' old paths. Use cases now live with their aggregate (`image::service`,
//! `identity::service`, `job`); this module re-exports them while the dialects move.

pub mod job_handlers;
pub mod jobs;
pub mod token_purge;

pub use crate::identity::service as identity;
pub use crate::image::service::transfer as data;
pub use crate::image::service::{
    DataImageFromFile, Download, GlanceDownloadSettings, ImageChange, ImageCopy, ImageExport,
    ImageService, ImageSettings, ImportMethod, ImportRequest, JobLimits, Quotas, SharedPair,
    SharingChange, SharingLimits, SharingRecord, SystemImageFromFile, SystemImageType,
    UploadLimits, UploadSource, UrlFilter, glance_download, stores, tags, tasks,
};
pub use crate::image::{attributes, tag_search};

// The runner still reaches the image service through these names.
use crate::image::service::metadata as images;
