//! Images made from volumes: the new image (importing) and its durable job are written
//! together; the worker streams the volume's flattened content through the one pipeline
//! (hashed, inspected) into the image and activates it. A job that fails for good leaves
//! the image killed.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::service::{NewImageFromVolume, VolumeService};
use super::{Volume, VolumeFormat, VolumeId, VolumeStatus};
use crate::context::now;
use crate::error::{Error, Result};
use crate::image::listing::{
    Column, Field, Filter, ListQuery, ListScope, MemberStatusFilter, Op, Value, VisibilityFilter,
};
use crate::image::service::ImageService;
use crate::image::service::bucket_jobs::check_naming;
use crate::image::{ContainerFormat, DiskFormat, Image, ImageId, ImageStatus, Visibility};
use crate::job::{Job, JobHandler, JobKind};

const GIB: u64 = 1 << 30;

/// What the worker needs besides the image (the job's subject).
#[derive(Debug, Serialize, Deserialize)]
struct FromVolume {
    volume: String,
    /// See [`crate::job::DISCARD_IMAGE_ON_FAILURE`].
    #[serde(default)]
    discard_image_on_failure: bool,
}

impl ImageService {
    /// The image a volume becomes (not yet written): private, of the volume's format and
    /// project, a data image unless an OS version makes it a system image, with
    /// `__data_origin` naming `origin` (`volume,<id>`, or `instance,<server id>` for a
    /// server's capture).
    pub(crate) fn image_from_volume(
        volume: &Volume,
        req: NewImageFromVolume,
        origin: String,
    ) -> Result<Image> {
        check_naming(&req.name, req.description.as_deref())?;
        if req.cmk_id.is_some() {
            return Err(Error::field(
                "cmk_id",
                "Images made from volumes cannot be encrypted yet.",
            ));
        }
        let id = req.image_id.unwrap_or_default();
        let mut image = Image::new(id, Some(volume.project_id.clone()), now());
        image.name = Some(req.name);
        image.visibility = Visibility::Private;
        image.disk_format = Some(match volume.format {
            VolumeFormat::Qcow2 => DiskFormat::Qcow2,
            VolumeFormat::Raw => DiskFormat::Raw,
        });
        image.container_format = Some(ContainerFormat::Bare);
        image.min_disk = volume.size.div_ceil(GIB).max(req.min_disk.unwrap_or(0));
        image.tags.extend(req.tags);
        image.properties.extend(req.properties);
        let env = if req.os_version.is_some() {
            "FusionCompute"
        } else {
            "DataImage"
        };
        let os_version = req
            .os_version
            .unwrap_or_else(|| crate::huawei::DEFAULT_OS_VERSION.to_string());
        let props = [
            ("__os_version", Some(os_version)),
            ("virtual_env_type", Some(env.to_string())),
            ("__data_origin", Some(origin)),
            ("__description", req.description.filter(|d| !d.is_empty())),
        ];
        for (key, value) in props {
            if let Some(value) = value {
                image.properties.insert(key.into(), value);
            }
        }
        Ok(image)
    }

    /// The image a volume becomes, and its job, written within the image quotas.
    pub(crate) async fn start_image_from_volume(
        &self,
        volume: &Volume,
        req: NewImageFromVolume,
    ) -> Result<(Image, Job)> {
        let discard_image_on_failure = req.discard_on_failure;
        let mut image = Self::image_from_volume(volume, req, data_origin(volume.id))?;
        let payload = serde_json::to_value(FromVolume {
            volume: volume.id.to_string(),
            discard_image_on_failure,
        })
        .map_err(Error::internal)?;
        let job = self
            .start_image_job(&mut image, JobKind::ImageFromVolume, payload)
            .await?;
        Ok((image, job))
    }
}

impl ImageService {
    /// The image being made from volume `id` right now, if any: an importing image whose
    /// `__data_origin` names the volume (the record the job's image carries of its source,
    /// written with the job in one transaction, so it holds exactly while the job may run).
    pub(crate) async fn image_reading_volume(&self, volume: &Volume) -> Result<Option<ImageId>> {
        let text = |v: String| Value::Text(v);
        let query = ListQuery {
            filters: vec![
                // Only the volume's own project makes images from it, so another
                // project's images cannot hold it.
                Filter::Compare(
                    Field::Column(Column::Owner),
                    Op::Eq,
                    text(volume.project_id.clone()),
                ),
                Filter::Compare(
                    Field::Column(Column::Status),
                    Op::Eq,
                    text(ImageStatus::Importing.to_string()),
                ),
                Filter::Compare(
                    Field::Property("__data_origin".into()),
                    Op::Eq,
                    text(data_origin(volume.id)),
                ),
            ],
            limit: 1,
            visibility: VisibilityFilter::All,
            member_status: MemberStatusFilter::All,
            os_hidden: None,
            ..ListQuery::default()
        };
        let found = self.repo.list(&query, &ListScope::Everything).await?;
        Ok(found.first().map(|image| image.id))
    }
}

/// The `__data_origin` of an image made from volume `id` (Huawei's `volume,<id>` form).
fn data_origin(id: VolumeId) -> String {
    format!("volume,{id}")
}

impl VolumeService {
    /// Refuses a change to volume `id` while an image server runs on it, or while an
    /// image is being made from it: the image must be the volume's content at one
    /// moment, and the job reads it until it ends.
    pub(crate) async fn check_not_being_read(&self, volume: &Volume) -> Result<()> {
        if let Some(server) = self.holders.holder(volume.id).await? {
            return Err(Error::Conflict(format!(
                "Volume {} is the root volume of image server {server}; delete the server instead.",
                volume.id
            )));
        }
        match self.images.image_reading_volume(volume).await? {
            Some(image) => Err(Error::Conflict(format!(
                "Volume {} is being read into image {image}; try again when that ends.",
                volume.id
            ))),
            None => Ok(()),
        }
    }

    /// The worker's part: the volume's content, backing folded in, into the image.
    async fn run_image_from_volume(&self, job: &Job) -> Result<()> {
        let (payload, image_id): (FromVolume, ImageId) = job.decode()?;
        let id = VolumeId::parse(&payload.volume)
            .ok_or_else(|| Error::internal("bad volume id in an image-from-volume job"))?;
        self.fill_from_volume(id, image_id).await
    }

    /// Streams ready volume `id`'s content, backing folded in, through the one pipeline
    /// into importing image `image_id`.
    pub(crate) async fn fill_from_volume(&self, id: VolumeId, image_id: ImageId) -> Result<()> {
        let volume = self
            .repo
            .get(id)
            .await?
            .filter(|v| v.status == VolumeStatus::Ready)
            .ok_or_else(|| Error::Gone(format!("Volume {id} is no longer ready")))?;
        let location = volume
            .location
            .as_deref()
            .ok_or_else(|| Error::Gone(format!("Volume {id} has no data")))?;
        let flat = self
            .store
            .read_flat(location, volume.format, volume.backing.as_ref())
            .await?;
        self.images
            .fill_image(image_id, flat.stream, Some(flat.size), |_, _| Ok(()))
            .await
    }
}

/// Runs the volume jobs.
pub struct VolumeJobs(pub VolumeService);

const VOLUME_KINDS: &[JobKind] = &[JobKind::ImageFromVolume];

#[async_trait]
impl JobHandler for VolumeJobs {
    fn kinds(&self) -> &[JobKind] {
        VOLUME_KINDS
    }

    async fn run(&self, job: &Job) -> Result<()> {
        match job.kind {
            JobKind::ImageFromVolume => self.0.run_image_from_volume(job).await,
            other => Err(Error::internal(format!("not a volume job kind: {other}"))),
        }
    }

    async fn on_failure(&self, job: &Job) -> Result<()> {
        match job.image_id() {
            Some(id) if job.discards_image_on_failure() => self.0.images.discard_unfilled(id).await,
            Some(id) => self.0.images.kill_importing(id).await,
            None => Ok(()),
        }
    }
}

/// Fails volumes whose create a crash cut short, at start-up and on every sweep.
pub struct VolumeSweeper(pub VolumeService);

#[async_trait]
impl crate::job::Sweeper for VolumeSweeper {
    fn name(&self) -> &'static str {
        "abandoned volume creates"
    }

    async fn recover(&self) -> Result<()> {
        self.sweep().await
    }

    async fn sweep(&self) -> Result<()> {
        let failed = self.0.fail_abandoned().await?;
        if failed > 0 {
            tracing::info!(volumes.failed = failed, "abandoned volume creates failed");
        }
        Ok(())
    }
}
