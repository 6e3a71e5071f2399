//! What every job that creates an image shares (bucket imports, copies): the image and
//! its job written together, and a worker step that fills the image through the one
//! pipeline and activates it, leaving no data behind when anything fails.

use super::data::{fresh_key, set_data};
use super::images::{ImageService, now};
use crate::error::{Error, Result};
use crate::image::{Image, ImageId, ImageStatus};
use crate::job::{Job, JobKind};
use crate::pipeline::Digests;
use crate::ports::ByteStream;

impl ImageService {
    /// Validates a new image, checks the count quota, and writes it (`importing`) together
    /// with the job that will fill it.
    pub(crate) async fn start_image_job(
        &self,
        image: &mut Image,
        kind: JobKind,
        payload: serde_json::Value,
    ) -> Result<Job> {
        self.finish_edit(image)?;
        self.check_count_quota(image.owner.as_deref(), 1).await?;
        let job = Self::importing_job(image, kind, payload)?;
        self.check_job_slots(&job.project_id, 1).await?;
        self.repo.insert(image, Some(&job)).await?;
        self.job_wakeup.notify_one();
        Ok(job)
    }

    /// Several new images of one owner and their jobs, written in one transaction.
    pub(crate) async fn start_image_jobs(&self, batch: Vec<(Image, Job)>) -> Result<()> {
        let owner = batch.first().and_then(|(i, _)| i.owner.clone());
        self.check_count_quota(owner.as_deref(), batch.len() as u64)
            .await?;
        if let Some((_, job)) = batch.first() {
            self.check_job_slots(&job.project_id, batch.len() as u64)
                .await?;
        }
        self.repo.insert_all(&batch).await?;
        self.job_wakeup.notify_one();
        Ok(())
    }

    /// Moves a new, validated image to `importing` and makes the job that will fill it.
    pub(crate) fn importing_job(
        image: &mut Image,
        kind: JobKind,
        payload: serde_json::Value,
    ) -> Result<Job> {
        image.transition(ImageStatus::Importing)?;
        let owner = image.owner.clone().unwrap_or_default();
        Ok(Job::new(kind, &owner, Some(image.id), payload, now()))
    }

    /// Streams `data` into a fresh blob of the importing image `id`, lets `complete`
    /// check the result and adjust the image, then activates it. On any failure the new
    /// blob is deleted. Idempotent: a re-run writes another fresh key, and an abandoned
    /// one is collected as an orphan.
    pub(crate) async fn fill_image(
        &self,
        id: ImageId,
        data: ByteStream,
        expected_size: Option<u64>,
        complete: impl FnOnce(&mut Image, &Digests) -> Result<()>,
    ) -> Result<()> {
        let image = self.importing(id).await?;
        let key = fresh_key(id, "data");
        let digests = self
            .store_checked(&image, &key, data, expected_size)
            .await?;
        let stored = async {
            let mut current = self.importing(id).await?;
            set_data(&mut current, key.clone(), &digests);
            complete(&mut current, &digests)?;
            current.transition(ImageStatus::Active)?;
            self.finish_edit(&mut current)?;
            self.repo.save(&current, ImageStatus::Importing, None).await
        }
        .await;
        if stored.is_err() {
            self.delete_blob(&key).await;
        }
        stored
    }

    /// An image still importing, or `Gone` if it was deleted meanwhile.
    pub(crate) async fn importing(&self, id: ImageId) -> Result<Image> {
        self.repo
            .get(id)
            .await?
            .filter(|i| i.status == ImageStatus::Importing)
            .ok_or_else(|| Error::Gone("The image is no longer importing".into()))
    }

    /// A job that failed for good leaves its image killed, without data.
    pub(crate) async fn kill_importing(&self, id: ImageId) -> Result<()> {
        let Ok(mut image) = self.importing(id).await else {
            return Ok(());
        };
        image.transition(ImageStatus::Killed)?;
        image.lease = None;
        image.updated_at = now();
        self.repo.save(&image, ImageStatus::Importing, None).await
    }
}
