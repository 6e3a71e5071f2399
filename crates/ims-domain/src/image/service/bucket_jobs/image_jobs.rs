//! What every job that creates an image shares (bucket imports, copies): the image and
//! its job written together, and a worker step that fills the image through the one
//! pipeline and activates it, leaving no data behind when anything fails.

use crate::error::{Error, Result};
use crate::image::service::metadata::{ImageService, now};
use crate::image::service::transfer::{fresh_key, set_data};
use crate::image::{Image, ImageId, ImageStatus};
use crate::job::{Job, JobKind, JobSubject};
use crate::pipeline::Digests;
use crate::ports::ByteStream;

/// What becomes of an importing image once its data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// It is active, its data placed in the default store.
    Activate,
    /// It stays importing, its data landed in the default store but not placed in any
    /// store yet: an import copies it to the stores asked for, then activates it.
    Land,
}

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
        let job = Self::importing_job(image, kind, payload)?;
        let batch = [(image.clone(), Some(job.clone()))];
        self.queue
            .enqueue_with(self.insert_within_quota(&batch))
            .await?;
        Ok(job)
    }

    /// Saves `image` (still `expected`) together with a new job of `kind` on it, asked
    /// for by `project`, and wakes a worker.
    pub(crate) async fn enqueue(
        &self,
        project: &str,
        image: &Image,
        expected: ImageStatus,
        kind: JobKind,
        payload: &impl serde::Serialize,
    ) -> Result<Job> {
        let payload = serde_json::to_value(payload).map_err(Error::internal)?;
        let job = Job::new(
            kind,
            project,
            Some(JobSubject::image(image.id)),
            payload,
            now(),
        );
        self.queue
            .enqueue_with(self.repo.save(image, expected, Some(&job)))
            .await?;
        Ok(job)
    }

    /// Several new images of one owner and their jobs, written in one transaction.
    pub(crate) async fn start_image_jobs(&self, batch: Vec<(Image, Job)>) -> Result<()> {
        let batch: Vec<_> = batch.into_iter().map(|(i, j)| (i, Some(j))).collect();
        self.queue
            .enqueue_with(self.insert_within_quota(&batch))
            .await
    }

    /// Moves a new, validated image to `importing` and makes the job that will fill it.
    pub(crate) fn importing_job(
        image: &mut Image,
        kind: JobKind,
        payload: serde_json::Value,
    ) -> Result<Job> {
        image.transition(ImageStatus::Importing)?;
        let owner = image.owner.clone().unwrap_or_default();
        Ok(Job::new(
            kind,
            &owner,
            Some(JobSubject::image(image.id)),
            payload,
            now(),
        ))
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
        complete: impl Fn(&mut Image, &Digests) -> Result<()>,
    ) -> Result<()> {
        let adopt = |_: &mut Image| Ok(());
        self.receive_into(id, data, expected_size, adopt, complete, Arrival::Activate)
            .await
    }

    /// Streams `data` into a fresh blob of the importing image `id` in the default store
    /// and records it there (`arrival`). For data that arrives with metadata of its own,
    /// `adopt` changes the image before the data is inspected (so the inspection checks
    /// the formats the image will have) and again when it is saved. The stored image
    /// changes only on success; on any failure the new blob is deleted.
    pub(crate) async fn receive_into(
        &self,
        id: ImageId,
        data: ByteStream,
        expected_size: Option<u64>,
        adopt: impl Fn(&mut Image) -> Result<()>,
        complete: impl Fn(&mut Image, &Digests) -> Result<()>,
        arrival: Arrival,
    ) -> Result<()> {
        let mut image = self.importing(id).await?;
        adopt(&mut image)?;
        let key = fresh_key(id, "data");
        let landing = self.stores.default_store();
        let data = crate::telemetry::count_bytes(data, crate::telemetry::DataPath::Import);
        let digests = self
            .store_checked(&image, &key, data, expected_size, landing)
            .await?;
        let placed = (arrival == Arrival::Activate).then_some(landing.id.as_str());
        let stored = self
            .finish_importing(id, arrival, |current| {
                adopt(current)?;
                set_data(current, key.clone(), &digests, placed);
                complete(current, &digests)
            })
            .await;
        if stored.is_err() {
            self.discard_landed(&key).await;
        }
        stored
    }

    /// Reloads the importing image `id`, lets `fill` record its data, and saves it
    /// `active`. A metadata edit saved in between (the revision moved) is not undone: the
    /// step is applied again to the fresh image.
    pub(crate) async fn activate(
        &self,
        id: ImageId,
        fill: impl Fn(&mut Image) -> Result<()>,
    ) -> Result<()> {
        self.finish_importing(id, Arrival::Activate, fill).await
    }

    /// [`Self::activate`], or with [`Arrival::Land`] the same save without leaving
    /// `importing`.
    pub(crate) async fn finish_importing(
        &self,
        id: ImageId,
        arrival: Arrival,
        fill: impl Fn(&mut Image) -> Result<()>,
    ) -> Result<()> {
        let mut attempt = 1;
        loop {
            let mut current = self.importing(id).await?;
            fill(&mut current)?;
            if arrival == Arrival::Activate {
                current.transition(ImageStatus::Active)?;
            }
            self.finish_edit(&mut current)?;
            crate::job::lease::confirm().await?;
            match self.repo.save(&current, ImageStatus::Importing, None).await {
                Err(Error::Conflict(_))
                    if attempt < crate::image::service::metadata::EDIT_ATTEMPTS =>
                {
                    attempt += 1
                }
                saved => return saved,
            }
        }
    }

    /// Loads image `id` if it is still `importing`; `Gone` if it was deleted or left
    /// that status meanwhile.
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
        // A copy may already name its source's blob; a killed image holds nothing.
        let named = image.data.take_blob();
        self.repo.save(&image, ImageStatus::Importing, None).await?;
        if let Some(held) = named {
            self.release_blob(&held).await;
        }
        Ok(())
    }
}
