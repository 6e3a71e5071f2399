//! Images from files in buckets (Huawei IMS `POST /v1/cloudimages/dataimages/action`):
//! the request is validated and the bucket object checked at once; the image (queued →
//! importing) and its job are written in one transaction; a worker then streams the
//! object through the one pipeline, where it is hashed and inspected, and the image's
//! `disk_format` is what inspection found.

use serde::{Deserialize, Serialize};

use crate::bucket::{BucketCaller, BucketUse, ObjectRef};
use crate::error::{Error, Result};
use crate::image::service::metadata::{ImageService, now};
use crate::image::{ContainerFormat, DiskFormat, Image, ImageId};
use crate::job::{Job, JobKind};
use crate::policy;
use crate::principal::Principal;

const GIB: u64 = 1 << 30;
/// `min_disk` of a data image, in GB (IMS: 40–2048).
const DATA_DISK_GB: std::ops::RangeInclusive<u64> = 40..=2048;
/// `min_disk` of a quick import, system or data, in GB (IMS: 1–1024).
pub(crate) const QUICK_DISK_GB: std::ops::RangeInclusive<u64> = 1..=1024;
/// The largest file a quick import takes (IMS: 1 TB); a normal import takes
/// `max_import_file`.
pub const QUICK_IMPORT_MAX_FILE: u64 = 1 << 40;
/// The longest name of a quickly imported image (IMS: 128; other imports 255).
const QUICK_NAME_CHARS: usize = 128;

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
    /// IMS's quick import: a RAW or ZVHD2 file up to 1 TB, `min_disk` 1–1024.
    pub quick: bool,
}

/// What an image made from a file is for; it decides which content is acceptable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
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
    /// A quick import: only RAW or ZVHD2 content.
    #[serde(default)]
    pub(crate) quick: bool,
    /// Jobs of data images imported together with this (system) image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) sub_jobs: Vec<String>,
    /// Queued by a cloud administrator: the worker reads the bucket with the same rights.
    #[serde(default)]
    pub(crate) admin: bool,
    /// The image takes its size from the content instead of IMS's rules: no file-name
    /// extension rule, and `min_disk` grows to fit the disk inside (ZStack's AddImage).
    #[serde(default)]
    pub(crate) fit_to_content: bool,
    /// See [`crate::job::DISCARD_IMAGE_ON_FAILURE`].
    #[serde(default)]
    pub(crate) discard_image_on_failure: bool,
}

/// IMS's rules for a new image's name and description. Also refuses any `cmk_id`
/// (`InvalidField`): KMS keys, and so image encryption, do not exist yet.
pub(crate) fn check_naming(name: &str, description: Option<&str>) -> Result<()> {
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
    Ok(())
}

/// A quick import's shorter name limit (the other rules are [`check_naming`]'s).
pub(crate) fn check_quick_name(name: &str) -> Result<()> {
    if name.chars().count() > QUICK_NAME_CHARS {
        return Err(Error::field(
            "name",
            "The name of a quickly imported image must be 1 to 128 characters.",
        ));
    }
    Ok(())
}

fn check_request(req: &DataImageFromFile) -> Result<ObjectRef> {
    check_naming(&req.name, req.description.as_deref())?;
    if req.quick {
        check_quick_name(&req.name)?;
    }
    if !matches!(
        req.os_type.as_deref(),
        None | Some("Linux") | Some("Windows")
    ) {
        return Err(Error::field("os_type", "os_type must be Linux or Windows."));
    }
    let (range, rule) = if req.quick {
        (
            QUICK_DISK_GB,
            "min_disk of a quick import must be 1 to 1024 (GB).",
        )
    } else {
        (
            DATA_DISK_GB,
            "min_disk of a data image must be 40 to 2048 (GB).",
        )
    };
    if !range.contains(&req.min_disk) {
        return Err(Error::field("min_disk", rule));
    }
    ObjectRef::parse(&req.image_url).map_err(|e| Error::field("image_url", e.to_string()))
}

/// A file whose name claims a disk format must hold that format: IMS reads the format
/// from the extension, so a `.qcow2` holding something else is refused rather than
/// silently stored as what it really is. Names without a format extension (`.img` is
/// used for raw and qcow2 alike) claim nothing.
fn check_extension(key: &str, found: ims_format::Format) -> Result<()> {
    use ims_format::Format as F;
    let name = key.rsplit('/').next().unwrap_or(key);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return Ok(());
    };
    let claimed: &[F] = match ext.to_ascii_lowercase().as_str() {
        "qcow2" => &[F::Qcow2],
        "qcow" => &[F::Qcow],
        "qed" => &[F::Qed],
        "vmdk" => &[F::Vmdk],
        "vhd" => &[F::Vhd],
        "vhdx" => &[F::Vhdx],
        "vdi" => &[F::Vdi],
        "iso" => &[F::Iso],
        "zvhd" => &[F::Zvhd],
        "zvhd2" => &[F::Zvhd2],
        "raw" => &[F::Raw, F::Gpt, F::Mbr],
        _ => return Ok(()),
    };
    if claimed.contains(&found) {
        return Ok(());
    }
    Err(Error::UnsupportedMedia(format!(
        "The file is named .{ext} but its content is {found}."
    )))
}

/// What a quick import accepts: raw disks (whole or partitioned) and ZVHD2.
fn quick_importable(found: ims_format::Format) -> bool {
    use ims_format::Format as F;
    matches!(found, F::Raw | F::Gpt | F::Mbr | F::Zvhd2)
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
        let (mut image, payload) = self.new_data_image(who, req).await?;
        self.start_image_job(&mut image, JobKind::DataImageFromFile, payload)
            .await
    }

    /// A data image checked and built, and its job's payload; nothing written yet.
    pub(crate) async fn new_data_image(
        &self,
        who: &Principal,
        req: DataImageFromFile,
    ) -> Result<(Image, serde_json::Value)> {
        let object = check_request(&req)?;
        let caller = BucketCaller::of(who);
        self.check_import_object(&caller, &object, req.quick)
            .await?;
        let mut image = Image::new(ImageId::new(), Some(who.project_id.clone()), now());
        if let Some(cmk_id) = &req.cmk_id {
            self.encrypt_under(&mut image, cmk_id).await?;
        }
        image.name = Some(req.name);
        image.visibility = crate::image::Visibility::Private;
        image.min_disk = req.min_disk;
        image.container_format = Some(ContainerFormat::Bare);
        image.tags.extend(req.tags);
        let os_version = match req.os_type.as_deref() {
            Some("Windows") => "Windows(64 bit)",
            _ => crate::huawei::DEFAULT_OS_VERSION,
        };
        let props = [
            ("__os_version", Some(os_version.to_string())),
            ("virtual_env_type", Some("DataImage".to_string())),
            ("__data_origin", Some(format!("file,{object}"))),
            ("__description", req.description.filter(|d| !d.is_empty())),
        ];
        for (key, value) in props {
            if let Some(value) = value {
                image.properties.insert(key.into(), value);
            }
        }
        let payload = serde_json::to_value(FileImport {
            object: object.to_string(),
            kind: FileKind::Data,
            quick: req.quick,
            sub_jobs: Vec::new(),
            admin: caller.admin,
            fit_to_content: false,
            discard_image_on_failure: false,
        })
        .map_err(Error::internal)?;
        Ok((image, payload))
    }

    /// An object an image may be imported from: in a bucket `caller` may read, present,
    /// non-empty, Standard, not larger than `max_import_file` (a quick import:
    /// [`QUICK_IMPORT_MAX_FILE`]).
    pub(crate) async fn check_import_object(
        &self,
        caller: &BucketCaller,
        object: &ObjectRef,
        quick: bool,
    ) -> Result<()> {
        let info = self.buckets.head(caller, BucketUse::Read, object).await?;
        if info.storage_class != "STANDARD" {
            return Err(Error::field(
                "storage_class",
                "The object's storage class must be Standard.",
            ));
        }
        if info.size == 0 {
            return Err(Error::NotFound {
                kind: crate::Entity::Object,
                id: format!("{object} (empty)"),
            });
        }
        let limit = if quick {
            QUICK_IMPORT_MAX_FILE
        } else {
            self.settings.max_import_file
        };
        if info.size > limit {
            return Err(Error::TooLarge(format!(
                "The image file is larger than {limit} bytes."
            )));
        }
        Ok(())
    }

    /// The worker's part for every image made from a file: stream the object through the
    /// pipeline; the image's format is what inspection found, it must suit the image's
    /// purpose (an ISO for an ISO image, and only then), and its virtual size must fit
    /// `min_disk`.
    pub(crate) async fn run_file_image(&self, job: &Job) -> Result<()> {
        let (payload, id): (FileImport, ImageId) = job.decode()?;
        let object = ObjectRef::parse(&payload.object)?;
        let caller = BucketCaller::of_job(job, payload.admin);
        let (size, stream) = self.buckets.read(&caller, &object).await?;
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
            if !payload.fit_to_content {
                check_extension(&object.key, found)?;
            }
            if payload.quick && !quick_importable(found) {
                return Err(Error::UnsupportedMedia(format!(
                    "Quick import takes RAW or ZVHD2 files; this file is {found}."
                )));
            }
            image.disk_format = Some(disk_format_of(found)?);
            if payload.fit_to_content {
                let needed = digests.virtual_size.unwrap_or(digests.size).div_ceil(GIB);
                image.min_disk = image.min_disk.max(needed);
            }
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
            quick: false,
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
                name: String::new(),
                ..req()
            }),
            "name"
        );
    }

    #[test]
    fn quick_imports_have_their_own_limits() {
        let quick = |min_disk, name: &str| DataImageFromFile {
            min_disk,
            name: name.into(),
            quick: true,
            ..req()
        };
        assert!(check_request(&quick(1, "q")).is_ok());
        assert!(check_request(&quick(1024, "q")).is_ok());
        assert!(check_request(&quick(1025, "q")).is_err());
        assert!(check_request(&quick(0, "q")).is_err());
        assert!(check_request(&quick(40, &"n".repeat(128))).is_ok());
        assert!(check_request(&quick(40, &"n".repeat(129))).is_err());
        assert!(
            check_request(&DataImageFromFile {
                min_disk: 2048,
                ..req()
            })
            .is_ok()
        );
    }

    #[test]
    fn a_format_extension_must_match_the_content() {
        use ims_format::Format as F;
        assert!(check_extension("d/disk.qcow2", F::Qcow2).is_ok());
        assert!(check_extension("disk.QCOW2", F::Qcow2).is_ok());
        assert!(check_extension("disk.raw", F::Gpt).is_ok());
        assert!(check_extension("disk.img", F::Qcow2).is_ok());
        assert!(check_extension("disk", F::Vmdk).is_ok());
        assert!(check_extension("v1.2/disk", F::Vmdk).is_ok());
        assert!(matches!(
            check_extension("disk.qcow2", F::Raw),
            Err(Error::UnsupportedMedia(m)) if m.contains(".qcow2") && m.contains("raw")
        ));
        assert!(check_extension("disk.vhd", F::Vhdx).is_err());
        assert!(check_extension("cd.iso", F::Raw).is_err());
    }

    #[test]
    fn quick_imports_take_raw_and_zvhd2_only() {
        use ims_format::Format as F;
        for ok in [F::Raw, F::Gpt, F::Mbr, F::Zvhd2] {
            assert!(quick_importable(ok), "{ok}");
        }
        for refused in [F::Qcow2, F::Vmdk, F::Vhd, F::Vhdx, F::Vdi, F::Zvhd, F::Iso] {
            assert!(!quick_importable(refused), "{refused}");
        }
    }
}
