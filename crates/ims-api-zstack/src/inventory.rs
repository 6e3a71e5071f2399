//! Inventories: ims images as ZStack ImageInventory, and ims's image and volume stores
//! as one backup storage and one primary storage.
//!
//! Attribute mapping (both ways, so an image made here is a normal ims image and every
//! ims image shows here): `mediaType` DataVolumeTemplate ↔ `virtual_env_type=DataImage`,
//! ISO ↔ `virtual_env_type=IsoImage` (or an `iso` disk format), RootVolumeTemplate ↔
//! anything else; `platform` ↔ `__os_type`; `guestOsType` ↔ `__os_version`;
//! `description` ↔ `__description`; `architecture` ↔ `architecture`; `url`, `system` and
//! `virtio` ↔ `zstack_url`, `zstack_system`, `zstack_virtio`; `md5Sum` ↔ `checksum`;
//! `size` ↔ `virtual_size`; `actualSize` ↔ `size`.

use std::path::Path;

use ims_domain::image::{Image, ImageStatus};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::wire::{date, zs_uuid};
use crate::{ImageStoreView, ZStackSettings};

/// The uuid of the one backup storage (ims's image store); fixed so that every node and
/// every restart shows the same one.
pub(crate) const BACKUP_STORAGE_UUID: &str = "5c8a0ba5e8d84a8f9c4a3b0e2f1d7a61";
/// The uuid of the one primary storage (ims's volume store).
pub(crate) const PRIMARY_STORAGE_UUID: &str = "9e1f2c3d4b5a46e7a8b9c0d1e2f3a4b5";

/// ZStack's image status of an ims status.
pub(crate) fn status(s: ImageStatus) -> &'static str {
    match s {
        ImageStatus::Queued => "Creating",
        ImageStatus::Saving | ImageStatus::Uploading | ImageStatus::Importing => "Downloading",
        ImageStatus::Active | ImageStatus::Deactivated => "Ready",
        ImageStatus::PendingDelete | ImageStatus::Deleted => "Deleted",
        ImageStatus::Killed => "Error",
    }
}

/// The ims statuses a ZStack status stands for; `None` for an unknown name.
pub(crate) fn ims_statuses(s: &str) -> Option<&'static [&'static str]> {
    Some(match s {
        "Creating" => &["queued"],
        "Downloading" => &["saving", "uploading", "importing"],
        "Ready" => &["active", "deactivated"],
        "Deleted" => &["pending_delete"],
        "Error" => &["killed"],
        "Migrating" => &[],
        _ => return None,
    })
}

/// `virtual_env_type` of a media type; `None` for RootVolumeTemplate (ims's default).
pub(crate) fn env_type(media: &str) -> Option<&'static str> {
    match media {
        "DataVolumeTemplate" => Some("DataImage"),
        "ISO" => Some("IsoImage"),
        _ => None,
    }
}

pub(crate) fn media_type(img: &Image) -> &'static str {
    match img.properties.get("virtual_env_type").map(String::as_str) {
        Some("DataImage") => "DataVolumeTemplate",
        Some("IsoImage") => "ISO",
        _ if img.disk_format.map(|f| f.as_str()) == Some("iso") => "ISO",
        _ => "RootVolumeTemplate",
    }
}

fn flag(img: &Image, key: &str, default: bool) -> bool {
    match img.properties.get(key).map(String::as_str) {
        Some("true") => true,
        Some("false") => false,
        _ => default,
    }
}

/// An ImageInventory.
pub(crate) fn image(img: &Image, settings: &ZStackSettings) -> Value {
    let uuid = zs_uuid(&img.id.to_string());
    let st = status(img.status);
    let prop = |k: &str| img.properties.get(k).cloned();
    let install_path = img
        .data
        .location
        .as_ref()
        .map(|key| match &settings.image_store {
            ImageStoreView::Local(dir) => dir.join(key).display().to_string(),
            ImageStoreView::Remote(base) => format!("{base}{key}"),
        })
        .unwrap_or_default();
    let mut inv = json!({
        "uuid": uuid,
        "name": img.name.clone().unwrap_or_default(),
        "state": if img.status == ImageStatus::Deactivated { "Disabled" } else { "Enabled" },
        "status": st,
        "size": img.data.virtual_size.or(img.data.size).unwrap_or(0),
        "actualSize": img.data.size.unwrap_or(0),
        "url": prop("zstack_url").unwrap_or_default(),
        "mediaType": media_type(img),
        "guestOsType": prop("__os_version").unwrap_or_default(),
        "type": "zstack",
        "platform": prop("__os_type").unwrap_or_else(|| "Linux".into()),
        "architecture": prop("architecture").unwrap_or_else(|| "x86_64".into()),
        "format": img.disk_format.map(|f| f.as_str().to_string()).unwrap_or_default(),
        "system": flag(img, "zstack_system", false),
        "virtio": flag(img, "zstack_virtio", true),
        "createDate": date(img.created_at),
        "lastOpDate": date(img.updated_at),
        "backupStorageRefs": [{
            "imageUuid": uuid,
            "backupStorageUuid": BACKUP_STORAGE_UUID,
            "installPath": install_path,
            "status": st,
            "createDate": date(img.created_at),
            "lastOpDate": date(img.updated_at),
        }],
    });
    if let Some(obj) = inv.as_object_mut() {
        if let Some(d) = prop("__description") {
            obj.insert("description".into(), d.into());
        }
        if let Some(md5) = &img.data.checksum {
            obj.insert("md5Sum".into(), md5.clone().into());
        }
    }
    inv
}

/// Total and available bytes of the filesystem holding `dir` (0, 0 if unreadable).
// statvfs field types differ between platforms; `u64::from` is a no-op only on some.
#[allow(clippy::useless_conversion)]
fn capacity(dir: &Path) -> (u64, u64) {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            let block = u64::from(s.fragment_size());
            (
                u64::from(s.blocks()).saturating_mul(block),
                u64::from(s.blocks_available()).saturating_mul(block),
            )
        }
        Err(_) => (0, 0),
    }
}

fn started() -> String {
    date(OffsetDateTime::UNIX_EPOCH)
}

/// The BackupStorageInventory of ims's image store.
pub(crate) fn backup_storage(settings: &ZStackSettings) -> Value {
    let (total, available, url) = match &settings.image_store {
        ImageStoreView::Local(dir) => {
            let (total, available) = capacity(dir);
            (total, available, dir.display().to_string())
        }
        ImageStoreView::Remote(base) => (0, 0, base.clone()),
    };
    json!({
        "uuid": BACKUP_STORAGE_UUID,
        "name": "ims-image-store",
        "description": "the image store of ims",
        "url": url,
        "type": "ims",
        "state": "Enabled",
        "status": "Connected",
        "totalCapacity": total,
        "availableCapacity": available,
        "attachedZoneUuids": [],
        "createDate": started(),
        "lastOpDate": started(),
    })
}

/// The PrimaryStorageInventory of ims's volume store.
pub(crate) fn primary_storage(settings: &ZStackSettings) -> Value {
    // The volume directory may not exist until the first volume; its filesystem is the
    // data directory's.
    let dir = if settings.volume_dir.exists() {
        settings.volume_dir.as_path()
    } else {
        settings.volume_dir.parent().unwrap_or(Path::new("/"))
    };
    let (total, available) = capacity(dir);
    json!({
        "uuid": PRIMARY_STORAGE_UUID,
        "name": "ims-volume-store",
        "description": "the volume store of ims",
        "url": settings.volume_dir.display().to_string(),
        "mountPath": settings.volume_dir.display().to_string(),
        "type": "ims",
        "state": "Enabled",
        "status": "Connected",
        "totalCapacity": total,
        "availableCapacity": available,
        "totalPhysicalCapacity": total,
        "availablePhysicalCapacity": available,
        "systemUsedCapacity": total.saturating_sub(available),
        "attachedClusterUuids": [],
        "createDate": started(),
        "lastOpDate": started(),
    })
}

/// Keeps only `fields` of an inventory (`fields=` of a query); all when empty.
pub(crate) fn project(inv: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return inv;
    }
    match inv {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}
