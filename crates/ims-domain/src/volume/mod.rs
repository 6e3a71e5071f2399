//! The volume aggregate: block devices of a project, written in place, blank or made from
//! an image (a copy-on-write overlay on the image's blob, never a copy), and images made
//! back from them. Shared by every dialect (IMS `volume_id`, ZStack volumes, the image
//! server).

pub mod jobs;
pub mod repo;
pub mod search;
pub mod service;
pub mod store;

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::image::ImageId;

pub use repo::{
    Admission, BlobPins, NoHolders, VolumeHolders, VolumeQuery, VolumeRepo, VolumeUsage,
};
pub use service::{NewImageFromVolume, NewVolume, VolumePatch, VolumeService, VolumeSettings};
pub use store::{FlatData, StoreCapacity, VolumeStore};

/// A volume id: a UUID, shown hyphenated in lower case (ZStack spells it without dashes;
/// [`VolumeId::parse`] takes both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VolumeId(pub Uuid);

impl VolumeId {
    /// A fresh random id.
    pub fn new() -> Self {
        VolumeId(Uuid::new_v4())
    }

    /// Parses 8-4-4-4-12 hyphenated or 32 plain hex digits, either case; `None` for
    /// anything else (braces, URNs and other forms `Uuid::parse_str` also takes).
    pub fn parse(s: &str) -> Option<Self> {
        parse_uuid(s).map(VolumeId)
    }

    /// The 32-hex-digit form (ZStack's).
    pub fn simple(&self) -> String {
        self.0.simple().to_string()
    }
}

/// A UUID in 8-4-4-4-12 hyphenated or 32 plain hex digits, either case; `None` for
/// anything else (braces, URNs and other forms `Uuid::parse_str` also takes). The ids of
/// volumes and servers are spelt both ways across the dialects.
pub(crate) fn parse_uuid(s: &str) -> Option<Uuid> {
    let hyphenated = s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    let simple = s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit());
    (hyphenated || simple)
        .then(|| Uuid::parse_str(s).ok())
        .flatten()
}

impl Default for VolumeId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

crate::string_enum! {
    /// Where a volume is in its life. Persisted: never rename a value.
    VolumeStatus {
        /// Its data is being made.
        Creating = "creating",
        /// Usable.
        Ready = "ready",
        /// Deleted but recoverable: the data is kept (and still counts against quotas).
        Deleted = "deleted",
        /// Gone for good: the data is removed; the row stays so the id is never reused.
        Expunged = "expunged",
        /// Making its data failed; nothing is kept.
        Error = "error",
    }
}

impl VolumeStatus {
    /// Whether the state machine allows `self → to`:
    /// creating → ready | error | expunged (an operator cleaning up a create a crash cut
    /// short), ready → deleted, deleted → ready (recover) | expunged, error → expunged.
    pub fn can_become(self, to: VolumeStatus) -> bool {
        use VolumeStatus::*;
        matches!(
            (self, to),
            (Creating, Ready | Error | Expunged)
                | (Ready, Deleted)
                | (Deleted, Ready | Expunged)
                | (Error, Expunged)
        )
    }

    /// Whether a volume in this status holds data in the store (and counts against the
    /// project's quotas).
    pub fn holds_data(self) -> bool {
        matches!(
            self,
            VolumeStatus::Creating | VolumeStatus::Ready | VolumeStatus::Deleted
        )
    }
}

crate::string_enum! {
    /// How a volume's data is laid out. Persisted: never rename a value.
    VolumeFormat {
        /// QEMU copy-on-write: sparse, and the only layout a volume from an image has (an
        /// overlay whose backing file is the image's blob).
        Qcow2 = "qcow2",
        /// A plain sparse file, byte for byte the disk.
        Raw = "raw",
    }
}

impl VolumeFormat {
    /// The inspector's (and qemu's) name of the layout.
    pub fn content(self) -> ims_format::Format {
        match self {
            VolumeFormat::Qcow2 => ims_format::Format::Qcow2,
            VolumeFormat::Raw => ims_format::Format::Raw,
        }
    }
}

/// The image data an overlay reads what it has not written: a blob of the image store,
/// named by its key (never a path: the store adapter resolves it), and that blob's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backing {
    /// The image the blob belongs to (or belonged to: the blob outlives the image while a
    /// volume uses it).
    pub image_id: ImageId,
    /// The image store's key of the blob.
    pub blob_key: String,
    /// The blob's format, always passed to qemu explicitly.
    pub format: VolumeFormat,
}

/// One volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Its id.
    pub id: VolumeId,
    /// The owning project.
    pub project_id: String,
    /// Its name (1–255 characters; not unique).
    pub name: String,
    /// Free text (≤ 1024 characters).
    pub description: String,
    /// The virtual size a guest sees, in bytes.
    pub size: u64,
    /// Its layout.
    pub format: VolumeFormat,
    /// Where it is in its life.
    pub status: VolumeStatus,
    /// The image it was made from, if any.
    pub source_image: Option<ImageId>,
    /// The image blob it is an overlay on, if any.
    pub backing: Option<Backing>,
    /// Where its data lives: opaque to the domain, meaningful to the volume store only.
    pub location: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// When it was deleted (soft); `None` unless `deleted` or `expunged`.
    pub deleted_at: Option<OffsetDateTime>,
    /// The stored revision: every save compares it and moves it on.
    pub version: u64,
}

impl Volume {
    /// A new volume of `project`, `creating`, with no data yet.
    pub fn new(
        id: VolumeId,
        project_id: &str,
        name: String,
        size: u64,
        format: VolumeFormat,
        now: OffsetDateTime,
    ) -> Self {
        Volume {
            id,
            project_id: project_id.to_string(),
            name,
            description: String::new(),
            size,
            format,
            status: VolumeStatus::Creating,
            source_image: None,
            backing: None,
            location: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 0,
        }
    }

    /// Moves to `to` if the state machine allows it; otherwise a conflict naming both.
    pub fn transition(&mut self, to: VolumeStatus) -> Result<()> {
        if !self.status.can_become(to) {
            return Err(Error::Conflict(format!(
                "Volume {} is {} and cannot become {to}",
                self.id, self.status
            )));
        }
        self.status = to;
        Ok(())
    }
}

impl crate::policy::Owned for Volume {
    fn owner_project(&self) -> Option<&str> {
        Some(&self.project_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_in_both_spellings() {
        let id = VolumeId::new();
        assert_eq!(VolumeId::parse(&id.to_string()), Some(id));
        assert_eq!(VolumeId::parse(&id.simple()), Some(id));
        assert_eq!(VolumeId::parse(&id.to_string().to_uppercase()), Some(id));
        for bad in ["", "x", &format!("{{{id}}}"), &format!("urn:uuid:{id}")] {
            assert_eq!(VolumeId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_state_machine_allows_only_its_edges() {
        use VolumeStatus::*;
        let allowed = [
            (Creating, Ready),
            (Creating, Error),
            (Creating, Expunged),
            (Ready, Deleted),
            (Deleted, Ready),
            (Deleted, Expunged),
            (Error, Expunged),
        ];
        for from in VolumeStatus::ALL {
            for to in VolumeStatus::ALL {
                assert_eq!(
                    from.can_become(*to),
                    allowed.contains(&(*from, *to)),
                    "{from} -> {to}"
                );
            }
        }
        let mut v = Volume::new(
            VolumeId::new(),
            "p",
            "v".into(),
            1,
            VolumeFormat::Raw,
            OffsetDateTime::UNIX_EPOCH,
        );
        assert!(matches!(
            v.transition(Deleted),
            Err(crate::error::Error::Conflict(_))
        ));
        v.transition(Ready).unwrap();
        assert_eq!(v.status, Ready);
    }
}
