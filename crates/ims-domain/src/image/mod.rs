//! The image aggregate, its status state machine and its vocabulary.

pub mod attributes;
pub mod huawei;
pub mod listing;
pub mod member;
pub mod policy;
pub mod repo;
pub mod search;
pub mod service;
pub mod tag_search;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};

/// An image id: a UUID, shown in lower-case hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(pub Uuid);

impl ImageId {
    /// A fresh random id.
    pub fn new() -> Self {
        ImageId(Uuid::new_v4())
    }

    /// Parses a UUID in any of the forms Glance accepts; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        // Glance's schema pattern: 8-4-4-4-12 hex digits, either case.
        let ok = s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        ok.then(|| Uuid::parse_str(s).ok().map(ImageId)).flatten()
    }
}

impl Default for ImageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

crate::string_enum! {
    /// The image lifecycle status (Glance's vocabulary, shared by every dialect).
    ImageStatus {
        /// Metadata exists, no data yet.
        Queued = "queued",
        /// Data is being uploaded directly.
        Saving = "saving",
        /// Data is available.
        Active = "active",
        /// An upload failed in a way that cannot be retried.
        Killed = "killed",
        /// Deleted; kept only so the id is never reused.
        Deleted = "deleted",
        /// Data is being (or has been) staged for an interoperable import.
        Uploading = "uploading",
        /// An import is running.
        Importing = "importing",
        /// Waiting for delayed deletion.
        PendingDelete = "pending_delete",
        /// Data exists but downloads are blocked.
        Deactivated = "deactivated",
    }
}

impl ImageStatus {
    /// Whether the state machine (reference section 2.2) allows `self → to`.
    pub fn can_become(self, to: ImageStatus) -> bool {
        use ImageStatus::*;
        matches!(
            (self, to),
            (Queued, Saving | Uploading | Importing | Active | Deleted)
                | (Saving, Active | Killed | Deleted | Queued)
                | (Uploading, Importing | Queued | Deleted)
                | (Importing, Active | Deleted | Queued | Killed)
                | (Active, PendingDelete | Deleted | Deactivated)
                | (Deactivated, Active | PendingDelete | Deleted)
                | (PendingDelete, Deleted | Active)
                | (Killed, Deleted)
        )
    }

    /// Checks a transition and names it in the error when it is refused.
    pub fn check_transition(self, to: ImageStatus) -> Result<()> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "Image status transition from {self} to {to} is not allowed"
            )))
        }
    }
}

crate::string_enum! {
    /// Who may see an image.
    Visibility {
        /// Everyone.
        Public = "public",
        /// The owner only.
        Private = "private",
        /// The owner and accepted members.
        Shared = "shared",
        /// Everyone who asks for community images.
        Community = "community",
    }
}

crate::string_enum! {
    /// The disk format of the image data.
    DiskFormat {
        /// Amazon kernel/ramdisk/machine images.
        Ami = "ami",
        /// Amazon ramdisk.
        Ari = "ari",
        /// Amazon kernel.
        Aki = "aki",
        /// Microsoft VHD.
        Vhd = "vhd",
        /// Microsoft VHDX.
        Vhdx = "vhdx",
        /// VMware VMDK.
        Vmdk = "vmdk",
        /// A raw disk.
        Raw = "raw",
        /// QEMU copy-on-write v2/v3.
        Qcow2 = "qcow2",
        /// VirtualBox.
        Vdi = "vdi",
        /// An ISO 9660 / UDF optical disk.
        Iso = "iso",
        /// Virtuozzo.
        Ploop = "ploop",
        /// Huawei's compressed VHD.
        Zvhd = "zvhd",
        /// Huawei's second compressed VHD format; the seed's default.
        Zvhd2 = "zvhd2",
    }
}

crate::string_enum! {
    /// The container format wrapping the disk.
    ContainerFormat {
        /// Amazon.
        Ami = "ami",
        /// Amazon ramdisk.
        Ari = "ari",
        /// Amazon kernel.
        Aki = "aki",
        /// No container.
        Bare = "bare",
        /// OVF package.
        Ovf = "ovf",
        /// OVA archive.
        Ova = "ova",
        /// Docker tarball.
        Docker = "docker",
        /// A compressed archive.
        Compressed = "compressed",
    }
}

/// Where an image's data lives in the blob store, and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageData {
    /// The blob key, when data exists: `<id>.data.<32 hex>`, or `<id>.staging.<32 hex>`
    /// for staged data (a fresh key for every attempt).
    pub location: Option<String>,
    /// Bytes stored; while a transfer runs, the bytes it reserved against the byte quota.
    pub size: Option<u64>,
    /// Virtual disk size from format inspection.
    pub virtual_size: Option<u64>,
    /// Hex md5 of the data (Glance `checksum`).
    pub checksum: Option<String>,
    /// The secure hash algorithm name (`os_hash_algo`).
    pub hash_algo: Option<String>,
    /// The secure hash hex digest (`os_hash_value`).
    pub hash_value: Option<String>,
    /// How the blob is encrypted at rest, when it is (an image with a customer's KMS
    /// key). Set before any byte is stored, and kept with the data it describes.
    pub sealing: Option<Sealing>,
    /// The image stores holding a copy of the blob (the same key in each). Empty while
    /// the data is only staged or still being copied by an import: it is then in the
    /// default store, and no store lists it yet.
    pub stores: BTreeSet<String>,
}

/// A blob an image held, taken from it to be released once the catalog no longer names
/// it (see [`ImageData::take_blob`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBlob {
    /// The key (the same in every store).
    pub key: String,
    /// The stores the image listed (empty: only the default store, unplaced data).
    pub stores: BTreeSet<String>,
}

impl ImageData {
    /// Takes the blob away from the image (its key and stores), for the caller to
    /// release after saving the image without it.
    pub fn take_blob(&mut self) -> Option<HeldBlob> {
        let key = self.location.take()?;
        Some(HeldBlob {
            key,
            stores: std::mem::take(&mut self.stores),
        })
    }
}

/// An encrypted blob's key: the KMS key its data key is wrapped under and the wrapped
/// data key (as [`crate::key::WrappedDataKey`] hex). The data key itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sealing {
    /// The KMS key (Huawei's `cmk_id`).
    pub key_id: String,
    /// The data key, wrapped under `key_id`.
    pub wrapped_key: String,
}

/// The image aggregate as the catalog stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Random, or chosen by the client on create; never reused (deleted rows stay).
    pub id: ImageId,
    /// Display name; not unique.
    pub name: Option<String>,
    /// Lifecycle status; moved only through [`Image::transition`], and saved by a
    /// compare-and-set on the status read.
    pub status: ImageStatus,
    /// Who may see it (`policy::can_see`); `shared` unless set.
    pub visibility: Visibility,
    /// While set, deleting the image is refused (`Forbidden`).
    pub protected: bool,
    /// Left out of listings unless a list asks for `os_hidden=true`.
    pub os_hidden: bool,
    /// The owning project's id: the creator's project; only admins change it. A public
    /// image must have one.
    pub owner: Option<String>,
    /// Disk format, required before data arrives.
    pub disk_format: Option<DiskFormat>,
    /// Container format, required before data arrives.
    pub container_format: Option<ContainerFormat>,
    /// Minimum disk in GB.
    pub min_disk: u64,
    /// Minimum RAM in MB.
    pub min_ram: u64,
    /// What is known about the data; cleared whenever the image is queued again.
    pub data: ImageData,
    /// Tags, kept as a set.
    pub tags: BTreeSet<String>,
    /// Extra string properties, including Huawei's `__` attributes.
    pub properties: BTreeMap<String, String>,
    /// Creation time (UTC).
    pub created_at: OffsetDateTime,
    /// Last change of metadata, status or data (UTC).
    pub updated_at: OffsetDateTime,
    /// The node moving data into the image (an upload or a stage), while it does.
    pub lease: Option<crate::ports::Lease>,
    /// The stored revision this copy was read at (0 for a new image). `ImageRepo::save`
    /// writes only over that revision, so of two concurrent edits the later one fails
    /// instead of silently undoing the first.
    pub version: u64,
    /// The API the image was created through (`glance`, `ims`, `zstack`, `console`…,
    /// [`crate::context::caller_api`]); `None` for images a job or the CLI made, and for
    /// those made before it was recorded. Written once, at creation.
    pub origin: Option<String>,
}

impl Image {
    /// A fresh queued image owned by `owner`, with Glance's defaults.
    pub fn new(id: ImageId, owner: Option<String>, now: OffsetDateTime) -> Self {
        Image {
            id,
            name: None,
            status: ImageStatus::Queued,
            visibility: Visibility::Shared,
            protected: false,
            os_hidden: false,
            owner,
            disk_format: None,
            container_format: None,
            min_disk: 0,
            min_ram: 0,
            data: ImageData::default(),
            tags: BTreeSet::new(),
            properties: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            lease: None,
            version: 0,
            origin: crate::context::caller_api().map(str::to_string),
        }
    }

    /// Moves to `to` if the state machine allows it; clears data facts when re-queued.
    pub fn transition(&mut self, to: ImageStatus) -> Result<()> {
        self.status.check_transition(to)?;
        if to == ImageStatus::Queued {
            self.data = ImageData::default();
        }
        self.status = to;
        Ok(())
    }

    /// Both formats must be set before data is uploaded, staged or imported.
    pub fn require_formats(&self) -> Result<()> {
        if self.disk_format.is_none() || self.container_format.is_none() {
            return Err(Error::invalid(
                "Properties disk_format, container_format must be set prior to saving data.",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_id_accepts_only_uuid_shapes() {
        assert!(ImageId::parse("4ca46bf1-5c61-48ff-b4f3-0ad4e5e3ba86").is_some());
        assert!(ImageId::parse("4CA46BF1-5C61-48FF-B4F3-0AD4E5E3BA86").is_some());
        assert!(ImageId::parse("4ca46bf15c6148ffb4f30ad4e5e3ba86").is_none());
        assert!(ImageId::parse("cirros").is_none());
        assert!(ImageId::parse("").is_none());
    }

    #[test]
    fn state_machine_matches_reference() {
        use ImageStatus::*;
        assert!(Queued.can_become(Saving));
        assert!(Saving.can_become(Queued));
        assert!(!Active.can_become(Saving));
        assert!(!Deleted.can_become(Active));
        assert!(Deactivated.can_become(Active));
        assert!(!Killed.can_become(Active));
        let err = Active.check_transition(Saving).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Image status transition from active to saving is not allowed"
        );
    }

    #[test]
    fn requeue_clears_data() {
        let now = OffsetDateTime::now_utc();
        let mut img = Image::new(ImageId::new(), None, now);
        img.transition(ImageStatus::Saving).unwrap();
        img.data.size = Some(5);
        img.transition(ImageStatus::Queued).unwrap();
        assert_eq!(img.data, ImageData::default());
    }
}
