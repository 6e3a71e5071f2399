//! Data use cases: upload, stage, download; the shared `store_checked` step; and the
//! maintenance of data: recovery of interrupted transfers and orphan collection.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::metadata::{ImageService, now};
use super::upload_limits::{SizeReservation, TransferPermit};
use crate::error::{Error, Result};
use crate::huawei;
use crate::image::{Image, ImageId, ImageStatus};
use crate::pipeline::{self, Digests, Limits};
use crate::policy;
use crate::ports::{ByteRange, ByteStream, Lease};
use crate::principal::Principal;
use crate::storage::ImageStore;

/// How old an unreferenced blob must be before orphan collection removes it: far longer
/// than any commit takes to reach the catalog, and than clocks of nodes differ.
pub const ORPHAN_GRACE: time::Duration = time::Duration::minutes(15);

/// How old a partial write (a temp file, an open multipart upload) must be before any
/// node removes it: longer than any upload takes, since a live node's writes are not
/// told apart from a dead one's. A node that starts again removes its own at once.
pub const STALE_WRITE: time::Duration = time::Duration::hours(24);

/// A fresh blob key for one attempt to write an image's data. Every attempt writes its
/// own key, so a late or duplicate worker can never overwrite or delete data that
/// another attempt committed; keys no image references are collected as orphans.
pub(crate) fn fresh_key(id: ImageId, purpose: &str) -> String {
    format!("{id}.{purpose}.{}", uuid::Uuid::new_v4().simple())
}

/// Incoming data and what the client said about its size.
pub struct UploadSource {
    /// The bytes.
    pub stream: ByteStream,
    /// `x-openstack-image-size`, or the body length when known.
    pub declared_size: Option<u64>,
    /// The store to write to (Glance's `X-Image-Meta-Store`); the default when `None`.
    pub store: Option<String>,
}

/// A range request as the client wrote it, before the size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// `bytes=a-b` or `bytes=a-`.
    From(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// What a download returns.
pub struct Download {
    /// The image (for checksum and size headers).
    pub image: Image,
    /// The data, absent when the image has none.
    pub body: Option<ByteStream>,
    /// The range served, when a range was asked for.
    pub range: Option<ByteRange>,
}

impl RangeRequest {
    /// Resolves against the data size; unsatisfiable ranges are an error.
    pub fn resolve(self, size: u64) -> Result<ByteRange> {
        let (start, end) = match self {
            RangeRequest::From(a, b) => (a, b.unwrap_or(u64::MAX).min(size.saturating_sub(1))),
            RangeRequest::Suffix(n) => (size.saturating_sub(n), size.saturating_sub(1)),
        };
        if size == 0 || start >= size || start > end || matches!(self, RangeRequest::Suffix(0)) {
            return Err(Error::RangeNotSatisfiable { size });
        }
        Ok(ByteRange { start, end })
    }
}

impl ImageService {
    /// `PUT …/file`: streams data into a queued image; on any failure the image is
    /// queued again and nothing is left in the store.
    pub async fn upload(&self, who: &Principal, id: &str, source: UploadSource) -> Result<Image> {
        // An unknown store is refused before the image is looked at, as Glance does; with
        // one store, Glance ignores the choice.
        let store = match &source.store {
            Some(id) if self.stores.is_multi() => self.stores.known(id)?.clone(),
            _ => self.stores.default_store().clone(),
        };
        let (image, permit) = self
            .begin_transfer(who, id, ImageStatus::Saving, source.declared_size)
            .await?;
        let source = self.stall_limited(source);
        let svc = self.clone();
        // A task of its own, so that cleanup runs even if the caller's future is dropped.
        tokio::spawn(async move {
            let _permit = permit;
            svc.finish_upload(image, source, store).await
        })
        .await
        .map_err(Error::internal)?
    }

    /// `PUT …/stage`: like upload, into the staging area; the image rests in `uploading`.
    pub async fn stage(&self, who: &Principal, id: &str, source: UploadSource) -> Result<()> {
        if !self
            .settings
            .import_methods
            .contains(&super::ImportMethod::GlanceDirect)
        {
            return Err(Error::NotFound {
                kind: crate::Entity::ImportMethod,
                id: "glance-direct".into(),
            });
        }
        let (image, permit) = self
            .begin_transfer(who, id, ImageStatus::Uploading, source.declared_size)
            .await?;
        let source = self.stall_limited(source);
        let svc = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            svc.finish_stage(image, source).await
        })
        .await
        .map_err(Error::internal)?
    }

    /// A client's body fails once it sends nothing for the idle timeout.
    /// Its bytes count as an upload's.
    fn stall_limited(&self, source: UploadSource) -> UploadSource {
        let stream = pipeline::idle_timeout(source.stream, self.transfers.idle());
        UploadSource {
            stream: crate::telemetry::count_bytes(stream, crate::telemetry::DataPath::Upload),
            ..source
        }
    }

    /// `GET …/file`: the data, or a part of it.
    pub async fn download(
        &self,
        who: &Principal,
        id: &str,
        range: Option<RangeRequest>,
    ) -> Result<Download> {
        let image = self.get(who, id).await?;
        policy::check_download(who, &image)?;
        let (Some(_), Some(size)) = (image.data.location.as_ref(), image.data.size) else {
            return Ok(Download {
                image,
                body: None,
                range: None,
            });
        };
        let range = range.map(|r| r.resolve(size)).transpose()?;
        let body = self.read_data(&image, range).await?;
        let body = crate::telemetry::count_bytes(body, crate::telemetry::DataPath::Download);
        Ok(Download {
            image,
            body: Some(body),
            range,
        })
    }

    /// Checks an upload may start, takes its place under the transfer caps (held until
    /// the upload ends) and moves the image to `to` under this node's lease.
    async fn begin_transfer(
        &self,
        who: &Principal,
        id: &str,
        to: ImageStatus,
        declared: Option<u64>,
    ) -> Result<(Image, TransferPermit)> {
        let mut image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        if image.status != ImageStatus::Queued {
            return Err(Error::Conflict(format!(
                "Image status transition from {} to {to} is not allowed",
                image.status
            )));
        }
        image.require_formats()?;
        let permit = self.transfers.enter(&who.project_id)?;
        self.check_declared(image.owner.as_deref(), declared)
            .await?;
        image.transition(to)?;
        image.lease = Some(self.new_lease());
        image.updated_at = now();
        self.repo.save(&image, ImageStatus::Queued, None).await?;
        Ok((image, permit))
    }

    async fn finish_upload(
        &self,
        image: Image,
        source: UploadSource,
        store: ImageStore,
    ) -> Result<Image> {
        let key = fresh_key(image.id, "data");
        let result = self.receive(&image, &key, source, &store).await;
        let settled = self
            .settle(image.id, ImageStatus::Saving, |current| match &result {
                Ok(digests) => {
                    set_data(current, key.clone(), digests, Some(&store.id));
                    current.transition(ImageStatus::Active)
                }
                Err(_) => current.transition(ImageStatus::Queued),
            })
            .await?;
        let Some(current) = settled else {
            self.delete_blob(&key, &store).await;
            return Err(Error::Gone("Image was deleted during the upload".into()));
        };
        result.map(|_| current)
    }

    async fn finish_stage(&self, image: Image, source: UploadSource) -> Result<()> {
        let key = fresh_key(image.id, "staging");
        let landing = self.stores.default_store().clone();
        let result = self.receive(&image, &key, source, &landing).await;
        let settled = self
            .settle(image.id, ImageStatus::Uploading, |current| match &result {
                // The staged blob and what the one pass learned rest on the image; the
                // glance-direct import adopts them instead of reading the data again.
                Ok(digests) => {
                    set_data(current, key.clone(), digests, None);
                    Ok(())
                }
                Err(_) => current.transition(ImageStatus::Queued),
            })
            .await?;
        if settled.is_none() {
            self.delete_blob(&key, &landing).await;
            return Err(Error::Gone("Image was deleted during staging".into()));
        }
        result.map(|_| ())
    }

    /// Ends a transfer: applies `outcome` to the image as it is now, if it is still in
    /// `status` under this node's lease, and releases it. A concurrent metadata edit
    /// (which advanced the version) is not undone: the outcome is applied again to the
    /// fresh row. `None` if the image was deleted or handed on meanwhile.
    async fn settle(
        &self,
        id: ImageId,
        status: ImageStatus,
        outcome: impl Fn(&mut Image) -> Result<()>,
    ) -> Result<Option<Image>> {
        let mut attempt = 1;
        loop {
            let Some(mut current) = self.holding(id, status).await? else {
                return Ok(None);
            };
            outcome(&mut current)?;
            match self.release(current, status).await {
                Err(Error::Conflict(_)) if attempt < super::metadata::EDIT_ATTEMPTS => attempt += 1,
                released => return released.map(Some),
            }
        }
    }

    /// Streams into a blob of `store` under a lease heartbeat; commits on success, aborts
    /// otherwise.
    async fn receive(
        &self,
        image: &Image,
        key: &str,
        source: UploadSource,
        store: &ImageStore,
    ) -> Result<Digests> {
        let _heartbeat = self.lease_heartbeat(image.id);
        self.store_checked(image, key, source.stream, source.declared_size, store)
            .await
    }

    /// Streams data into a new blob at `key` of `store` through the one pipeline, and commits it
    /// only if the data passed: size limits, then format inspection against the image's
    /// declared formats. On any failure the blob is aborted, so nothing is left behind.
    /// `image` is in its transfer status; its size-quota room is reserved on it in the
    /// catalog before any byte is accepted (and its release or re-queueing ends that).
    pub(crate) async fn store_checked(
        &self,
        image: &Image,
        key: &str,
        stream: ByteStream,
        expected: Option<u64>,
        store: &ImageStore,
    ) -> Result<Digests> {
        let stream = match SizeReservation::start(self, image, expected).await? {
            Some(reservation) => reservation.meter(stream),
            None => stream,
        };
        let limits = Limits {
            cap: self.settings.size_cap,
            expected,
        };
        let mut writer = self.blob_writer(image, key, store).await?;
        let inspect = self.settings.inspect_formats;
        let passed = pipeline::pump(
            stream,
            writer.as_mut(),
            self.settings.hash_algo,
            limits,
            inspect,
        )
        .await
        .and_then(|digests| self.check_format(image, digests));
        match passed {
            Ok(digests) => writer.commit().await.map(|_| digests),
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        }
    }

    /// Applies the inspection verdict: unsafe data, or data that is not the declared
    /// `disk_format`, is refused (`UnsupportedMedia`) with the inspector's reasons.
    fn check_format(&self, image: &Image, mut digests: Digests) -> Result<Digests> {
        let disk = image.disk_format.map(|f| f.as_str());
        let container = image.container_format.map(|f| f.as_str());
        let Some(inspection) = &digests.inspection else {
            return Ok(digests);
        };
        match inspection.accept(disk, container) {
            Ok(size) => digests.virtual_size = size,
            Err(refusal) => {
                tracing::info!(image.id = %image.id, reason = %refusal, "refused image data");
                return Err(Error::UnsupportedMedia(refusal.reason));
            }
        }
        Ok(digests)
    }

    /// Reloads an image if it is still in `status` under this node's lease; `None` if
    /// it was deleted, or reset and handed to another attempt meanwhile.
    async fn holding(&self, id: ImageId, status: ImageStatus) -> Result<Option<Image>> {
        let node = &self.node.id;
        Ok(self
            .repo
            .get(id)
            .await?
            .filter(|i| i.status == status && i.lease.as_ref().is_some_and(|l| &l.owner == node)))
    }

    async fn release(&self, mut image: Image, expected: ImageStatus) -> Result<Image> {
        image.lease = None;
        huawei::refresh(&mut image);
        image.updated_at = now();
        self.repo.save(&image, expected, None).await?;
        Ok(image)
    }

    /// Refuses a declared size over the size cap (`TooLarge`) or over the quota's
    /// headroom (`QuotaExceeded`) before the transfer starts.
    async fn check_declared(&self, owner: Option<&str>, declared: Option<u64>) -> Result<()> {
        let cap = self.settings.size_cap;
        if let Some(size) = declared.filter(|s| *s > cap) {
            return Err(Error::TooLarge(format!(
                "Image data of {size} bytes exceeds the limit of {cap} bytes"
            )));
        }
        let headroom = self.data_cap(owner).await?;
        if let Some(size) = declared.filter(|s| *s > headroom) {
            return Err(Error::QuotaExceeded(format!(
                "Image data of {size} bytes exceeds the {headroom} bytes left in your image \
                 storage quota (uploads in progress count with their size)"
            )));
        }
        Ok(())
    }

    /// The most bytes one transfer may bring: the size cap, or the quota headroom (a
    /// quick check before a transfer starts; the reservation is what holds).
    pub(crate) async fn data_cap(&self, owner: Option<&str>) -> Result<u64> {
        let mut cap = self.settings.size_cap;
        if let (Some(limit), Some(owner)) = (self.settings.quotas.image_size_total, owner) {
            let used = self.repo.usage(owner).await?.image_size;
            if used >= limit {
                return Err(Error::QuotaExceeded(format!(
                    "You are over your image storage quota of {limit} bytes"
                )));
            }
            cap = cap.min(limit - used);
        }
        Ok(cap)
    }

    pub(crate) fn new_lease(&self) -> Lease {
        Lease {
            owner: self.node.id.clone(),
            until: now() + self.node.lease,
        }
    }

    fn lease_heartbeat(&self, id: ImageId) -> AbortOnDrop {
        let repo = Arc::clone(&self.repo);
        let (node, lease) = (self.node.id.clone(), self.node.lease);
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match repo
                    .renew_lease(id, &node, crate::context::now() + lease)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => tracing::warn!(image.id = %id, error = %e, "lease renewal failed"),
                }
            }
        }))
    }

    /// Returns images abandoned mid-transfer to `queued` and removes their partial data.
    /// At start-up, `restarted` names this node's previous incarnation.
    pub async fn recover_transfers(&self, restarted: bool) -> Result<usize> {
        let owner = restarted.then_some(self.node.id.as_str());
        let statuses = [ImageStatus::Saving, ImageStatus::Uploading];
        let images = self.repo.abandoned(&statuses, now(), owner).await?;
        let mut reset = 0;
        for mut image in images {
            // Partial data is in temp files (removed by the store's own recovery) or, if the
            // crash fell between commit and catalog update, in an unreferenced blob that
            // orphan collection removes.
            let expected = image.status;
            let id = image.id;
            image.transition(ImageStatus::Queued)?;
            match self.release(image, expected).await {
                Ok(_) => {
                    tracing::warn!(image.id = %id, from = %expected, "reset an abandoned transfer to queued");
                    reset += 1;
                }
                // Another node's sweep (or the uploader, back in time) changed it first:
                // nothing left to do for this image, and the others still need the sweep.
                Err(Error::Conflict(_)) => {
                    tracing::debug!(image.id = %id, "abandoned transfer already handled elsewhere");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(reset)
    }

    /// Deletes blobs no image references (left by a crash between store and catalog)
    /// and written more than [`ORPHAN_GRACE`] ago: a younger one may be another node's,
    /// committed a moment before its catalog save. Partial writes older than
    /// [`STALE_WRITE`] go too (a node that died for good).
    pub async fn collect_orphans(&self) -> Result<usize> {
        let mut live: HashMap<&str, HashSet<String>> = HashMap::new();
        for (key, stores) in self.repo.live_blobs().await? {
            for store in self.stores.holding(&stores) {
                live.entry(&store.id).or_default().insert(key.clone());
            }
        }
        // Blobs that volumes are overlays on stay, whatever became of their images.
        let pinned: HashSet<String> = self.pins.pinned_keys().await?.into_iter().collect();
        let mut removed = 0;
        let before = now() - ORPHAN_GRACE;
        for store in self.stores.all() {
            let stale = store.blobs.abort_stale_writes(now() - STALE_WRITE).await?;
            if stale > 0 {
                tracing::info!(stale, store = %store.id, "removed partial writes of nodes gone for a day");
            }
            let held = live.get(store.id.as_str());
            for blob in store.blobs.keys().await? {
                let used =
                    held.is_some_and(|h| h.contains(&blob.key)) || pinned.contains(&blob.key);
                if blob.written < before && !used {
                    self.delete_blob(&blob.key, store).await;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Records the default store as the store of data written before stores were
    /// recorded (at start-up, before orphan collection looks at any store).
    pub async fn place_unplaced(&self) -> Result<u64> {
        let store = &self.stores.default_store().id;
        let placed = self.repo.place_unplaced(store).await?;
        if placed > 0 {
            tracing::info!(placed, store = %store, "recorded the store of images written before stores were recorded");
        }
        Ok(placed)
    }
}

/// Records what the pipeline learned on the image, and the store the data is in (none
/// for data that is staged or not yet placed, which is in the default store).
pub(crate) fn set_data(image: &mut Image, key: String, d: &Digests, store: Option<&str>) {
    image.data.location = Some(key);
    image.data.stores = store.into_iter().map(str::to_string).collect();
    image.data.size = Some(d.size);
    image.data.checksum = Some(d.md5.clone());
    image.data.hash_algo = Some(d.algo.as_str().to_string());
    image.data.hash_value = Some(d.hash.clone());
    image.data.virtual_size = d.virtual_size;
}

/// Aborts a background task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_glance() {
        let r = |req: RangeRequest| req.resolve(10).map(|b| (b.start, b.end));
        assert_eq!(r(RangeRequest::From(0, Some(3))).unwrap(), (0, 3));
        assert_eq!(r(RangeRequest::From(5, None)).unwrap(), (5, 9));
        assert_eq!(r(RangeRequest::From(5, Some(100))).unwrap(), (5, 9));
        assert_eq!(r(RangeRequest::Suffix(3)).unwrap(), (7, 9));
        assert_eq!(r(RangeRequest::Suffix(30)).unwrap(), (0, 9));
        assert!(r(RangeRequest::From(10, None)).is_err());
        assert!(r(RangeRequest::From(4, Some(2))).is_err());
        assert!(r(RangeRequest::Suffix(0)).is_err());
    }
}
