//! The volume use cases. Dialects call exactly one method per request.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::repo::{Admission, VolumeQuery, VolumeQuotas, VolumeRepo, VolumeUsage};
use super::store::VolumeStore;
use super::{Backing, Volume, VolumeFormat, VolumeId, VolumeStatus};
use crate::context::now;
use crate::error::{Entity, Error, Result};
use crate::image::service::ImageService;
use crate::image::{DiskFormat, Image, ImageStatus};
use crate::job::Job;
use crate::policy;
use crate::principal::Principal;

/// Sizes are whole 512-byte sectors (what qemu-img makes of any size).
const SECTOR: u64 = 512;
/// How often an edit is applied before a concurrent writer's conflict is returned.
const EDIT_ATTEMPTS: usize = 3;
/// A create makes only a file header (qemu-img is given two minutes); a volume still
/// `creating` after this long was abandoned by a process that died.
const STALE_CREATE: time::Duration = time::Duration::minutes(10);
/// How often a volume being filled with a copy shows it is still being made.
const CREATE_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);

/// Everything configurable about volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSettings {
    /// Per-project limits.
    pub quotas: VolumeQuotas,
    /// The largest volume, in bytes.
    pub max_size: u64,
    /// The longest page of a listing.
    pub max_list: u32,
}

impl Default for VolumeSettings {
    fn default() -> Self {
        VolumeSettings {
            quotas: VolumeQuotas::default(),
            max_size: 16 << 40,
            max_list: 1000,
        }
    }
}

/// A new volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewVolume {
    /// The id the caller chose (ZStack's `resourceUuid`); a fresh one if `None`. An id
    /// in use, even by an expunged volume, is `AlreadyExists`.
    pub id: Option<VolumeId>,
    /// Its name (1–255 characters, no control characters).
    pub name: String,
    /// Free text (≤ 1024 characters).
    pub description: Option<String>,
    /// Its virtual size in bytes (rounded up to 512): required for a blank volume; from
    /// an image it defaults to the image's virtual size and may not be smaller.
    pub size: Option<u64>,
    /// Its layout: `qcow2` by default; a volume from an image is always `qcow2`.
    pub format: Option<VolumeFormat>,
}

/// A change of a volume's name or description; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumePatch {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
}

/// An image to make from a volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewImageFromVolume {
    /// The id the caller chose for the image (ZStack's `resourceUuid`); a fresh one if
    /// `None`. An id in use is `AlreadyExists`.
    pub image_id: Option<crate::image::ImageId>,
    /// The image's name (1–255 characters).
    pub name: String,
    /// Its description (`__description`).
    pub description: Option<String>,
    /// With an OS version the image is a system-disk image (`virtual_env_type`
    /// `FusionCompute`); without, a data-disk image (`DataImage`).
    pub os_version: Option<String>,
    /// The least `min_disk` in GB; the volume's size rounded up to whole GB if larger.
    pub min_disk: Option<u64>,
    /// Tags the image carries.
    pub tags: Vec<String>,
    /// Further properties (a dialect's vocabulary, e.g. ZStack's `platform`), validated
    /// with the image.
    pub properties: BTreeMap<String, String>,
    /// A KMS key id; encryption is not available yet, so any key is refused.
    pub cmk_id: Option<String>,
    /// All or nothing: a failed job removes the image instead of leaving it `killed`.
    pub discard_on_failure: bool,
}

/// The volume use cases.
#[derive(Clone)]
pub struct VolumeService {
    pub(crate) repo: Arc<dyn VolumeRepo>,
    pub(crate) store: Arc<dyn VolumeStore>,
    pub(crate) images: ImageService,
    pub(crate) settings: VolumeSettings,
    pub(crate) holders: Arc<dyn super::VolumeHolders>,
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(Error::field(
            "name",
            "The name must be 1 to 255 characters.",
        ));
    }
    crate::text::check("name", name)
}

fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > 1024 {
        return Err(Error::field(
            "description",
            "The description is at most 1024 characters.",
        ));
    }
    crate::text::check_free_text("description", description)
}

/// The format of an image's blob as a backing file; only plain layouts qemu reads
/// without further references qualify.
fn backing_format(image: &Image) -> Result<VolumeFormat> {
    match image.disk_format {
        Some(DiskFormat::Qcow2) => Ok(VolumeFormat::Qcow2),
        Some(DiskFormat::Raw) => Ok(VolumeFormat::Raw),
        other => Err(Error::NotSupported(format!(
            "Volumes can be made from qcow2 or raw images only, not {}.",
            other.map_or("an image without a disk format", |f| f.as_str())
        ))),
    }
}

impl VolumeService {
    /// Wires the service to its ports. `images` makes and fills images from volumes and
    /// owns the blobs volumes are overlays on.
    pub fn new(
        repo: Arc<dyn VolumeRepo>,
        store: Arc<dyn VolumeStore>,
        images: ImageService,
        settings: VolumeSettings,
    ) -> Self {
        VolumeService {
            repo,
            store,
            images,
            settings,
            holders: Arc::new(super::NoHolders),
        }
    }

    /// Volumes `holders` hold (image servers' root volumes) refuse deletion, resizing and
    /// expunging while held.
    pub fn with_holders(mut self, holders: Arc<dyn super::VolumeHolders>) -> Self {
        self.holders = holders;
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &VolumeSettings {
        &self.settings
    }

    /// A size as stored: whole sectors, positive, at most `max_size`.
    fn checked_size(&self, size: u64) -> Result<u64> {
        let rounded = size.div_ceil(SECTOR).saturating_mul(SECTOR);
        if size == 0 || rounded > self.settings.max_size {
            return Err(Error::field(
                "size",
                format!("The size must be 1 to {} bytes.", self.settings.max_size),
            ));
        }
        Ok(rounded)
    }

    fn new_volume(
        &self,
        who: &Principal,
        req: &NewVolume,
        size: u64,
        format: VolumeFormat,
    ) -> Result<Volume> {
        policy::check_writer(who)?;
        check_name(&req.name)?;
        let description = req.description.clone().unwrap_or_default();
        check_description(&description)?;
        let mut volume = Volume::new(
            req.id.unwrap_or_default(),
            &who.project_id,
            req.name.clone(),
            size,
            format,
            now(),
        );
        volume.description = description;
        Ok(volume)
    }

    /// Writes a new volume within its project's quotas.
    async fn insert(&self, volume: &Volume) -> Result<()> {
        match self
            .repo
            .insert_within_quota(volume, self.settings.quotas)
            .await?
        {
            Admission::Admitted => Ok(()),
            refused => Err(quota_error(refused, self.settings.quotas)),
        }
    }

    /// Makes an empty volume of `req.size` bytes.
    pub async fn create_blank(&self, who: &Principal, req: NewVolume) -> Result<Volume> {
        let size = req
            .size
            .ok_or_else(|| Error::field("size", "A blank volume needs a size."))?;
        let size = self.checked_size(size)?;
        let format = req.format.unwrap_or(VolumeFormat::Qcow2);
        let mut volume = self.new_volume(who, &req, size, format)?;
        volume.location = Some(self.store.location_of(volume.id, format));
        self.insert(&volume).await?;
        let made = self.store.create_blank(volume.id, format, size).await;
        self.finish_create(&mut volume, made).await?;
        Ok(volume)
    }

    /// Makes a volume from an image the caller may see (its own, shared with it, or
    /// public): a qcow2 overlay on the image's blob, so nothing is copied and the time
    /// does not depend on the image's size. The blob then outlives the image until the
    /// last such volume is expunged.
    pub async fn create_from_image(
        &self,
        who: &Principal,
        image_ref: &str,
        req: NewVolume,
    ) -> Result<Volume> {
        if req.format.is_some_and(|f| f != VolumeFormat::Qcow2) {
            return Err(Error::field(
                "format",
                "A volume from an image is always qcow2.",
            ));
        }
        let image = self.images.get(who, image_ref).await?;
        let (ImageStatus::Active, Some(key)) = (image.status, image.data.location.clone()) else {
            return Err(Error::Conflict(format!(
                "Image {} is {} and has no data to make a volume from.",
                image.id, image.status
            )));
        };
        let backing = Backing {
            image_id: image.id,
            blob_key: key,
            format: backing_format(&image)?,
        };
        let least = image.data.virtual_size.or(image.data.size).unwrap_or(0);
        let size = self.checked_size(req.size.unwrap_or(least).max(1))?;
        if size < least {
            return Err(Error::field(
                "size",
                format!("The volume must be at least as large as the image ({least} bytes)."),
            ));
        }
        let mut volume = self.new_volume(who, &req, size, VolumeFormat::Qcow2)?;
        volume.source_image = Some(image.id);
        volume.location = Some(self.store.location_of(volume.id, VolumeFormat::Qcow2));
        if image.data.sealing.is_some()
            || !self.store.overlays_on_images()
            || !self.images.in_overlay_store(&image)
        {
            // qemu cannot read a sealed or remote blob in place: the volume gets a
            // (decrypted) copy, made only while the image's key is enabled.
            self.images.check_readable(&image).await?;
            self.insert(&volume).await?;
            return self.copy_image(volume).await;
        }
        volume.backing = Some(backing);
        // Written (and so pinning the blob) before the blob is checked again: an image
        // deleted in between either sees this volume and keeps its blob, or is seen here.
        self.insert(&volume).await?;
        self.make_overlay(volume).await
    }

    /// Finishes a volume from an image that a crash left `creating`: its overlay (or
    /// copy) is made again (it holds nothing the guest wrote yet) and the volume becomes
    /// `ready`. For the job that made the volume, on its rerun; anything else is refused.
    pub async fn resume_from_image(&self, volume: Volume) -> Result<Volume> {
        if volume.status != VolumeStatus::Creating || volume.source_image.is_none() {
            return Err(Error::Gone(format!("The volume is {}", volume.status)));
        }
        if let Some(location) = &volume.location {
            // What the cut-short attempt left, if anything, is an empty overlay or part
            // of a copy.
            self.store.delete(location).await?;
        }
        if volume.backing.is_some() {
            self.make_overlay(volume).await
        } else {
            self.copy_image(volume).await
        }
    }

    /// Fills a `creating` volume with a decrypted copy of its (encrypted) image, if the
    /// image is still active, and records the outcome. O(image size), unlike an overlay.
    async fn copy_image(&self, mut volume: Volume) -> Result<Volume> {
        let image_id = volume
            .source_image
            .ok_or_else(|| Error::internal("a copied volume without an image"))?;
        let made = match self.images.repo.get(image_id).await? {
            Some(image) if image.status == ImageStatus::Active => {
                self.write_copy(&mut volume, &image).await
            }
            _ => Err(Error::Conflict(format!(
                "Image {image_id} was deleted meanwhile."
            ))),
        };
        self.finish_create(&mut volume, made).await?;
        Ok(volume)
    }

    /// Streams `image`'s data in the clear into the new volume's file. A copy may take
    /// longer than [`STALE_CREATE`]: the volume's row is touched meanwhile, so the sweeper
    /// leaves a live copy alone; a copy whose row was swept stops.
    async fn write_copy(&self, volume: &mut Volume, image: &Image) -> Result<String> {
        let format = backing_format(image)?;
        let content = super::FlatData {
            stream: self.images.read_data(image, None).await?,
            size: image.data.size.unwrap_or(0),
        };
        let copy = self
            .store
            .create_from_content(volume.id, volume.size, content, format);
        tokio::pin!(copy);
        loop {
            tokio::select! {
                made = &mut copy => return made,
                () = tokio::time::sleep(CREATE_HEARTBEAT) => {
                    volume.updated_at = now();
                    self.repo.save(volume, VolumeStatus::Creating).await?;
                    volume.version += 1;
                }
            }
        }
    }

    /// Makes the overlay of a `creating` volume on its image's blob, if the image still
    /// has that blob, and records the outcome.
    async fn make_overlay(&self, mut volume: Volume) -> Result<Volume> {
        let backing = volume
            .backing
            .clone()
            .ok_or_else(|| Error::internal("an overlay volume without a backing"))?;
        let still = self.images.repo.get(backing.image_id).await?;
        let made = if still.is_some_and(|i| {
            i.status == ImageStatus::Active
                && i.data.location.as_deref() == Some(&backing.blob_key)
                && self.images.in_overlay_store(&i)
        }) {
            self.store
                .create_overlay(volume.id, volume.size, &backing)
                .await
        } else {
            Err(Error::Conflict(format!(
                "Image {} was deleted meanwhile.",
                backing.image_id
            )))
        };
        self.finish_create(&mut volume, made).await?;
        Ok(volume)
    }

    /// Records the outcome of making a volume's data: `ready` with its location, or
    /// `error` (and the error returned).
    async fn finish_create(&self, volume: &mut Volume, made: Result<String>) -> Result<()> {
        let outcome = match made {
            Ok(location) => {
                volume.location = Some(location);
                volume.transition(VolumeStatus::Ready)?;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(volume.id = %volume.id, error = %e, "making a volume failed");
                volume.transition(VolumeStatus::Error)?;
                Err(e)
            }
        };
        volume.updated_at = now();
        self.repo.save(volume, VolumeStatus::Creating).await?;
        volume.version += 1;
        if outcome.is_err() {
            // The volume keeps nothing; a blob it pinned may be free now.
            self.release_backing(volume).await;
        }
        outcome
    }

    /// Bytes `volume`'s own data occupies (ZStack's `actualSize`); 0 for a volume
    /// without data.
    pub async fn actual_size(&self, volume: &Volume) -> Result<u64> {
        match (&volume.location, volume.status.holds_data()) {
            (Some(location), true) => self.store.actual_size(location).await,
            _ => Ok(0),
        }
    }

    /// The room of the volume store (ZStack's primary storage capacity).
    pub async fn capacity(&self) -> Result<super::StoreCapacity> {
        self.store.capacity().await
    }

    /// Puts right the creates a crash cut short: volumes `creating` for longer than
    /// any create takes become `error`, their partial data removed. Returns how many.
    pub async fn fail_abandoned(&self) -> Result<usize> {
        let before = now() - STALE_CREATE;
        let mut failed = 0;
        for mut volume in self.repo.creating_since(before).await? {
            volume.transition(VolumeStatus::Error)?;
            volume.updated_at = now();
            match self.repo.save(&volume, VolumeStatus::Creating).await {
                Ok(()) => {}
                // Finished (or failed) meanwhile by the node that made it.
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
            failed += 1;
            if let Some(location) = &volume.location
                && let Err(e) = self.store.delete(location).await
            {
                tracing::warn!(volume.id = %volume.id, error = %e, "could not remove an abandoned volume's data");
            }
            self.release_backing(&volume).await;
        }
        Ok(failed)
    }

    /// Loads a volume the caller may see; anything else (another project's, expunged,
    /// a malformed id) is not found.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<Volume> {
        let found = match VolumeId::parse(id) {
            Some(vid) => self
                .repo
                .get(vid)
                .await?
                .filter(|v| v.status != VolumeStatus::Expunged),
            None => None,
        };
        policy::visible(who, found, Entity::Volume, id)
    }

    /// One page of the caller's project's volumes (an administrator's query may name
    /// any project, or none for all), newest first.
    pub async fn list(&self, who: &Principal, mut query: VolumeQuery) -> Result<Vec<Volume>> {
        if !who.is_admin() {
            query.project_id = Some(who.project_id.clone());
        }
        if query.limit == 0 || query.limit > self.settings.max_list {
            query.limit = self.settings.max_list;
        }
        self.repo.list(&query).await
    }

    /// The caller's project's usage and its limits.
    pub async fn usage(&self, who: &Principal) -> Result<(VolumeUsage, VolumeQuotas)> {
        Ok((
            self.repo.usage(&who.project_id).await?,
            self.settings.quotas,
        ))
    }

    /// Changes name and description; retried on a concurrent save.
    pub async fn update(&self, who: &Principal, id: &str, patch: VolumePatch) -> Result<Volume> {
        if let Some(name) = &patch.name {
            check_name(name)?;
        }
        if let Some(d) = &patch.description {
            check_description(d)?;
        }
        self.edit(who, id, |v| {
            if let Some(name) = &patch.name {
                v.name = name.clone();
            }
            if let Some(d) = &patch.description {
                v.description = d.clone();
            }
            Ok(())
        })
        .await
    }

    /// Loads the volume, checks the caller may change it, applies `change` and saves,
    /// again on the fresh row when another request saved it in between.
    async fn edit(
        &self,
        who: &Principal,
        id: &str,
        change: impl Fn(&mut Volume) -> Result<()>,
    ) -> Result<Volume> {
        let mut attempt = 1;
        loop {
            let mut volume = self.get(who, id).await?;
            policy::check_owner_writes(who, &volume, Entity::Volume)?;
            let expected = volume.status;
            change(&mut volume)?;
            volume.updated_at = now();
            match self.repo.save(&volume, expected).await {
                Err(Error::Conflict(_)) if attempt < EDIT_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
                Ok(()) => {
                    volume.version += 1;
                    return Ok(volume);
                }
            }
        }
    }

    /// Deletes a volume softly: `ready → deleted`, its data kept until it is expunged
    /// (idempotent on a deleted volume). A volume whose create failed holds nothing and
    /// is expunged at once. Refused while an image is being made from the volume.
    pub async fn delete(&self, who: &Principal, id: &str) -> Result<Volume> {
        let volume = self.get(who, id).await?;
        self.check_not_being_read(&volume).await?;
        if volume.status == VolumeStatus::Error {
            return self.expunge(who, id).await;
        }
        self.edit(who, id, |v| match v.status {
            VolumeStatus::Deleted => Ok(()),
            _ => {
                v.transition(VolumeStatus::Deleted)?;
                v.deleted_at = Some(now());
                Ok(())
            }
        })
        .await
    }

    /// Brings a deleted volume back: `deleted → ready`.
    pub async fn recover(&self, who: &Principal, id: &str) -> Result<Volume> {
        self.edit(who, id, |v| {
            v.transition(VolumeStatus::Ready)?;
            v.deleted_at = None;
            Ok(())
        })
        .await
    }

    /// Removes a deleted (or failed, or abandoned `creating`) volume's data for good. The
    /// row stays, `expunged`, so the id is never reused. A ready volume must be deleted
    /// first (`Conflict`); none is expunged while an image is being made from it.
    pub async fn expunge(&self, who: &Principal, id: &str) -> Result<Volume> {
        self.check_not_being_read(&self.get(who, id).await?).await?;
        let volume = self
            .edit(who, id, |v| {
                if v.status == VolumeStatus::Ready {
                    return Err(Error::Conflict(format!(
                        "Volume {} is ready; delete it before expunging it.",
                        v.id
                    )));
                }
                v.transition(VolumeStatus::Expunged)?;
                v.deleted_at = v.deleted_at.or(Some(now()));
                Ok(())
            })
            .await?;
        if let Some(location) = &volume.location
            && let Err(e) = self.store.delete(location).await
        {
            tracing::warn!(volume.id = %volume.id, error = %e, "could not remove an expunged volume's data");
        }
        self.release_backing(&volume).await;
        Ok(volume)
    }

    /// Removes the blob `volume` was an overlay on if nothing needs it any more: no
    /// volume holding data is backed by it and no image that is not deleted names it.
    /// An image deleted concurrently sees this volume gone and removes the blob itself.
    async fn release_backing(&self, volume: &Volume) {
        let Some(backing) = &volume.backing else {
            return;
        };
        self.images.release_overlay_base(&backing.blob_key).await;
    }

    /// Grows a ready volume to `new_size` bytes (rounded up to 512) within the project's
    /// size quota; volumes never shrink, nor grow while an image is being made from them.
    pub async fn resize(&self, who: &Principal, id: &str, new_size: u64) -> Result<Volume> {
        let size = self.checked_size(new_size)?;
        let mut volume = self.get(who, id).await?;
        policy::check_owner_writes(who, &volume, Entity::Volume)?;
        if volume.status != VolumeStatus::Ready {
            return Err(Error::Conflict(format!(
                "Volume {} is {}; only a ready volume can be resized.",
                volume.id, volume.status
            )));
        }
        self.check_not_being_read(&volume).await?;
        if size <= volume.size {
            return Err(Error::field(
                "size",
                format!(
                    "A volume only grows: the new size must exceed {} bytes.",
                    volume.size
                ),
            ));
        }
        let old = volume.size;
        volume.size = size;
        volume.updated_at = now();
        // The catalog first: the quota is taken before the disk grows, and a concurrent
        // resize of the same revision loses here rather than on the file.
        let quota = self.settings.quotas.size_total;
        match self
            .repo
            .save_within_quota(&volume, VolumeStatus::Ready, quota)
            .await?
        {
            Admission::Admitted => volume.version += 1,
            refused => return Err(quota_error(refused, self.settings.quotas)),
        }
        let location = volume
            .location
            .clone()
            .ok_or_else(|| Error::internal("a ready volume without data"))?;
        if let Err(e) = self
            .store
            .resize(&location, volume.format, volume.backing.as_ref(), size)
            .await
        {
            volume.size = old;
            if self.repo.save(&volume, VolumeStatus::Ready).await.is_ok() {
                volume.version += 1;
            }
            return Err(e);
        }
        Ok(volume)
    }

    /// Starts an image made from a ready volume of the caller's: the image (importing)
    /// and the durable job that streams the volume's flattened content into it through
    /// the one pipeline, written together. Returns the image and the job.
    pub async fn create_image(
        &self,
        who: &Principal,
        volume_id: &str,
        req: NewImageFromVolume,
    ) -> Result<(Image, Job)> {
        let volume = self.get(who, volume_id).await?;
        policy::check_owner_writes(who, &volume, Entity::Volume)?;
        if volume.status != VolumeStatus::Ready {
            return Err(Error::Conflict(format!(
                "Volume {} is {}; images are made from ready volumes only.",
                volume.id, volume.status
            )));
        }
        // A server's disk is captured through the server, which pauses its guest first.
        if let Some(server) = self.holders.holder(volume.id).await? {
            return Err(Error::Conflict(format!(
                "Volume {} is the root volume of running image server {server}; capture the \
                 server (recreate-image) instead.",
                volume.id
            )));
        }
        self.images.start_image_from_volume(&volume, req).await
    }
}

fn quota_error(refused: Admission, quotas: VolumeQuotas) -> Error {
    match refused {
        Admission::OverCount => Error::QuotaExceeded(format!(
            "You are over your volume count quota of {} volumes",
            quotas.count.unwrap_or_default()
        )),
        _ => Error::QuotaExceeded(format!(
            "You are over your volume size quota of {} bytes",
            quotas.size_total.unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageId;

    fn image(format: Option<DiskFormat>) -> Image {
        let mut i = Image::new(ImageId::new(), Some("p".into()), now());
        i.disk_format = format;
        i
    }

    #[test]
    fn only_plain_layouts_back_a_volume() {
        assert_eq!(
            backing_format(&image(Some(DiskFormat::Qcow2))).unwrap(),
            VolumeFormat::Qcow2
        );
        assert_eq!(
            backing_format(&image(Some(DiskFormat::Raw))).unwrap(),
            VolumeFormat::Raw
        );
        for other in [
            Some(DiskFormat::Vmdk),
            Some(DiskFormat::Zvhd2),
            Some(DiskFormat::Iso),
            None,
        ] {
            assert!(matches!(
                backing_format(&image(other)),
                Err(Error::NotSupported(_))
            ));
        }
    }

    #[test]
    fn names_and_descriptions_are_checked() {
        assert!(check_name("disk-1").is_ok());
        for bad in ["", "a\u{7}b", &"x".repeat(256)] {
            assert!(matches!(
                check_name(bad),
                Err(Error::InvalidField { field: "name", .. })
            ));
        }
        assert!(check_description("two\nlines").is_ok());
        assert!(check_description(&"d".repeat(1025)).is_err());
        assert!(check_description("nul\0").is_err());
    }

    #[test]
    fn quota_errors_name_the_quota_that_was_hit() {
        let q = VolumeQuotas {
            count: Some(2),
            size_total: Some(10),
        };
        let count = quota_error(Admission::OverCount, q).to_string();
        let size = quota_error(Admission::OverSize, q).to_string();
        assert!(count.contains("count quota of 2"), "{count}");
        assert!(size.contains("size quota of 10"), "{size}");
    }
}
