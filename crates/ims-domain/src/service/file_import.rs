//! Images from files in buckets (Huawei IMS `POST /v1/cloudimages/dataimages/action`):
//! the request is validated and the bucket object checked at once; the image (queued →
//! importing) and its job are written in one transaction; a worker then streams the
//! object through the one pipeline, where it is hashed and inspected, and the image's
//! `disk_format` is what inspection found.

use serde::{Deserialize, Serialize};

use super::images::{ImageService, now};
use crate::bucket::ObjectRef;
use crate::error::{Error, Result};
use crate::image::{ContainerFormat, DiskFormat, Image, ImageId};
use crate::job::{Job, JobKind};
use crate::policy;
use crate::principal::Principal;

const GIB: u64 = 1 << 30;
/// `min_disk` of a data image, in GB (IMS: 40–2048).
const DATA_DISK_GB: std::ops::RangeInclusive<u64> = 40..=2048;

/// A data-disk image from a bucket file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataImageFromFile {
    /// Image name (1–255 characters).
    pub name: String,
    /// Free text (≤ 1024, no line breaks or angle brackets).
    pub description: Option<String>,
    /// `Linux` (default) or `Windows`.
    pub os_type: Option<String>,
    /// `bucket:object`.
    pub image_url: String,
    /// Minimum disk in GB, 40–2048; the file's virtual size must fit.
    pub min_disk: u64,
    /// Tags, as the image will carry them.
    pub tags: Vec<String>,
    /// A KMS key id; encryption is not available yet, so any key is refused.
    pub cmk_id: Option<String>,
}

/// What an image made from a file is for; it decides which content is acceptable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileKind {
    /// A data disk: any supported disk format, not an ISO.
    #[default]
    Data,
    /// A system disk (ECS or BMS): any supported disk format, not an ISO.
    System,
    /// An ISO image: the file must be an ISO.
    Iso,
}

/// What the job needs to know.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FileImport {
    pub(crate) object: String,
    #[serde(default)]
    pub(crate) kind: FileKind,
}

/// IMS's rules for a new image's name, description and (not yet available) KMS key.
pub(crate) fn check_naming(
    name: &str,
    description: Option<&str>,
    cmk_id: Option<&str>,
) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(Error::field(
            "name",
            "The image name must be 1 to 255 characters.",
        ));
    }
    if let Some(d) = description
        && (d.chars().count() > 1024 || d.contains(['\r', '\n', '<', '>']))
    {
        return Err(Error::field(
            "description",
            "The description is at most 1024 characters, without line breaks or angle brackets.",
        ));
    }
    if let Some(key) = cmk_id {
        return Err(Error::field(
            "cmk_id",
            format!("The KMS key {key} is unknown: image encryption is not available yet."),
        ));
    }
    Ok(())
}

fn check_request(req: &DataImageFromFile) -> Result<ObjectRef> {
    check_naming(&req.name, req.description.as_deref(), req.cmk_id.as_deref())?;
    if !matches!(
        req.os_type.as_deref(),
        None | Some("Linux") | Some("Windows")
    ) {
        return Err(Error::field("os_type", "os_type must be Linux or Windows."));
    }
    if !DATA_DISK_GB.contains(&req.min_disk) {
        return Err(Error::field(
            "min_disk",
            "min_disk of a data image must be 40 to 2048 (GB).",
        ));
    }
    ObjectRef::parse(&req.image_url).map_err(|e| Error::field("image_url", e.to_string()))
}

/// The disk format a stored image gets from what inspection found.
fn disk_format_of(found: ims_format::Format) -> Result<DiskFormat> {
    use ims_format::Format as F;
    Ok(match found {
        F::Raw | F::Gpt | F::Mbr => DiskFormat::Raw,
        F::Qcow2 => DiskFormat::Qcow2,
        F::Vhd => DiskFormat::Vhd,
        F::Vhdx => DiskFormat::Vhdx,
        F::Vmdk => DiskFormat::Vmdk,
        F::Vdi => DiskFormat::Vdi,
        F::Iso => DiskFormat::Iso,
        F::Zvhd => DiskFormat::Zvhd,
        F::Zvhd2 => DiskFormat::Zvhd2,
        F::Qcow | F::Qed | F::Luks => {
            return Err(Error::UnsupportedMedia(format!(
                "Image files in {found} format are not supported."
            )));
        }
    })
}

impl ImageService {
    /// Validates the request and the bucket object, then creates the image (importing)
    /// and its job together. Returns the job.
    pub async fn create_data_image(&self, who: &Principal, req: DataImageFromFile) -> Result<Job> {
        policy::check_writer(who)?;
        let object = check_request(&req)?;
        self.check_import_object(&object).await?;
        let mut image = Image::new(ImageId::new(), Some(who.project_id.clone()), now());
        image.name = Some(req.name);
        image.visibility = crate::image::Visibility::Private;
        image.min_disk = req.min_disk;
        image.container_format = Some(ContainerFormat::Bare);
        image.tags.extend(req.tags);
        let os_version = match req.os_type.as_deref() {
            Some("Windows") => "Windows(64 bit)",
            _ => crate::huawei::DEFAULT_OS_VERSION,
        };
        image
            .properties
            .insert("__os_version".into(), os_version.into());
        image
            .properties
            .insert("virtual_env_type".into(), "DataImage".into());
        image
            .properties
            .insert("__data_origin".into(), format!("file,{object}"));
        if let Some(d) = req.description.filter(|d| !d.is_empty()) {
            image.properties.insert("__description".into(), d);
        }
        let payload = serde_json::to_value(FileImport {
            object: object.to_string(),
            kind: FileKind::Data,
        })
        .map_err(Error::internal)?;
        self.start_image_job(&mut image, JobKind::DataImageFromFile, payload)
            .await
    }

    /// An object an image may be imported from: present, non-empty, Standard, not larger
    /// than `max_import_file`.
    pub(crate) async fn check_import_object(&self, object: &ObjectRef) -> Result<()> {
        let info = self.buckets.head(object).await?;
        if info.storage_class != "STANDARD" {
            return Err(Error::field(
                "storage_class",
                "The object's storage class must be Standard.",
            ));
        }
        if info.size == 0 {
            return Err(Error::NotFound {
                kind: "object",
                id: format!("{object} (empty)"),
            });
        }
        if info.size > self.settings.max_import_file {
            return Err(Error::TooLarge(format!(
                "The image file is larger than {} bytes.",
                self.settings.max_import_file
            )));
        }
        Ok(())
    }

    /// The worker's part for every image made from a file: stream the object through the
    /// pipeline; the image's format is what inspection found, it must suit the image's
    /// purpose (an ISO for an ISO image, and only then), and its virtual size must fit
    /// `min_disk`.
    pub(crate) async fn run_file_image(&self, job: &Job) -> Result<()> {
        let payload: FileImport =
            serde_json::from_value(job.payload.clone()).map_err(Error::internal)?;
        let id = job
            .image_id
            .ok_or_else(|| Error::internal("file import job without an image"))?;
        let object = ObjectRef::parse(&payload.object)?;
        let size = self.buckets.head(&object).await?.size;
        let stream = self.buckets.open(&object).await?;
        self.fill_image(id, stream, Some(size), |image, digests| {
            let found = digests
                .inspection
                .as_ref()
                .map_or(ims_format::Format::Raw, |r| r.format);
            match (payload.kind, found == ims_format::Format::Iso) {
                (FileKind::Iso, false) => {
                    return Err(Error::UnsupportedMedia(format!(
                        "An ISO image needs an ISO file; this file is {found}."
                    )));
                }
                (FileKind::Data | FileKind::System, true) => {
                    return Err(Error::UnsupportedMedia(
                        "An ISO file makes an ISO image (type IsoImage).".into(),
                    ));
                }
                _ => {}
            }
            image.disk_format = Some(disk_format_of(found)?);
            if digests
                .virtual_size
                .is_some_and(|v| v > image.min_disk * GIB)
            {
                return Err(Error::field(
                    "min_disk",
                    "min_disk is smaller than the disk inside the image file.",
                ));
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> DataImageFromFile {
        DataImageFromFile {
            name: "data".into(),
            description: None,
            os_type: None,
            image_url: "bkt:disk.qcow2".into(),
            min_disk: 40,
            tags: Vec::new(),
            cmk_id: None,
        }
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        assert!(check_request(&req()).is_ok());
        let field = |r: DataImageFromFile| match check_request(&r) {
            Err(Error::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(DataImageFromFile {
                min_disk: 39,
                ..req()
            }),
            "min_disk"
        );
        assert_eq!(
            field(DataImageFromFile {
                min_disk: 2049,
                ..req()
            }),
            "min_disk"
        );
        assert_eq!(
            field(DataImageFromFile {
                os_type: Some("BSD".into()),
                ..req()
            }),
            "os_type"
        );
        assert_eq!(
            field(DataImageFromFile {
                description: Some("a<b".into()),
                ..req()
            }),
            "description"
        );
        assert_eq!(
            field(DataImageFromFile {
                image_url: "bkt:../x".into(),
                ..req()
            }),
            "image_url"
        );
        assert_eq!(
            field(DataImageFromFile {
                cmk_id: Some("k".into()),
                ..req()
            }),
            "cmk_id"
        );
        assert_eq!(
            field(DataImageFromFile {
                name: String::new(),
                ..req()
            }),
            "name"
        );
    }
}
