//! Glance's multi-store use cases: the stores an import writes to and its progress
//! properties, placing imported data in those stores, copying an active image into more
//! stores (`copy-image`), and deleting an image's copy from one store.
//!
//! An import lands its data in the default store first (staged, downloaded, or read
//! from another image), then copies the blob into each store asked for, one after the
//! other, recording each in the image's stores as it completes. A store that fails either
//! rolls back every store the job added (`all_stores_must_succeed`, the default) or is
//! only recorded as failed. The landed copy stays only if the default store was asked for.

use std::collections::BTreeSet;

use super::bucket_jobs::image_jobs::Arrival;
use super::import::ImportRequest;
use super::metadata::{EDIT_ATTEMPTS, ImageService, ImportMethod, now};
use crate::error::{Error, Result};
use crate::image::{HeldBlob, Image, ImageId, ImageStatus};
use crate::job::{Job, JobKind, JobStatus};
use crate::pipeline::{self, Limits};
use crate::principal::Principal;
use crate::storage::ImageStore;

/// The stores an import is still writing to (sorted, comma-joined; `""` when none).
pub const IMPORTING_TO: &str = "os_glance_importing_to_stores";
/// The stores an import failed to write to.
pub const FAILED_IMPORT: &str = "os_glance_failed_import";

impl ImageService {
    /// The stores an import writes to, as `req` asks: every store (`all_stores`), the ones
    /// named (`stores`), or the default. With one store it is that store whatever was
    /// asked, as Glance ignores the choice then. An unknown store is a conflict (Glance).
    pub(crate) fn import_targets(&self, req: &ImportRequest) -> Result<Vec<String>> {
        let default = vec![self.stores.default_store().id.clone()];
        if !self.stores.is_multi() {
            return Ok(default);
        }
        if req.all_stores {
            return Ok(self.stores.all().iter().map(|s| s.id.clone()).collect());
        }
        let Some(named) = &req.stores else {
            return Ok(default);
        };
        if named.is_empty() {
            return Err(Error::invalid("'stores' must name at least one store"));
        }
        let mut targets: Vec<String> = Vec::new();
        for id in named {
            let store = self
                .stores
                .get(id)
                .ok_or_else(|| Error::Conflict(format!("Store for identifier {id} not found")))?;
            if !targets.contains(&store.id) {
                targets.push(store.id.clone());
            }
        }
        Ok(targets)
    }

    /// Records on `image` that an import into `targets` begins: they join the stores
    /// being imported to and leave the failed ones. Both properties exist once an import
    /// has begun, as in Glance (always empty with one store, whose id Glance never shows).
    pub(crate) fn begin_store_progress(&self, image: &mut Image, targets: &[String]) {
        let shown: &[String] = if self.stores.is_multi() { targets } else { &[] };
        let mut importing = store_list(image, IMPORTING_TO);
        let mut failed = store_list(image, FAILED_IMPORT);
        for target in shown {
            importing.insert(target.clone());
            failed.remove(target);
        }
        set_store_list(image, IMPORTING_TO, &importing);
        set_store_list(image, FAILED_IMPORT, &failed);
    }

    /// Records on an image whose import failed before its stores were written that
    /// those still being imported to failed (as Glance's revert does), so none is left
    /// "importing".
    pub(crate) fn end_store_progress(&self, image: &mut Image, targets: &[String]) {
        let unfinished: Vec<String> = store_list(image, IMPORTING_TO)
            .into_iter()
            .filter(|s| targets.contains(s))
            .collect();
        edit_store_list(image, IMPORTING_TO, |l| l.retain(|s| !targets.contains(s)));
        if self.stores.is_multi() {
            edit_store_list(image, FAILED_IMPORT, |l| l.extend(unfinished));
        }
    }

    /// `copy-image`: copies an active image's data into more stores, as a job; the image
    /// stays active throughout. Administrators only (Glance's default policy). Stores that
    /// already hold the image are an error when named, and skipped with `all_stores`;
    /// when none is left there is no job (`None`), but the progress properties are set.
    pub(crate) async fn start_copy_to_stores(
        &self,
        who: &Principal,
        mut image: Image,
        mut req: ImportRequest,
    ) -> Result<Option<String>> {
        if image.status != ImageStatus::Active {
            return Err(Error::Conflict(
                "Only images with status active can be targeted for copying".into(),
            ));
        }
        if !who.is_admin() {
            return Err(Error::Forbidden(
                "You are not authorized to complete copy_image action.".into(),
            ));
        }
        let mut targets = self.import_targets(&req)?;
        let held = self.placed_stores(&image);
        if req.all_stores || !self.stores.is_multi() {
            targets.retain(|t| !held.contains(t));
        } else if let Some(t) = targets.iter().find(|t| held.contains(*t)) {
            return Err(Error::invalid(format!(
                "Image is already present at store '{t}'"
            )));
        }
        if self.import_running(image.id).await? {
            return Err(Error::Conflict("Image has active task".into()));
        }
        self.begin_store_progress(&mut image, &targets);
        image.updated_at = now();
        if targets.is_empty() {
            self.repo.save(&image, ImageStatus::Active, None).await?;
            return Ok(None);
        }
        self.check_job_slots(&who.project_id, 1).await?;
        req.targets = targets;
        req.prior_stores = held.into_iter().collect();
        let job = self
            .enqueue(
                &who.project_id,
                &image,
                ImageStatus::Active,
                JobKind::ImageImport,
                &req,
            )
            .await?;
        Ok(Some(job.id))
    }

    /// The stores `image`'s data is placed in (the default for data written before
    /// stores were recorded).
    fn placed_stores(&self, image: &Image) -> BTreeSet<String> {
        if image.data.stores.is_empty() && image.data.location.is_some() {
            return BTreeSet::from([self.stores.default_store().id.clone()]);
        }
        image.data.stores.clone()
    }

    /// Whether an import job of image `id` is queued or running.
    async fn import_running(&self, id: ImageId) -> Result<bool> {
        Ok(self.jobs.for_image(id).await?.iter().any(|j| {
            j.kind == JobKind::ImageImport
                && matches!(j.status, JobStatus::Init | JobStatus::Running)
        }))
    }

    /// The worker's part of an import after its data landed (or of a `copy-image`): copies
    /// the blob into each target store, records the outcome of each, and activates an
    /// importing image once its stores are written.
    pub(crate) async fn place_in_stores(&self, id: ImageId, req: &ImportRequest) -> Result<()> {
        let copying = req.method == ImportMethod::CopyImage.as_str();
        let status = if copying {
            ImageStatus::Active
        } else {
            ImageStatus::Importing
        };
        let targets = self.job_targets(req);
        let landing = self.stores.default_store().id.clone();
        for (n, target) in targets.iter().enumerate() {
            let image = self.image_in(id, status).await?;
            if image.data.stores.contains(target) {
                continue;
            }
            let copied = if image.data.stores.is_empty() && *target == landing {
                Ok(()) // landed there already
            } else {
                self.copy_into_store(&image, target).await
            };
            // As in Glance, the last store's copy and the activation show together.
            let activate = !copying && n + 1 == targets.len();
            self.record_store_outcome(id, status, req, target, copied, activate)
                .await?;
        }
        if copying {
            return Ok(());
        }
        if self.image_in(id, ImageStatus::Importing).await.is_ok() {
            // The last store was written before a crash, or failed while others may fail.
            self.finish_importing(id, Arrival::Activate, |image| {
                if image.data.stores.is_empty() {
                    return Err(Error::Conflict("None of the uploads finished!".into()));
                }
                image.lease = None;
                Ok(())
            })
            .await?;
        }
        if !targets.contains(&landing)
            && let Some(key) = self.repo.get(id).await?.and_then(|i| i.data.location)
        {
            // The landed copy was only a waypoint.
            let held = HeldBlob {
                key,
                stores: BTreeSet::from([landing]),
            };
            self.release_blob(&held).await;
        }
        Ok(())
    }

    /// The stores a job writes to (the default for a job queued before stores were).
    fn job_targets(&self, req: &ImportRequest) -> Vec<String> {
        if req.targets.is_empty() {
            return vec![self.stores.default_store().id.clone()];
        }
        req.targets.clone()
    }

    /// Image `id` if it is still `status`; `Gone` otherwise.
    async fn image_in(&self, id: ImageId, status: ImageStatus) -> Result<Image> {
        self.repo
            .get(id)
            .await?
            .filter(|i| i.status == status)
            .ok_or_else(|| Error::Gone(format!("The image is no longer {status}")))
    }

    /// Records one store's outcome. A failure either is only recorded (the request let
    /// stores fail) or rolls back the job's stores and fails the job.
    async fn record_store_outcome(
        &self,
        id: ImageId,
        status: ImageStatus,
        req: &ImportRequest,
        target: &str,
        copied: Result<()>,
        activate: bool,
    ) -> Result<()> {
        let activate = |image: &mut Image| {
            if !activate || image.data.stores.is_empty() {
                return Ok(());
            }
            image.transition(ImageStatus::Active)?;
            image.lease = None;
            self.finish_edit(image)
        };
        let Err(e) = copied else {
            self.amend(id, status, |image| {
                image.data.stores.insert(target.to_string());
                edit_store_list(image, IMPORTING_TO, |l| l.remove(target));
                activate(image)
            })
            .await?;
            return Ok(());
        };
        tracing::warn!(image.id = %id, store = target, error = %e, "could not write an image to a store");
        if req.allow_store_failures {
            self.amend(id, status, |image| {
                edit_store_list(image, IMPORTING_TO, |l| l.remove(target));
                edit_store_list(image, FAILED_IMPORT, |l| l.insert(target.to_string()));
                activate(image)
            })
            .await?;
            return Ok(());
        }
        self.roll_back_stores(id, status, req, Some(target)).await?;
        Err(Error::Conflict(format!(
            "Could not write the image to store {target}: {e}"
        )))
    }

    /// Undoes what an import job did to the image's stores: the stores it added are
    /// dropped (and their copies released), none are left "importing", and `failing`, the
    /// store that made it fail, is recorded as failed.
    pub(crate) async fn roll_back_stores(
        &self,
        id: ImageId,
        status: ImageStatus,
        req: &ImportRequest,
        failing: Option<&str>,
    ) -> Result<()> {
        let targets = self.job_targets(req);
        let prior: BTreeSet<&String> = req.prior_stores.iter().collect();
        let multi = self.stores.is_multi();
        let mut dropped = BTreeSet::new();
        let image = self
            .amend(id, status, |image| {
                dropped = image
                    .data
                    .stores
                    .iter()
                    .filter(|s| targets.contains(s) && !prior.contains(s))
                    .cloned()
                    .collect();
                if image.status == ImageStatus::Active && dropped.len() == image.data.stores.len() {
                    // Its earlier stores went meanwhile (a delete from a store): what this
                    // job wrote is all the image has now, and it stays.
                    dropped.clear();
                }
                image.data.stores.retain(|s| !dropped.contains(s));
                edit_store_list(image, IMPORTING_TO, |l| l.retain(|s| !targets.contains(s)));
                if let Some(failing) = failing.filter(|_| multi) {
                    edit_store_list(image, FAILED_IMPORT, |l| l.insert(failing.to_string()));
                }
                Ok(())
            })
            .await?;
        if let Some(key) = image.data.location.filter(|_| !dropped.is_empty()) {
            self.release_blob(&HeldBlob {
                key,
                stores: dropped,
            })
            .await;
        }
        Ok(())
    }

    /// Copies `image`'s blob, as stored, into store `target` from a store holding it.
    async fn copy_into_store(&self, image: &Image, target: &str) -> Result<()> {
        let key = image
            .data
            .location
            .as_deref()
            .ok_or_else(|| Error::Gone("The image has no data".into()))?;
        let to = self
            .stores
            .get(target)
            .ok_or_else(|| Error::Gone(format!("Store {target} is no longer configured")))?;
        let mut last = None;
        for from in self.stores.holding(&image.data.stores) {
            if from.id == to.id {
                continue;
            }
            match self.copy_blob(image, key, from, to).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Gone("No store holds the image data".into())))
    }

    /// Streams blob `key` from one store into another through the pipeline; data in the
    /// clear must still have the image's checksum, or nothing is committed.
    async fn copy_blob(
        &self,
        image: &Image,
        key: &str,
        from: &ImageStore,
        to: &ImageStore,
    ) -> Result<()> {
        let stream = from.blobs.read(key, None).await?;
        let mut writer = to.blobs.writer(key).await?;
        // The one pass hashes with the image's own algorithm, so both its digests are
        // checked (the data as stored is in the clear unless the image is sealed).
        let algo = image
            .data
            .hash_algo
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or(self.settings.hash_algo);
        let limits = Limits {
            cap: u64::MAX,
            expected: image
                .data
                .sealing
                .is_none()
                .then_some(image.data.size)
                .flatten(),
        };
        let stream = crate::telemetry::count_bytes(stream, crate::telemetry::DataPath::Copy);
        let copied = pipeline::pump(stream, writer.as_mut(), algo, limits, false)
            .await
            .and_then(|digests| {
                let plain = image.data.sealing.is_none();
                let differs =
                    |want: &Option<String>, got: &str| want.as_deref().is_some_and(|w| w != got);
                if plain
                    && (differs(&image.data.checksum, &digests.md5)
                        || differs(&image.data.hash_value, &digests.hash))
                {
                    return Err(Error::internal(format!(
                        "the copy read from store {} does not match the image's checksums",
                        from.id
                    )));
                }
                Ok(())
            });
        match copied {
            Ok(()) => writer.commit().await,
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        }
    }

    /// Applies `change` to image `id` while it is `status`, and saves it under the job's
    /// lease; a concurrent edit is not undone (the change is applied to the fresh row).
    async fn amend(
        &self,
        id: ImageId,
        status: ImageStatus,
        mut change: impl FnMut(&mut Image) -> Result<()>,
    ) -> Result<Image> {
        let mut attempt = 1;
        loop {
            let mut image = self.image_in(id, status).await?;
            change(&mut image)?;
            image.updated_at = now();
            crate::job::lease::confirm().await?;
            match self.repo.save(&image, status, None).await {
                Err(Error::Conflict(_)) if attempt < EDIT_ATTEMPTS => attempt += 1,
                saved => return saved.map(|()| image),
            }
        }
    }

    /// `DELETE /v2/stores/{store}/{image}`: removes an active image's copy from one store,
    /// in Glance's order of checks. The last copy cannot go (delete the image instead).
    pub async fn delete_from_store(&self, who: &Principal, store: &str, id: &str) -> Result<()> {
        if !self.stores.is_multi() {
            return Err(Error::not_found(crate::Entity::Store, store));
        }
        if self.stores.get(store).is_none() {
            return Err(Error::Conflict(format!(
                "The selected store {store} is not available on this node."
            )));
        }
        let image = self.get(who, id).await?;
        if !who.is_admin() {
            return Err(Error::Forbidden(
                "You are not authorized to complete delete_image_location action.".into(),
            ));
        }
        if self.import_running(image.id).await? {
            // A copy-image may be reading from that store, or roll back onto it.
            return Err(Error::Conflict("Image has active task".into()));
        }
        let mut held = None;
        let saved = self
            .amend(image.id, ImageStatus::Active, |image| {
                let stores = self.placed_stores(image);
                if stores.len() <= 1 {
                    return Err(Error::Forbidden(
                        "Cannot delete image data from the only store containing it. \
                         Consider deleting the image instead."
                            .into(),
                    ));
                }
                if !stores.contains(store) {
                    return Err(Error::not_found(
                        crate::Entity::Store,
                        format!("{store}/{}", image.id),
                    ));
                }
                image.data.stores = stores;
                image.data.stores.remove(store);
                held = image.data.location.clone();
                Ok(())
            })
            .await;
        match saved {
            Err(Error::Gone(_)) => {
                return Err(Error::Conflict(
                    "It's not allowed to remove image data from store if image status is not 'active'"
                        .into(),
                ));
            }
            other => other?,
        };
        if let Some(key) = held {
            let stores = BTreeSet::from([store.to_string()]);
            self.release_blob(&HeldBlob { key, stores }).await;
        }
        Ok(())
    }

    /// Cleans up after an import job that failed for good: the stores it added are
    /// rolled back, and an importing image is queued again.
    pub(crate) async fn fail_import_job(&self, job: &Job) -> Result<()> {
        let (req, id): (ImportRequest, ImageId) = job.decode()?;
        if req.method == ImportMethod::CopyImage.as_str() {
            // Deactivated meanwhile, the image still must not show stores "importing".
            let Some(status) = self
                .repo
                .get(id)
                .await?
                .map(|i| i.status)
                .filter(|s| *s != ImageStatus::Deleted)
            else {
                return Ok(());
            };
            return match self.roll_back_stores(id, status, &req, None).await {
                Err(Error::Gone(_)) => Ok(()),
                done => done,
            };
        }
        self.fail_import(id, &req).await
    }
}

/// A store-list property of `image` as a set.
fn store_list(image: &Image, key: &str) -> BTreeSet<String> {
    image
        .properties
        .get(key)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Writes a store-list property: sorted ids, comma-joined, `""` for none.
fn set_store_list(image: &mut Image, key: &str, list: &BTreeSet<String>) {
    let joined = list.iter().cloned().collect::<Vec<_>>().join(",");
    image.properties.insert(key.to_string(), joined);
}

/// Changes a store-list property, if the image has it.
fn edit_store_list<T>(
    image: &mut Image,
    key: &str,
    change: impl FnOnce(&mut BTreeSet<String>) -> T,
) {
    if !image.properties.contains_key(key) {
        return;
    }
    let mut list = store_list(image, key);
    change(&mut list);
    set_store_list(image, key, &list);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lists_are_sorted_and_kept_when_empty() {
        let mut image = Image::new(ImageId::new(), None, now());
        set_store_list(
            &mut image,
            IMPORTING_TO,
            &BTreeSet::from(["s3".to_string(), "local".to_string()]),
        );
        assert_eq!(image.properties[IMPORTING_TO], "local,s3");
        edit_store_list(&mut image, IMPORTING_TO, |l| l.remove("local"));
        edit_store_list(&mut image, IMPORTING_TO, |l| l.remove("s3"));
        assert_eq!(image.properties[IMPORTING_TO], "");
        edit_store_list(&mut image, FAILED_IMPORT, |l| l.insert("s3".to_string()));
        assert!(
            !image.properties.contains_key(FAILED_IMPORT),
            "only an import's start creates the properties"
        );
    }
}
