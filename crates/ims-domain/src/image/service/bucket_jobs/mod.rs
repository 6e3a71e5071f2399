//! Huawei IMS's jobs between images and buckets: data and system images from a bucket
//! file, a file registered as a queued image's data, copies within the region, exports.

mod copy;
mod export;
mod file_import;
pub(crate) mod image_jobs;
mod register;
mod system_image;

pub use copy::ImageCopy;
pub use export::ImageExport;
pub(crate) use file_import::FileImport;
pub(crate) use file_import::check_naming;
pub use file_import::{DataImageFromFile, FileKind};
pub use system_image::{SystemImageFromFile, SystemImageType};
