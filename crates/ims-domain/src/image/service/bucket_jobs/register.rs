//! Registering a bucket file as the data of a queued image (Huawei IMS
//! `PUT /v1/cloudimages/{id}/upload`): the file must be what the image declares.

use serde::{Deserialize, Serialize};

use crate::bucket::{BucketCaller, ObjectRef};
use crate::error::{Error, Result};
use crate::image::ImageStatus;
use crate::image::service::metadata::ImageService;
use crate::job::{Job, JobKind};
use crate::policy;
use crate::principal::Principal;

#[derive(Debug, Serialize, Deserialize)]
struct RegisterPayload {
    object: String,
    /// Queued by a cloud administrator: the worker reads the bucket with the same rights.
    #[serde(default)]
    admin: bool,
}

impl ImageService {
    /// Checks the image (the caller's, `queued`, formats set) and the object, then moves
    /// the image to `importing` together with the job that fills it.
    pub async fn register_image(&self, who: &Principal, id: &str, image_url: &str) -> Result<Job> {
        let mut image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        if image.status != ImageStatus::Queued {
            return Err(Error::Conflict(format!(
                "Image {} is {}; only a queued image can be given a file",
                image.id, image.status
            )));
        }
        image.require_formats()?;
        let object =
            ObjectRef::parse(image_url).map_err(|e| Error::field("image_url", e.to_string()))?;
        let caller = BucketCaller::of(who);
        self.check_import_object(&caller, &object, false).await?;
        image.transition(ImageStatus::Importing)?;
        image.updated_at = crate::image::service::metadata::now();
        let payload = serde_json::to_value(RegisterPayload {
            object: object.to_string(),
            admin: caller.admin,
        })
        .map_err(Error::internal)?;
        self.check_job_slots(&who.project_id, 1).await?;
        let job = Job::new(
            JobKind::RegisterImage,
            &who.project_id,
            Some(image.id),
            payload,
            crate::image::service::metadata::now(),
        );
        self.repo
            .save(&image, ImageStatus::Queued, Some(&job))
            .await?;
        self.job_wakeup.notify_one();
        Ok(job)
    }

    /// The worker's part: the object streams in and must be the declared format.
    pub(crate) async fn run_register(&self, job: &Job) -> Result<()> {
        let payload: RegisterPayload =
            serde_json::from_value(job.payload.clone()).map_err(Error::internal)?;
        let id = job
            .image_id
            .ok_or_else(|| Error::internal("register job without an image"))?;
        let object = ObjectRef::parse(&payload.object)?;
        let caller = BucketCaller::of_job(job, payload.admin);
        let (size, stream) = self.buckets.read(&caller, &object).await?;
        self.fill_image(id, stream, Some(size), |_, _| Ok(())).await
    }
}
