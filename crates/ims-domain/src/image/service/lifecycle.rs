//! Images made from a URL in one call, and delayed deletion (soft delete, recover,
//! expunge): the lifecycle ZStack's image API is built on, kept here so that every
//! dialect gets the same rules.

use std::collections::BTreeMap;

use serde_json::Value;

use super::bucket_jobs::{FileImport, FileKind};
use super::import::{ImportRequest, check_uri};
use super::metadata::{ImageService, ImportMethod, now};
use crate::error::{Error, Result};
use crate::image::policy;
use crate::image::{Image, ImageId, ImageStatus};
use crate::job::JobKind;
use crate::principal::Principal;
use crate::storage::bucket::{BucketCaller, ObjectRef};

/// A new image whose data is fetched from a URL (web-download) by a durable job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImageFromUrl {
    /// The image's attributes, in Glance's vocabulary (Huawei `__` attributes and extra
    /// properties included); `id` chooses the id.
    pub attributes: BTreeMap<String, Value>,
    /// An http(s) URL, filtered like every web-download.
    pub url: String,
    /// The request id, shown on the job.
    pub request_id: Option<String>,
}

impl ImageService {
    /// Creates the image and starts its web-download import, both in one transaction:
    /// a refused URL, a full job queue or import being disabled leaves nothing behind,
    /// and so does a crash. All or nothing (ZStack's AddImage): if the download fails,
    /// the job removes the image. Returns the image (`importing`) and the job id.
    pub async fn create_from_url(
        &self,
        who: &Principal,
        req: NewImageFromUrl,
    ) -> Result<(Image, String)> {
        let mut image = Self::new_image(who, &req.attributes)?;
        image.require_formats()?;
        if !self
            .settings
            .import_methods
            .contains(&ImportMethod::WebDownload)
        {
            return Err(Error::invalid("Import method web-download is not enabled"));
        }
        check_uri(&req.url, &self.settings.url_filter)?;
        self.data_cap(image.owner.as_deref()).await?;
        self.check_job_slots(&who.project_id, 1).await?;
        let payload = serde_json::to_value(ImportRequest {
            method: ImportMethod::WebDownload.to_string(),
            uri: Some(req.url),
            request_id: req.request_id,
            user_id: Some(who.user_id.clone()),
            discard_image_on_failure: true,
            ..Default::default()
        })
        .map_err(Error::internal)?;
        let job = self
            .start_image_job(&mut image, JobKind::ImageImport, payload)
            .await?;
        Ok((image, job.id))
    }

    /// Removes an image whose all-or-nothing job failed for good (see
    /// [`crate::job::DISCARD_IMAGE_ON_FAILURE`]), if it still holds no data; an image
    /// that became anything else meanwhile is left alone.
    pub(crate) async fn discard_unfilled(&self, id: ImageId) -> Result<()> {
        let Some(mut image) = self.repo.get(id).await? else {
            return Ok(());
        };
        let expected = image.status;
        if !matches!(
            expected,
            ImageStatus::Queued | ImageStatus::Importing | ImageStatus::Killed
        ) {
            return Ok(());
        }
        let partial = image.data.take_blob();
        image.status = ImageStatus::Deleted;
        image.lease = None;
        image.updated_at = now();
        self.repo.save(&image, expected, None).await?;
        if let Some(held) = partial {
            self.release_blob(&held).await;
        }
        Ok(())
    }

    /// Creates the image and starts filling it from bucket object `object`
    /// (`bucket:object`, which the caller must be able to read) through the file-import
    /// job IMS's imports use; `kind` says what content fits (an ISO only for an ISO). The
    /// declared disk format must be the content's (as for every upload), and `min_disk`
    /// grows to the disk inside. The image and its job are written together. Returns the
    /// image (`importing`) and the job id.
    pub async fn create_from_object(
        &self,
        who: &Principal,
        attributes: BTreeMap<String, Value>,
        object: &str,
        kind: FileKind,
    ) -> Result<(Image, String)> {
        let mut image = Self::new_image(who, &attributes)?;
        let object = ObjectRef::parse(object)?;
        let caller = BucketCaller::of(who);
        self.check_import_object(&caller, &object, false).await?;
        let payload = serde_json::to_value(FileImport {
            object: object.to_string(),
            kind,
            quick: false,
            sub_jobs: Vec::new(),
            admin: caller.admin,
            fit_to_content: true,
            discard_image_on_failure: true,
        })
        .map_err(Error::internal)?;
        let job = self
            .start_image_job(&mut image, JobKind::DataImageFromFile, payload)
            .await?;
        Ok((image, job.id))
    }

    /// Delayed deletion: an image with data (`active` or `deactivated`) moves to
    /// `pending_delete`, keeping its data, until it is recovered or expunged. An image
    /// without data yet is deleted at once (nothing to keep). Deleting a
    /// `pending_delete` image again changes nothing.
    pub async fn soft_delete(&self, who: &Principal, id: &str) -> Result<()> {
        let image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        match image.status {
            ImageStatus::PendingDelete => Ok(()),
            ImageStatus::Active | ImageStatus::Deactivated => {
                if image.protected {
                    return Err(Error::Forbidden(format!(
                        "Image {} is protected and cannot be deleted.",
                        image.id
                    )));
                }
                self.move_status(who, id, image.status, ImageStatus::PendingDelete)
                    .await
            }
            _ => self.delete(who, id).await,
        }
    }

    /// `pending_delete → active`.
    pub async fn recover(&self, who: &Principal, id: &str) -> Result<Image> {
        let image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        if image.status != ImageStatus::PendingDelete {
            return Err(Error::Conflict(format!(
                "Image {} is not deleted; it is {}",
                image.id, image.status
            )));
        }
        self.move_status(who, id, ImageStatus::PendingDelete, ImageStatus::Active)
            .await?;
        self.get(who, id).await
    }

    /// Deletes a `pending_delete` image and its data for good.
    pub async fn expunge(&self, who: &Principal, id: &str) -> Result<()> {
        let image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        if image.status != ImageStatus::PendingDelete {
            return Err(Error::Conflict(format!(
                "Image {} must be deleted before it is expunged; it is {}",
                image.id, image.status
            )));
        }
        self.delete(who, id).await
    }

    /// One status change, compare-and-set on the status read.
    async fn move_status(
        &self,
        who: &Principal,
        id: &str,
        from: ImageStatus,
        to: ImageStatus,
    ) -> Result<()> {
        let mut image = self.get(who, id).await?;
        if image.status != from {
            return Err(Error::Conflict(format!(
                "Image {} changed status to {} meanwhile",
                image.id, image.status
            )));
        }
        image.transition(to)?;
        image.updated_at = now();
        self.repo.save(&image, from, None).await
    }
}
