//! Copying an image within the region (Huawei IMS `POST /v1/cloudimages/{id}/copy`): a
//! new image with the source's formats and attributes and, in O(1), the source's data:
//! the copy refers to the same blob (which lives until its last image or volume goes),
//! with the source's data key, or that key re-wrapped under the copy's `cmk_id`. Only a
//! plain source copied into an encrypted image is streamed (and encrypted) again.

use serde::{Deserialize, Serialize};

use super::file_import::check_naming;
use crate::error::{Error, Result};
use crate::image::service::encryption::{CMK_ATTRIBUTE, ENCRYPTED_ATTRIBUTE};
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
    /// The KMS key the copy is encrypted under; without it, the copy keeps the source's
    /// encryption (or its lack).
    pub cmk_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CopyPayload {
    source: String,
    /// The copy shares the source's blob (same data key); otherwise it is streamed.
    /// Absent in copies queued before sharing existed: those are streamed.
    #[serde(default)]
    share: bool,
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
        check_naming(&req.name, req.description.as_deref())?;
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
        let share = self
            .copy_sealing(&source, &mut copy, req.cmk_id.as_deref())
            .await?;
        let payload = serde_json::to_value(CopyPayload {
            source: source.id.to_string(),
            share,
        })
        .map_err(Error::internal)?;
        self.start_image_job(&mut copy, JobKind::ImageCopy, payload)
            .await
    }

    /// Decides the copy's encryption: the source's, or the source's data key re-wrapped
    /// under `cmk_id` (both share the blob), or a new data key for a plain source copied
    /// under `cmk_id` (streamed). Returns whether the copy shares the source's blob.
    async fn copy_sealing(
        &self,
        source: &Image,
        copy: &mut Image,
        cmk_id: Option<&str>,
    ) -> Result<bool> {
        for attribute in [CMK_ATTRIBUTE, ENCRYPTED_ATTRIBUTE] {
            copy.properties.remove(attribute);
        }
        let Some(cmk_id) = cmk_id else {
            if source.data.sealing.is_some() && copy.owner != source.owner {
                return Err(Error::Forbidden(
                    "An encrypted image can only be copied by its own project.".into(),
                ));
            }
            // The copy shares the data key: only while the source's key is enabled.
            self.check_readable(source).await?;
            copy.data.sealing = source.data.sealing.clone();
            if let Some(sealing) = &copy.data.sealing {
                copy.properties
                    .insert(CMK_ATTRIBUTE.into(), sealing.key_id.clone());
                copy.properties
                    .insert(ENCRYPTED_ATTRIBUTE.into(), "1".into());
            }
            return Ok(true);
        };
        let Some(sealing) = &source.data.sealing else {
            self.encrypt_under(copy, cmk_id).await?;
            return Ok(false);
        };
        if copy.owner != source.owner {
            return Err(Error::Forbidden(
                "An encrypted image can only be copied by its own project.".into(),
            ));
        }
        if sealing.key_id.eq_ignore_ascii_case(cmk_id) {
            return Err(Error::field(
                "cmk_id_unchanged",
                "The KMS key must differ from the key of the image.",
            ));
        }
        let owner = source.owner.as_deref().unwrap_or_default();
        let target = copy.owner.clone().unwrap_or_default();
        let keys = self.key_service()?;
        keys.check_usable(&target, cmk_id).await?;
        let rewrapped = keys
            .rewrap_image_key(owner, sealing, &target, cmk_id)
            .await?;
        copy.properties
            .insert(CMK_ATTRIBUTE.into(), rewrapped.key_id.clone());
        copy.properties
            .insert(ENCRYPTED_ATTRIBUTE.into(), "1".into());
        copy.data.sealing = Some(rewrapped);
        Ok(true)
    }

    /// The worker's part: the copy takes the source's blob (O(1)), or, for a plain source
    /// copied into an encrypted image, the source's data streamed into a fresh blob.
    pub(crate) async fn run_copy(&self, job: &Job) -> Result<()> {
        let (payload, id): (CopyPayload, ImageId) = job.decode()?;
        let source_id =
            ImageId::parse(&payload.source).ok_or_else(|| Error::internal("bad copy source"))?;
        let source = self.active_source(source_id, None).await?;
        if !payload.share {
            let stream = self.read_data(&source, None).await?;
            return self
                .fill_image(id, stream, source.data.size, |_, _| Ok(()))
                .await;
        }
        let location = source.data.location.clone().unwrap_or_default();
        // First the copy names the blob (so a deletion of the source from now on sees it
        // in use), then the source is checked again: if it went meanwhile, its deletion
        // may not have seen the copy and the blob cannot be trusted.
        let mut copy = self.importing(id).await?;
        if copy.data.location.as_deref() != Some(location.as_str()) {
            adopt_data(&mut copy, &source);
            copy.updated_at = now();
            crate::job::lease::confirm().await?;
            self.repo.save(&copy, ImageStatus::Importing, None).await?;
        }
        // The source as it is now: a store it lost meanwhile is not the copy's either.
        let source = self.active_source(source_id, Some(&location)).await?;
        self.activate(id, |current| {
            adopt_data(current, &source);
            Ok(())
        })
        .await
    }

    /// The active source image `id` (holding `location`, when given), or `Gone`.
    async fn active_source(&self, id: ImageId, location: Option<&str>) -> Result<Image> {
        self.repo
            .get(id)
            .await?
            .filter(|s| s.status == ImageStatus::Active && s.data.location.is_some())
            .filter(|s| location.is_none_or(|l| s.data.location.as_deref() == Some(l)))
            .ok_or_else(|| Error::Gone("The source image is no longer available".into()))
    }
}

/// The source's data, as the copy's own (its encryption stays the copy's).
fn adopt_data(copy: &mut Image, source: &Image) {
    let sealing = copy.data.sealing.take();
    copy.data = source.data.clone();
    copy.data.sealing = sealing;
}
