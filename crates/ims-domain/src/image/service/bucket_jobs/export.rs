//! Exporting an image to a bucket (Huawei IMS `POST /v1/cloudimages/{id}/file`): checked
//! at once, then a durable job streams the data, converted through the `Converter`
//! port when the requested format differs, into a new object (never overwriting one).

use serde::{Deserialize, Serialize};

use crate::bucket::{BucketCaller, BucketUse, ObjectRef};
use crate::error::{Error, Result};
use crate::image::service::metadata::{ImageService, now};
use crate::image::{DiskFormat, ImageId, ImageStatus};
use crate::job::{Job, JobKind};
use crate::pipeline::{self, Limits};
use crate::policy;
use crate::principal::Principal;

/// Formats IMS exports to.
const EXPORT_FORMATS: [&str; 4] = ["qcow2", "vhd", "zvhd", "vmdk"];

/// Where and how to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageExport {
    /// `bucket:object`, which must not exist yet.
    pub bucket_url: String,
    /// `qcow2`, `vhd`, `zvhd` or `vmdk`.
    pub file_format: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExportPayload {
    object: String,
    format: String,
    /// Queued by a cloud administrator: the worker writes the bucket with the same rights.
    #[serde(default)]
    admin: bool,
}

/// The inspector's name for a catalog disk format (what qemu gets told).
fn content_format(f: DiskFormat) -> Result<ims_format::Format> {
    ims_format::Format::parse(f.as_str())
        .ok_or_else(|| Error::NotSupported(format!("Images in {f} format cannot be exported.")))
}

impl ImageService {
    /// Checks the image (the caller's, active, not an ISO), the format and the target
    /// (bucket present, object absent), then records the export job.
    pub async fn export_image(&self, who: &Principal, id: &str, req: ImageExport) -> Result<Job> {
        let mut image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        if image.status != ImageStatus::Active || image.data.location.is_none() {
            return Err(Error::Conflict(format!(
                "Image {} is {} and cannot be exported",
                image.id, image.status
            )));
        }
        let source = image
            .disk_format
            .ok_or_else(|| Error::Conflict("The image has no disk format".into()))?;
        if source == DiskFormat::Iso {
            return Err(Error::NotSupported("ISO images cannot be exported.".into()));
        }
        if !EXPORT_FORMATS.contains(&req.file_format.as_str()) {
            return Err(Error::field(
                "file_format",
                "file_format must be qcow2, vhd, zvhd or vmdk.",
            ));
        }
        if req.file_format == "zvhd" && source != DiskFormat::Zvhd {
            return Err(Error::NotSupported(
                "Conversion to zvhd is not available.".into(),
            ));
        }
        let object = ObjectRef::parse(&req.bucket_url)
            .map_err(|e| Error::field("bucket_url", e.to_string()))?;
        let caller = BucketCaller::of(who);
        match self.buckets.head(&caller, BucketUse::Write, &object).await {
            Ok(_) => {
                return Err(Error::field(
                    "export_target",
                    format!("{object} already exists."),
                ));
            }
            Err(Error::NotFound {
                kind: crate::Entity::Object,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        let payload = serde_json::to_value(ExportPayload {
            object: object.to_string(),
            format: req.file_format,
            admin: caller.admin,
        })
        .map_err(Error::internal)?;
        self.check_job_slots(&who.project_id, 1).await?;
        image.updated_at = now();
        let (project, kind) = (&who.project_id, JobKind::ImageExport);
        self.enqueue(project, &image, ImageStatus::Active, kind, &payload)
            .await
    }

    /// The worker's part: the image's data, converted if needed, into a new object.
    pub(crate) async fn run_export(&self, job: &Job) -> Result<()> {
        let (payload, id): (ExportPayload, ImageId) = job.decode()?;
        let image = self
            .repo
            .get(id)
            .await?
            .filter(|i| i.status == ImageStatus::Active)
            .ok_or_else(|| Error::Gone("The image is no longer active".into()))?;
        let (Some(_), Some(disk)) = (image.data.location.as_ref(), image.disk_format) else {
            return Err(Error::Gone("The image has no data".into()));
        };
        let from = content_format(disk)?;
        let to = ims_format::Format::parse(&payload.format)
            .ok_or_else(|| Error::internal("bad export format"))?;
        let mut data = self.read_data(&image, None).await?;
        if from != to {
            data = self.converter.convert(data, from, to).await?;
        }
        // What goes out to the bucket, after any conversion.
        let data = crate::telemetry::count_bytes(data, crate::telemetry::DataPath::Export);
        let object = ObjectRef::parse(&payload.object)?;
        let caller = BucketCaller::of_job(job, payload.admin);
        let mut writer = self.buckets.create(&caller, &object).await?;
        let limits = Limits {
            cap: u64::MAX,
            expected: None,
        };
        match pipeline::pump(
            data,
            writer.as_mut(),
            self.settings.hash_algo,
            limits,
            false,
        )
        .await
        {
            Ok(_) => match crate::job::lease::confirm().await {
                Ok(()) => writer.commit().await,
                Err(e) => {
                    writer.abort().await;
                    Err(e)
                }
            },
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        }
    }
}
