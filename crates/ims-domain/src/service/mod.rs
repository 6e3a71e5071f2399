//! Use cases. Dialects call exactly one method here per request.

pub mod attributes;
mod copy;
mod credentials;
pub mod data;
mod export;
mod file_import;
pub mod glance_download;
pub mod identity;
mod image_jobs;
mod images;
mod import;
pub mod job_handlers;
pub mod jobs;
mod members;
mod register;
mod remote;
mod sharing;
mod system_image;
pub mod tag_search;
pub mod tags;
pub mod tasks;
pub mod token_purge;
pub mod transfer;

pub use copy::ImageCopy;
pub use data::{Download, UploadSource};
pub use export::ImageExport;
pub use file_import::DataImageFromFile;
pub use glance_download::GlanceDownloadSettings;
pub use images::{
    ImageChange, ImageService, ImageSettings, ImportMethod, JobLimits, Quotas, UrlFilter,
};
pub use import::ImportRequest;
pub use sharing::{SharingChange, SharingLimits};
pub use system_image::{SystemImageFromFile, SystemImageType};
pub use transfer::UploadLimits;
