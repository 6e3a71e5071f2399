//! Copying an image within the region (Huawei IMS `POST /v1/cloudimages/{id}/copy`): a
//! new image with the source's formats and attributes, filled by a durable job that
//! streams the source's data through the one pipeline (hashed and inspected again).

use serde::{Deserialize, Serialize};

use super::file_import::check_naming;
use crate::error::{Error, Result};
use crate::image::service::metadata::{ImageService, now};
use crate::image::{DiskFormat, Image, ImageId, ImageStatus, Visibility};
use crate::job::{Job, JobKind};
use crate::policy;
use crate::principal::Principal;

/// The largest image IMS copies (128 GB).
const MAX_COPY: u64 = 128 << 30;

/// What a copy is to be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCopy {
    /// The new image's name.
    pub name: String,
    /// Its description (replaces the source's).
    pub description: Option<String>,
    /// A KMS key id; encryption is not available yet, so any key is refused.
    pub cmk_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CopyPayload {
    source: String,
}

impl ImageService {
    /// Checks the source (the caller's own, active, with data, not an ISO) and creates the
    /// copy (importing) together with its job.
    pub async fn copy_image(
        &self,
        who: &Principal,
        source_id: &str,
        req: ImageCopy,
    ) -> Result<Job> {
        let source = self.get(who, source_id).await?;
        policy::check_modify(who, &source)?;
        check_naming(&req.name, req.description.as_deref(), req.cmk_id.as_deref())?;
        if source.status != ImageStatus::Active || source.data.location.is_none() {
            return Err(Error::Conflict(format!(
                "Image {} is {} and cannot be copied",
                source.id, source.status
            )));
        }
        if source.disk_format == Some(DiskFormat::Iso) {
            return Err(Error::NotSupported("ISO images cannot be copied.".into()));
        }
        if source.data.size.is_some_and(|s| s > MAX_COPY) {
            return Err(Error::TooLarge(
                "Only images up to 128 GB can be copied.".into(),
            ));
        }
        let mut copy = Image::new(ImageId::new(), Some(who.project_id.clone()), now());
        copy.name = Some(req.name);
        copy.visibility = Visibility::Private;
        copy.disk_format = source.disk_format;
        copy.container_format = source.container_format;
        copy.min_disk = source.min_disk;
        copy.min_ram = source.min_ram;
        copy.tags = source.tags.clone();
        copy.properties = source.properties.clone();
        copy.properties
            .insert("__originalimagename".into(), source.id.to_string());
        match req.description.filter(|d| !d.is_empty()) {
            Some(d) => copy.properties.insert("__description".into(), d),
            None => copy.properties.remove("__description"),
        };
        let payload = serde_json::to_value(CopyPayload {
            source: source.id.to_string(),
        })
        .map_err(Error::internal)?;
        self.start_image_job(&mut copy, JobKind::ImageCopy, payload)
            .await
    }

    /// The worker's part: stream the source's data into a fresh blob of the copy.
    pub(crate) async fn run_copy(&self, job: &Job) -> Result<()> {
        let (payload, id): (CopyPayload, ImageId) = job.decode()?;
        let source_id =
            ImageId::parse(&payload.source).ok_or_else(|| Error::internal("bad copy source"))?;
        let source = self
            .repo
            .get(source_id)
            .await?
            .filter(|s| s.status == ImageStatus::Active)
            .ok_or_else(|| Error::Gone("The source image is no longer available".into()))?;
        let location = source
            .data
            .location
            .clone()
            .ok_or_else(|| Error::Gone("The source image has no data".into()))?;
        let stream = self.blobs.read(&location, None).await?;
        self.fill_image(id, stream, source.data.size, |_, _| Ok(()))
            .await
    }
}
