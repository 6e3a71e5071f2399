//! `ImageService`, its settings and shared helpers (`finish_edit`, the quota-checked
//! insert), and the image metadata use cases: create, read, list, update, delete,
//! (de)activate, tags.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::tags::validate_tag;
use crate::error::{Error, Result};
use crate::huawei;
use crate::image::attributes::{self, AttributeLimits, Mode};
use crate::image::{HeldBlob, Image, ImageId, ImageStatus, Visibility};
use crate::listing::{ListLimits, ListQuery, ListScope};
use crate::pipeline::HashAlgo;
use crate::policy;
use crate::ports::{ImageRepo, JobRepo, RemoteSource, Usage};
use crate::principal::Principal;

/// Per-project quotas; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quotas {
    /// Maximum images per project.
    pub image_count: Option<u64>,
    /// Maximum bytes of image data per project.
    pub image_size_total: Option<u64>,
}

crate::string_enum! {
    /// Interoperable import methods.
    ImportMethod {
        /// Data staged with `PUT …/stage`.
        GlanceDirect = "glance-direct",
        /// Data fetched from a URL.
        WebDownload = "web-download",
        /// Data and boot metadata of an image of a Glance catalog (this one).
        GlanceDownload = "glance-download",
        /// An active image's data copied into more stores.
        CopyImage = "copy-image",
    }
}

pub use crate::outbound::UrlFilter;

/// Bounds on the job queue: a project past its share gets `QuotaExceeded`, and a full
/// queue is server-side saturation (`Unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Queued and running jobs per project.
    pub per_project: u64,
    /// Queued and running jobs of all projects.
    pub total: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            per_project: 100,
            total: 10_000,
        }
    }
}

/// Everything configurable about images.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// `image_size_cap`, bytes.
    pub size_cap: u64,
    /// The secure hash behind `os_hash_value`.
    pub hash_algo: HashAlgo,
    /// Whether data is inspected as it arrives, and refused when unsafe or not the
    /// declared `disk_format`. Only benchmarks turn this off, to measure its cost.
    pub inspect_formats: bool,
    /// The largest bucket file an image may be imported from (IMS: 128 GB).
    pub max_import_file: u64,
    /// Per-project quotas.
    pub quotas: Quotas,
    /// Tag and property limits.
    pub limits: AttributeLimits,
    /// Maximum members per image.
    pub max_members: usize,
    /// How big one list request may be.
    pub list_limits: ListLimits,
    /// How big one IMS sharing batch may be.
    pub sharing_limits: super::sharing::SharingLimits,
    /// Enabled import methods.
    pub import_methods: Vec<ImportMethod>,
    /// `web-download` URL filter.
    pub url_filter: UrlFilter,
    /// What `glance-download` may read from and what it copies.
    pub glance_download: super::GlanceDownloadSettings,
    /// Deadline and minimum rate of every outbound transfer.
    pub fetch_limits: crate::outbound::FetchLimits,
    /// Queued and running jobs allowed per project, and in all.
    pub job_limits: JobLimits,
    /// Caps and the idle timeout of client uploads.
    pub transfers: super::upload_limits::UploadLimits,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            size_cap: 1 << 40,
            hash_algo: HashAlgo::Sha512,
            inspect_formats: true,
            max_import_file: 128 << 30,
            quotas: Quotas::default(),
            limits: AttributeLimits::default(),
            max_members: 128,
            list_limits: ListLimits::default(),
            sharing_limits: super::sharing::SharingLimits::default(),
            import_methods: vec![
                ImportMethod::GlanceDirect,
                ImportMethod::WebDownload,
                ImportMethod::GlanceDownload,
                ImportMethod::CopyImage,
            ],
            url_filter: UrlFilter::default(),
            glance_download: super::GlanceDownloadSettings::default(),
            fetch_limits: crate::outbound::FetchLimits::default(),
            job_limits: JobLimits::default(),
            transfers: Default::default(),
        }
    }
}

/// How often an edit is applied before a concurrent writer's conflict is returned.
pub(crate) const EDIT_ATTEMPTS: usize = 3;

/// Applies one PATCH change to `image`.
fn apply_change(who: &Principal, image: &mut Image, change: &ImageChange) -> Result<()> {
    match change {
        ImageChange::Add(name, value) => attributes::set(who, image, name, value, Mode::Update),
        ImageChange::AddNew(name, value) => {
            attributes::check_writable(name, Mode::Update)?;
            if attributes::exists(image, name) {
                return Err(Error::Conflict(format!("Property {name} already present.")));
            }
            attributes::set(who, image, name, value, Mode::Update)
        }
        ImageChange::Replace(name, value) => {
            if !attributes::exists(image, name) {
                return Err(Error::Conflict(format!("Property {name} does not exist.")));
            }
            attributes::set(who, image, name, value, Mode::Update)
        }
        ImageChange::Remove(name) => attributes::remove(image, name),
    }
}

/// One change of a PATCH (JSON patch, already decoded by the dialect).
#[derive(Debug, Clone, PartialEq)]
pub enum ImageChange {
    /// Set the attribute, whether or not it exists.
    Add(String, Value),
    /// Set the attribute, which must not exist yet (the `add` of Glance's draft-4
    /// media type, `openstack-images-v2.0-json-patch`; base attributes always exist).
    AddNew(String, Value),
    /// Set the attribute, which must exist.
    Replace(String, Value),
    /// Remove the extra property, which must exist.
    Remove(String),
}

/// The image use cases.
#[derive(Clone)]
pub struct ImageService {
    pub(crate) repo: Arc<dyn ImageRepo>,
    pub(crate) jobs: Arc<dyn JobRepo>,
    pub(crate) stores: crate::storage::Stores,
    pub(crate) remote: Arc<dyn RemoteSource>,
    pub(crate) buckets: crate::bucket::Buckets,
    pub(crate) converter: Arc<dyn crate::ports::Converter>,
    pub(crate) settings: Arc<ImageSettings>,
    pub(crate) queue: crate::job::JobQueue,
    pub(crate) node: crate::context::Node,
    pub(crate) transfers: Arc<super::upload_limits::TransferGate>,
    /// Who else reads blobs (volumes backed by them): their data outlives the image.
    pub(crate) pins: Arc<dyn crate::volume::BlobPins>,
    /// The key service encrypted images' data keys are wrapped by; without it, images
    /// with a `cmk_id` are refused.
    pub(crate) keys: Option<Arc<crate::key::KeyService>>,
}

pub(crate) use crate::context::now;

impl ImageService {
    /// Wires the service to its ports; its jobs go to `queue`, its leases name `node`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        repo: Arc<dyn ImageRepo>,
        queue: crate::job::JobQueue,
        node: crate::context::Node,
        stores: crate::storage::Stores,
        remote: Arc<dyn RemoteSource>,
        buckets: crate::bucket::Buckets,
        converter: Arc<dyn crate::ports::Converter>,
        settings: ImageSettings,
    ) -> Self {
        ImageService {
            repo,
            jobs: Arc::clone(queue.repo()),
            queue,
            node,
            stores,
            remote,
            buckets,
            converter,
            transfers: Arc::new(super::upload_limits::TransferGate::new(
                settings.transfers.clone(),
            )),
            settings: Arc::new(settings),
            pins: Arc::new(crate::volume::repo::NoPins),
            keys: None,
        }
    }

    /// Keeps every blob `pins` holds when its image is deleted or its blob looks
    /// orphaned (volumes that are overlays on it).
    pub fn with_blob_pins(mut self, pins: Arc<dyn crate::volume::BlobPins>) -> Self {
        self.pins = pins;
        self
    }

    /// Encrypted images' data keys are wrapped by `keys`.
    pub fn with_keys(mut self, keys: Arc<crate::key::KeyService>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// A cheap catalog round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        self.repo.ping().await
    }

    /// Whether the default image store (where new data lands) answers now, for health
    /// checks.
    pub async fn check_store(&self) -> Result<()> {
        self.stores.default_store().blobs.check().await
    }

    /// The image stores.
    pub fn stores(&self) -> &crate::storage::Stores {
        &self.stores
    }

    /// The buckets, behind their access check.
    pub fn buckets(&self) -> &crate::bucket::Buckets {
        &self.buckets
    }

    /// The settings in force.
    pub fn settings(&self) -> &ImageSettings {
        &self.settings
    }

    /// Creates image metadata from named attributes (Glance's vocabulary).
    pub async fn create(&self, who: &Principal, attrs: BTreeMap<String, Value>) -> Result<Image> {
        let mut image = Self::new_image(who, &attrs)?;
        self.finish_edit(&mut image)?;
        self.insert_within_quota(&[(image.clone(), None)]).await?;
        Ok(image)
    }

    /// A new image of the caller's project from named attributes, validated one by one;
    /// unset formats default to `zvhd2`/`bare`.
    pub(crate) fn new_image(who: &Principal, attrs: &BTreeMap<String, Value>) -> Result<Image> {
        policy::check_writer(who)?;
        let id = match attrs.get("id") {
            None | Some(Value::Null) => ImageId::new(),
            Some(Value::String(s)) => ImageId::parse(s)
                .ok_or_else(|| Error::invalid(format!("id: '{s}' is not a valid UUID")))?,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "id: {other} is not of type 'string'"
                )));
            }
        };
        let mut image = Image::new(id, Some(who.project_id.clone()), now());
        for (name, value) in attrs {
            attributes::set(who, &mut image, name, value, Mode::Create)?;
        }
        if image.disk_format.is_none() && !attrs.contains_key("disk_format") {
            image.disk_format = Some(crate::image::DiskFormat::Zvhd2);
        }
        if image.container_format.is_none() && !attrs.contains_key("container_format") {
            image.container_format = Some(crate::image::ContainerFormat::Bare);
        }
        Ok(image)
    }

    /// Loads an image the caller may see; anything else is not found.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<Image> {
        let id = ImageId::parse(id).ok_or_else(|| Error::image_not_found(id))?;
        let image = self
            .repo
            .get(id)
            .await?
            .filter(|i| i.status != ImageStatus::Deleted)
            .ok_or_else(|| Error::image_not_found(id))?;
        let membership = if policy::is_owner(who, &image) {
            None
        } else {
            self.repo.membership(id, &who.project_id).await?
        };
        if !policy::can_see(who, &image, membership) {
            return Err(Error::image_not_found(id));
        }
        Ok(image)
    }

    /// Lists images the caller may see.
    pub async fn list(&self, who: &Principal, query: &ListQuery) -> Result<Vec<Image>> {
        let query = &query.clone().bounded(&self.settings.list_limits)?;
        if let Some(marker) = query.marker {
            self.get(who, &marker.to_string())
                .await
                .map_err(|_| Error::invalid(format!("marker {marker} could not be found.")))?;
        }
        let scope = if who.is_admin() {
            ListScope::Everything
        } else {
            ListScope::Project(who.project_id.clone())
        };
        self.repo.list(query, &scope).await
    }

    /// Applies a list of changes atomically.
    pub async fn update(
        &self,
        who: &Principal,
        id: &str,
        changes: Vec<ImageChange>,
    ) -> Result<Image> {
        self.edit(who, id, |image| {
            for change in &changes {
                apply_change(who, image, change)?;
            }
            Ok(true)
        })
        .await
    }

    /// Loads an image the caller may modify, lets `apply` change it (`false`: nothing to
    /// save), validates and saves it. When another request saved the image in between,
    /// the save is refused (the catalog compares revisions), and the edit is applied
    /// again to the fresh copy: concurrent edits of different attributes all survive, and
    /// an edit that no longer applies fails as it would have on its own.
    pub(crate) async fn edit(
        &self,
        who: &Principal,
        id: &str,
        mut apply: impl FnMut(&mut Image) -> Result<bool>,
    ) -> Result<Image> {
        let mut attempt = 1;
        loop {
            let mut image = self.get(who, id).await?;
            policy::check_modify(who, &image)?;
            let expected = image.status;
            if !apply(&mut image)? {
                return Ok(image);
            }
            self.finish_edit(&mut image)?;
            match self.repo.save(&image, expected, None).await {
                Err(Error::Conflict(_)) if attempt < EDIT_ATTEMPTS => attempt += 1,
                saved => return saved.map(|()| image),
            }
        }
    }

    /// Deletes an image and its data. When another request saved the image between the
    /// read and the write (a PATCH, an upload starting), the delete is tried again on
    /// the fresh copy: a delete does not depend on the metadata it read.
    pub async fn delete(&self, who: &Principal, id: &str) -> Result<()> {
        let mut attempt = 1;
        loop {
            match self.delete_once(who, id).await {
                Err(Error::Conflict(_)) if attempt < EDIT_ATTEMPTS => attempt += 1,
                done => return done,
            }
        }
    }

    async fn delete_once(&self, who: &Principal, id: &str) -> Result<()> {
        let mut image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        if image.protected {
            return Err(Error::Forbidden(format!(
                "Image {} is protected and cannot be deleted.",
                image.id
            )));
        }
        if image.status == ImageStatus::Saving || image.status == ImageStatus::Importing {
            // The worker notices the status change and discards what it wrote.
            tracing::info!(image.id = %image.id, "deleting an image while data is moving into it");
        }
        let expected = image.status;
        let held = image.data.take_blob();
        image.status = ImageStatus::Deleted;
        image.updated_at = now();
        self.repo.save(&image, expected, None).await?;
        if let Some(held) = held {
            self.release_blob(&held).await;
        }
        Ok(())
    }

    /// `active → deactivated` (idempotent on `deactivated`).
    pub async fn deactivate(&self, who: &Principal, id: &str) -> Result<()> {
        self.toggle_active(
            who,
            id,
            ImageStatus::Active,
            ImageStatus::Deactivated,
            "deactivate",
        )
        .await
    }

    /// `deactivated → active` (idempotent on `active`).
    pub async fn reactivate(&self, who: &Principal, id: &str) -> Result<()> {
        self.toggle_active(
            who,
            id,
            ImageStatus::Deactivated,
            ImageStatus::Active,
            "reactivate",
        )
        .await
    }

    async fn toggle_active(
        &self,
        who: &Principal,
        id: &str,
        from: ImageStatus,
        to: ImageStatus,
        verb: &str,
    ) -> Result<()> {
        let mut image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        if image.status == to {
            return Ok(());
        }
        if image.status != from {
            return Err(Error::Forbidden(format!(
                "Not allowed to {verb} image in status '{}'",
                image.status
            )));
        }
        image.transition(to)?;
        image.updated_at = now();
        self.repo.save(&image, from, None).await
    }

    /// Adds a tag (idempotent).
    pub async fn add_tag(&self, who: &Principal, id: &str, tag: &str) -> Result<()> {
        validate_tag(tag)?;
        self.edit(who, id, |image| Ok(image.tags.insert(tag.to_string())))
            .await
            .map(|_| ())
    }

    /// Removes a tag; not found if absent.
    pub async fn remove_tag(&self, who: &Principal, id: &str, tag: &str) -> Result<()> {
        self.edit(who, id, |image| {
            if image.tags.remove(tag) {
                return Ok(true);
            }
            Err(Error::NotFound {
                kind: crate::Entity::Tag,
                id: tag.to_string(),
            })
        })
        .await
        .map(|_| ())
    }

    /// Another project's usage and the quotas, for an admin.
    pub async fn project_usage(
        &self,
        who: &Principal,
        project_id: &str,
    ) -> Result<(Usage, Quotas)> {
        crate::policy::require_admin(who)?;
        Ok((self.repo.usage(project_id).await?, self.settings.quotas))
    }

    /// Usage and limits of the caller's project.
    pub async fn usage(&self, who: &Principal) -> Result<(Usage, Quotas)> {
        Ok((
            self.repo.usage(&who.project_id).await?,
            self.settings.quotas,
        ))
    }

    /// Validation, derived attributes and timestamps after any metadata edit.
    pub(crate) fn finish_edit(&self, image: &mut Image) -> Result<()> {
        if image.visibility == Visibility::Public && image.owner.is_none() {
            return Err(Error::invalid("A public image needs an owner"));
        }
        if matches!(image.visibility, Visibility::Public | Visibility::Community) {
            super::encryption::check_shareable(image)?;
        }
        crate::text::check_image(image)?;
        huawei::validate(image)?;
        huawei::refresh(image);
        attributes::check_limits(image, self.settings.limits)?;
        image.updated_at = now();
        Ok(())
    }

    /// Writes new images, each with its job when it has one, all or none, and only if
    /// their owner stays within the image count quota: the count is taken inside the
    /// insert's transaction, so parallel creates cannot all pass one check. The jobs
    /// must also fit in their project's share of the job queue.
    pub(crate) async fn insert_within_quota(
        &self,
        batch: &[(Image, Option<crate::job::Job>)],
    ) -> Result<()> {
        let jobs: Vec<_> = batch.iter().filter_map(|(_, j)| j.as_ref()).collect();
        if let Some(job) = jobs.first() {
            self.check_job_slots(&job.project_id, jobs.len() as u64)
                .await?;
        }
        let limit = self.settings.quotas.image_count;
        if self.repo.insert_all(batch, limit).await? {
            return Ok(());
        }
        Err(Error::QuotaExceeded(format!(
            "You are over your image count quota of {} images",
            limit.unwrap_or_default()
        )))
    }

    /// Deletes the copies of a blob an image no longer holds, in each store it held it
    /// in, unless an image that is not deleted (a copy shares its source's blob) still
    /// lists that store, or a volume is an overlay on it there. Called once the caller's
    /// own hold is gone from the catalog: a copy or a volume made meanwhile either holds
    /// the blob by then, or finds its source gone and gives up.
    pub(crate) async fn release_blob(&self, held: &HeldBlob) {
        let key = held.key.as_str();
        let kept = async {
            let mut kept = BTreeSet::new();
            for (stores, importing) in self.repo.blob_holders(key).await? {
                kept.extend(self.stores.holding(&stores).iter().map(|s| s.id.clone()));
                // A copy into these stores may be written and not yet recorded.
                kept.extend(importing);
            }
            if self.pins.pinned(key).await? {
                kept.insert(self.overlay_base_store().id.clone());
            }
            Ok::<_, Error>(kept)
        };
        let kept = match kept.await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(blob.key = %key, error = %e, "could not tell whether a blob is still held; orphan collection decides later");
                return;
            }
        };
        for store in self.stores.holding(&held.stores) {
            if kept.contains(&store.id) {
                tracing::info!(blob.key = %key, store = %store.id, "a blob stays while other images or volumes hold it");
            } else {
                self.delete_blob(key, store).await;
            }
        }
    }

    /// Deletes a blob from `store`, logging (not failing) on error: orphan collection
    /// retries later.
    pub(crate) async fn delete_blob(&self, key: &str, store: &crate::storage::ImageStore) {
        if let Err(e) = store.blobs.delete(key).await {
            tracing::warn!(blob.key = key, store = %store.id, error = %e, "could not delete blob; orphan collection will retry");
        }
    }

    /// The store volumes' overlays read their base blobs from (the default store where
    /// no store holds overlays: volumes are then copies, and pin nothing).
    fn overlay_base_store(&self) -> &crate::storage::ImageStore {
        self.stores
            .overlay_store()
            .and_then(|id| self.stores.get(id))
            .unwrap_or(self.stores.default_store())
    }

    /// Whether a volume can be an overlay on `image`'s blob: a copy of it is in the
    /// store volumes read their bases from. With one store, that is the image's store.
    pub(crate) fn in_overlay_store(&self, image: &Image) -> bool {
        !self.stores.is_multi() || image.data.stores.contains(&self.overlay_base_store().id)
    }

    /// Releases the blob `key` a volume was an overlay on, once the volume is gone.
    pub(crate) async fn release_overlay_base(&self, key: &str) {
        let held = HeldBlob {
            key: key.to_string(),
            stores: BTreeSet::from([self.overlay_base_store().id.clone()]),
        };
        self.release_blob(&held).await;
    }

    /// Deletes a blob written to the default store that no image came to hold.
    pub(crate) async fn discard_landed(&self, key: &str) {
        self.delete_blob(key, self.stores.default_store()).await;
    }
}
