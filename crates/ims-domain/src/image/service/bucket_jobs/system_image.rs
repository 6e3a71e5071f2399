//! System-disk and ISO images from bucket files (Huawei IMS `POST /v2/cloudimages/action`
//! in its file mode). The same job as data images runs them; what differs is checked
//! here: the OS version, the image type, `min_disk` 1–1024, architecture and firmware.

use super::file_import::{DataImageFromFile, FileImport, FileKind, check_naming, check_quick_name};
use crate::bucket::{BucketCaller, ObjectRef};
use crate::error::{Error, Result};
use crate::image::service::metadata::{ImageService, now};
use crate::image::{ContainerFormat, Image, ImageId, Visibility};
use crate::job::{Job, JobKind};
use crate::policy;
use crate::principal::Principal;

/// `min_disk` of a system image, in GB.
const SYSTEM_DISK_GB: std::ops::RangeInclusive<u64> = 1..=1024;
/// Data-disk files imported together with a system image (IMS: at most 3).
const MAX_DATA_IMAGES: usize = 3;

/// What kind of machine the image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemImageType {
    /// A virtual machine (ECS, `FusionCompute`).
    Ecs,
    /// A bare-metal server (BMS, `Ironic`).
    Bms,
    /// An installation ISO.
    Iso,
}

impl SystemImageType {
    /// Parses IMS's `type` (default `ECS`).
    pub fn parse(name: Option<&str>) -> Result<Self> {
        match name.unwrap_or("ECS") {
            "ECS" | "FusionCompute" => Ok(SystemImageType::Ecs),
            "BMS" | "Ironic" => Ok(SystemImageType::Bms),
            "IsoImage" => Ok(SystemImageType::Iso),
            other => Err(Error::field(
                "type",
                format!("The image type {other} is invalid."),
            )),
        }
    }

    fn virtual_env_type(self) -> &'static str {
        match self {
            SystemImageType::Ecs => "FusionCompute",
            SystemImageType::Bms => "Ironic",
            SystemImageType::Iso => "IsoImage",
        }
    }
}

/// A system-disk or ISO image from a bucket file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemImageFromFile {
    /// Image name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// `__os_version`; required for ISO images.
    pub os_version: Option<String>,
    /// `bucket:object`.
    pub image_url: String,
    /// Minimum disk in GB, 1–1024.
    pub min_disk: u64,
    /// Minimum RAM in MB.
    pub min_ram: u64,
    /// Tags.
    pub tags: Vec<String>,
    /// A KMS key id (refused until encryption exists).
    pub cmk_id: Option<String>,
    /// ECS, BMS or ISO.
    pub image_type: SystemImageType,
    /// `x86` (default) or `arm`.
    pub architecture: Option<String>,
    /// `bios` or `uefi` (arm forces `uefi`).
    pub firmware: Option<String>,
    /// IMS's quick import (`quickimport`, or `is_quick_import`): a RAW or ZVHD2 file up
    /// to 1 TB; `os_version` is required.
    pub quick: bool,
    /// Data-disk images imported from their own files together with this one (≤ 3);
    /// each becomes an image with a job of its own, which this job's outcome includes.
    pub data_images: Vec<DataImageFromFile>,
}

fn check(req: &SystemImageFromFile) -> Result<ObjectRef> {
    check_naming(&req.name, req.description.as_deref())?;
    if req.data_images.len() > MAX_DATA_IMAGES {
        return Err(Error::field(
            "data_images",
            "At most 3 data images can be imported with a system image.",
        ));
    }
    if req.image_type == SystemImageType::Iso && !req.data_images.is_empty() {
        return Err(Error::field(
            "data_images",
            "An ISO image cannot carry data images.",
        ));
    }
    if req.quick {
        check_quick_name(&req.name)?;
        if req.image_type == SystemImageType::Iso {
            return Err(Error::field(
                "type",
                "An ISO file cannot be imported quickly.",
            ));
        }
    }
    if !SYSTEM_DISK_GB.contains(&req.min_disk) {
        return Err(Error::field(
            "min_disk",
            "min_disk of a system image must be 1 to 1024 (GB).",
        ));
    }
    if !matches!(
        req.architecture.as_deref(),
        None | Some("x86") | Some("arm")
    ) {
        return Err(Error::field(
            "architecture",
            "architecture must be x86 or arm.",
        ));
    }
    if !matches!(req.firmware.as_deref(), None | Some("bios") | Some("uefi")) {
        return Err(Error::field(
            "hw_firmware_type",
            "hw_firmware_type must be bios or uefi.",
        ));
    }
    match &req.os_version {
        Some(v) if v.is_empty() || v.chars().count() > 255 => Err(Error::field(
            "os_version",
            "os_version must be 1 to 255 characters.",
        )),
        None if req.image_type == SystemImageType::Iso => {
            Err(Error::field("os_version", "An ISO image needs os_version."))
        }
        None if req.quick => Err(Error::field(
            "os_version",
            "A quick import of a system image needs os_version.",
        )),
        _ => ObjectRef::parse(&req.image_url).map_err(|e| Error::field("image_url", e.to_string())),
    }
}

impl ImageService {
    /// Validates the request and the objects, then creates the image, its data images
    /// and their jobs in one transaction. Returns the system image's job, which lists
    /// the data images' jobs as its sub-jobs.
    pub async fn create_system_image(
        &self,
        who: &Principal,
        mut req: SystemImageFromFile,
    ) -> Result<Job> {
        policy::check_writer(who)?;
        let object = check(&req)?;
        let caller = BucketCaller::of(who);
        self.check_import_object(&caller, &object, req.quick)
            .await?;
        let mut batch = Vec::new();
        for data in std::mem::take(&mut req.data_images) {
            let (mut image, payload) = self.new_data_image(who, data).await?;
            self.finish_edit(&mut image)?;
            let job = Self::importing_job(&mut image, JobKind::DataImageFromFile, payload)?;
            batch.push((image, job));
        }
        let kind = match req.image_type {
            SystemImageType::Iso => FileKind::Iso,
            _ => FileKind::System,
        };
        let payload = serde_json::to_value(FileImport {
            object: object.to_string(),
            kind,
            quick: req.quick,
            sub_jobs: batch.iter().map(|(_, j)| j.id.clone()).collect(),
            admin: caller.admin,
            fit_to_content: false,
            discard_image_on_failure: false,
        })
        .map_err(Error::internal)?;
        let cmk_id = req.cmk_id.clone();
        let mut image = system_image(who, req, &object);
        if let Some(cmk_id) = &cmk_id {
            self.encrypt_under(&mut image, cmk_id).await?;
        }
        if batch.is_empty() {
            return self
                .start_image_job(&mut image, JobKind::SystemImageFromFile, payload)
                .await;
        }
        self.finish_edit(&mut image)?;
        let job = Self::importing_job(&mut image, JobKind::SystemImageFromFile, payload)?;
        batch.insert(0, (image, job.clone()));
        self.start_image_jobs(batch).await?;
        Ok(job)
    }
}

/// The new system or ISO image a checked request describes.
fn system_image(who: &Principal, req: SystemImageFromFile, object: &ObjectRef) -> Image {
    let mut image = Image::new(ImageId::new(), Some(who.project_id.clone()), now());
    image.name = Some(req.name);
    image.visibility = Visibility::Private;
    image.min_disk = req.min_disk;
    image.min_ram = req.min_ram;
    image.container_format = Some(ContainerFormat::Bare);
    image.tags.extend(req.tags);
    let arm = req.architecture.as_deref() == Some("arm");
    let firmware = if arm {
        Some("uefi".to_string())
    } else {
        req.firmware
    };
    let props = [
        ("__os_version", req.os_version),
        (
            "virtual_env_type",
            Some(req.image_type.virtual_env_type().to_string()),
        ),
        ("__data_origin", Some(format!("file,{object}"))),
        ("__description", req.description.filter(|d| !d.is_empty())),
        (
            "architecture",
            Some(req.architecture.unwrap_or_else(|| "x86".into())),
        ),
        ("__support_arm", arm.then(|| "true".to_string())),
        ("hw_firmware_type", firmware),
    ];
    for (key, value) in props {
        if let Some(value) = value {
            image.properties.insert(key.into(), value);
        }
    }
    image
}
