//! Registering a bucket file as the data of a queued image (Huawei IMS
//! `PUT /v1/cloudimages/{id}/upload`): the file must be what the image declares.

use serde::{Deserialize, Serialize};

use crate::bucket::{BucketCaller, ObjectRef};
use crate::error::{Error, Result};
use crate::image::service::metadata::ImageService;
use crate::image::{ImageId, ImageStatus};
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
        let payload = RegisterPayload {
            object: object.to_string(),
            admin: caller.admin,
        };
        self.check_job_slots(&who.project_id, 1).await?;
        let (project, kind) = (&who.project_id, JobKind::RegisterImage);
        self.enqueue(project, &image, ImageStatus::Queued, kind, &payload)
            .await
    }

    /// The worker's part: the object streams in and must be the declared format.
    pub(crate) async fn run_register(&self, job: &Job) -> Result<()> {
        let (payload, id): (RegisterPayload, ImageId) = job.decode()?;
        let object = ObjectRef::parse(&payload.object)?;
        let caller = BucketCaller::of_job(job, payload.admin);
        let (size, stream) = self.buckets.read(&caller, &object).await?;
        self.fill_image(id, stream, Some(size), |_, _| Ok(())).await
    }
}
