//! Configuration: a TOML file, then `IMS_*` environment overrides, then CLI flags.
//!
//! Environment names: `IMS_<KEY>` for top-level keys and `IMS_<SECTION>__<KEY>` for keys in
//! a section (e.g. `IMS_IMAGES__SIZE_CAP=1073741824`). Values are parsed as TOML values
//! (numbers, booleans, arrays) and fall back to strings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ims_domain::outbound::FetchLimits;
use ims_domain::service::{ImageSettings, JobLimits, UrlFilter};
use serde::{Deserialize, Serialize};

mod transport;
pub use transport::{AuthConfig, HttpConfig};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the catalog, image data and clouds.yaml live.
    pub data_dir: PathBuf,
    /// This server's node id (leases, temp files, scratch directory); unset: the one in
    /// `<data-dir>/node-id`, created on first start. CLI commands use ids of their own.
    pub node_id: Option<String>,
    /// Listen address.
    pub listen: String,
    /// Public base URL for links and the service catalog. Required when `listen` is not
    /// a loopback address; otherwise defaults to `http://<listen address>`.
    pub public_url: Option<String>,
    /// Catalog database URL; defaults to SQLite in the data dir.
    pub database_url: Option<String>,
    /// Connection pool and statement limits of the catalog database.
    pub database: DatabaseConfig,
    /// 64 hex digits sealing stored AK/SK secrets; defaults to `<data-dir>/credential.key`,
    /// created on first use. Every node of a cluster needs the same key.
    pub credential_key: Option<String>,
    /// Region shown in the service catalog.
    pub region: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Token lifetime in seconds.
    pub token_ttl_secs: u64,
    /// Image settings.
    pub images: ImagesConfig,
    /// web-download URL filter.
    pub web_download: WebDownloadConfig,
    /// What glance-download copies.
    pub glance_download: GlanceDownloadConfig,
    /// Job engine.
    pub jobs: JobsConfig,
    /// Where buckets live: the embedded directories or S3/OBS stores.
    pub buckets: BucketsConfig,
    /// Where image data lives: `<data-dir>/images/` or an S3-compatible bucket.
    pub image_stores: ImageStoresConfig,
    /// Connection and request-body limits.
    pub http: HttpConfig,
    /// Password-check limits.
    pub auth: AuthConfig,
    /// Limits on data transfers and the threads that serve them.
    pub transfers: TransfersConfig,
    /// Volume quotas and limits.
    pub volumes: VolumesConfig,
    /// The ZStack dialect.
    pub zstack: ZStackConfig,
    /// Image servers and what runs them.
    pub servers: ServersConfig,
    /// The key management service.
    pub kms: KmsConfig,
    /// Where `/metrics` is served besides the API listener.
    pub metrics: MetricsConfig,
}

/// `[metrics]`: Prometheus's `/metrics`. On the API listener it needs an admin token;
/// `listen` adds a listener serving it alone without one, for a monitoring system on a
/// management network.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Record metrics and serve `/metrics`; off, nothing is recorded (every recording is
    /// a no-op) and `/metrics` is not served.
    pub enabled: bool,
    /// Address of the metrics-only listener (for example `127.0.0.1:9293`); unset: none.
    pub listen: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: None,
        }
    }
}

/// `[kms]`: the built-in key management service and its master key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KmsConfig {
    /// The master key (64 hex digits) sealing every key of the built-in KMS, given
    /// directly (for example through `IMS_KMS__MASTER_KEY`).
    pub master_key: Option<String>,
    /// A file holding the master key (a mounted secret); used when `master_key` is unset.
    pub master_key_file: Option<PathBuf>,
    /// Keys one project may hold.
    pub max_keys_per_project: u64,
    /// Where new keys are made: `builtin` (sealed in the catalog) or `kmip` (an external
    /// KMS over KMIP; the material never leaves it).
    pub backend: String,
    /// The KMIP server's host name or IP address (it must match its certificate).
    pub kmip_host: String,
    /// The KMIP server's port.
    pub kmip_port: u16,
    /// PEM file of the CA that signs the KMIP server's certificate.
    pub kmip_ca_file: Option<PathBuf>,
    /// PEM file of ims's client certificate for the KMIP server.
    pub kmip_cert_file: Option<PathBuf>,
    /// PEM file of that certificate's private key.
    pub kmip_key_file: Option<PathBuf>,
}

impl Default for KmsConfig {
    fn default() -> Self {
        KmsConfig {
            master_key: None,
            master_key_file: None,
            max_keys_per_project: ims_domain::key::KeySettings::default().max_keys_per_project,
            backend: "builtin".into(),
            kmip_host: "127.0.0.1".into(),
            kmip_port: 5696,
            kmip_ca_file: None,
            kmip_cert_file: None,
            kmip_key_file: None,
        }
    }
}

/// `[servers]`: image servers (Workspace's image instances) and their compute driver.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServersConfig {
    /// `auto` (QEMU where `qemu-system-x86_64` is installed, else `none`), `qemu` or
    /// `none` (a server is its root volume; nothing boots).
    pub driver: String,
    /// Virtual CPUs per server.
    pub vcpus: u32,
    /// Guest memory per server, MiB.
    pub memory_mib: u64,
}

/// The defaults of `[servers]` are the domain's ([`ims_domain::server::ServerLimits`]).
impl Default for ServersConfig {
    fn default() -> Self {
        let d = ims_domain::server::ServerLimits::default();
        ServersConfig {
            driver: "auto".into(),
            vcpus: d.vcpus,
            memory_mib: d.memory_mib,
        }
    }
}

impl ServersConfig {
    /// The VM size these keys describe.
    pub fn limits(&self) -> ims_domain::server::ServerLimits {
        ims_domain::server::ServerLimits {
            vcpus: self.vcpus.clamp(1, 64),
            memory_mib: self.memory_mib.clamp(64, 1 << 20),
        }
    }
}

/// `[zstack]`: sessions and api-jobs of the ZStack dialect.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZStackConfig {
    /// A session lapses this long after its last use (ZStack's
    /// `identity.session.timeout`).
    pub session_timeout_secs: u64,
    /// Live sessions one user may hold (ZStack's `identity.session.maxConcurrent`).
    pub max_sessions_per_user: u64,
    /// How long a mutating call waits for its durable work before answering 202 with an
    /// api-job location.
    pub job_wait_ms: u64,
    /// How long a finished api-job stays pollable (ZStack's
    /// `rest.completedApi.expiredPeriod`).
    pub job_retention_secs: u64,
}

impl Default for ZStackConfig {
    fn default() -> Self {
        ZStackConfig {
            session_timeout_secs: 7200,
            max_sessions_per_user: 500,
            job_wait_ms: 3000,
            job_retention_secs: 10800,
        }
    }
}

/// `[volumes]`: per-project quotas and the largest volume.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumesConfig {
    /// Volumes holding data (creating, ready, deleted) per project; 0 = unlimited.
    pub quota_count: u64,
    /// Total virtual size of those volumes per project, bytes; 0 = unlimited.
    pub quota_size_total: u64,
    /// The largest volume, bytes.
    pub max_size: u64,
}

/// The defaults of `[volumes]` are the domain's ([`ims_domain::volume::VolumeSettings`]).
impl Default for VolumesConfig {
    fn default() -> Self {
        let d = ims_domain::volume::VolumeSettings::default();
        VolumesConfig {
            quota_count: d.quotas.count.unwrap_or(0),
            quota_size_total: d.quotas.size_total.unwrap_or(0),
            max_size: d.max_size,
        }
    }
}

impl VolumesConfig {
    /// The volume settings these keys describe.
    pub fn settings(&self) -> ims_domain::volume::VolumeSettings {
        let nonzero = |n: u64| (n > 0).then_some(n);
        ims_domain::volume::VolumeSettings {
            quotas: ims_domain::volume::repo::VolumeQuotas {
                count: nonzero(self.quota_count),
                size_total: nonzero(self.quota_size_total),
            },
            max_size: self.max_size.max(512),
            ..Default::default()
        }
    }
}

/// `[transfers]`: client uploads at once, their idle timeout, and the data path's pools.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransfersConfig {
    /// Uploads (`PUT …/file`, `…/stage`) at once on this node; 0 = no limit. Over it: 503.
    pub max_uploads: usize,
    /// Uploads at once by one project on this node; 0 = no limit. Over it: 429.
    pub max_uploads_per_project: usize,
    /// Seconds an upload body may send nothing before the upload fails (400) and its
    /// image is queued again.
    pub body_idle_timeout_secs: u64,
    /// Threads hashing image data; 0 = one per core.
    pub hash_threads: usize,
    /// Threads doing blob and bucket file I/O.
    pub disk_threads: usize,
}

impl Default for TransfersConfig {
    fn default() -> Self {
        let limits = ims_domain::service::UploadLimits::default();
        TransfersConfig {
            max_uploads: limits.max_uploads,
            max_uploads_per_project: limits.max_uploads_per_project,
            body_idle_timeout_secs: limits.body_idle_timeout.as_secs(),
            hash_threads: 0,
            disk_threads: ims_domain::workers::DEFAULT_DISK_THREADS,
        }
    }
}

impl TransfersConfig {
    /// The upload limits these keys describe.
    pub fn limits(&self) -> ims_domain::service::UploadLimits {
        ims_domain::service::UploadLimits {
            max_uploads: self.max_uploads,
            max_uploads_per_project: self.max_uploads_per_project,
            body_idle_timeout: std::time::Duration::from_secs(self.body_idle_timeout_secs.max(1)),
        }
    }
}

/// `[database]`: the catalog's connection pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connections at most; 0 picks the backend's default (8 for SQLite, 16 for
    /// PostgreSQL). On PostgreSQL, nodes × this must stay below the server's
    /// `max_connections`.
    pub max_connections: u32,
    /// Seconds a request waits for a connection (a free one, or a new one while the
    /// database is unreachable) before it fails with 503.
    pub acquire_timeout_secs: u64,
    /// The longest one statement may run, milliseconds (PostgreSQL `statement_timeout`,
    /// set on each connection; migrations are exempt); 0 = no limit. Not applied on
    /// SQLite.
    pub statement_timeout_ms: u64,
}

/// The defaults of `[database]` are the pool's own ([`ims_db::PoolSettings::default`]).
impl Default for DatabaseConfig {
    fn default() -> Self {
        let d = ims_db::PoolSettings::default();
        DatabaseConfig {
            max_connections: d.max_connections.unwrap_or(0),
            acquire_timeout_secs: d.acquire_timeout.as_secs(),
            statement_timeout_ms: d
                .statement_timeout
                .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl DatabaseConfig {
    /// The pool settings these keys describe.
    pub fn pool_settings(&self) -> ims_db::PoolSettings {
        let nonzero = |n: u64| (n > 0).then_some(n);
        ims_db::PoolSettings {
            max_connections: (self.max_connections > 0).then_some(self.max_connections),
            acquire_timeout: std::time::Duration::from_secs(self.acquire_timeout_secs.max(1)),
            statement_timeout: nonzero(self.statement_timeout_ms)
                .map(std::time::Duration::from_millis),
        }
    }
}

/// `[images]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    /// Largest image in bytes (`image_size_cap`).
    pub size_cap: u64,
    /// `sha256`, `sha384` or `sha512`.
    pub hash_algo: String,
    /// Inspect data as it arrives and refuse unsafe or mismatched content.
    pub inspect_formats: bool,
    /// The largest bucket file an image may be imported from, bytes.
    pub max_import_file: u64,
    /// Images per project; 0 = unlimited.
    pub quota_image_count: u64,
    /// Bytes per project; 0 = unlimited.
    pub quota_image_size_total: u64,
    /// Tags per image.
    pub max_tags: usize,
    /// Extra properties per image.
    pub max_properties: usize,
    /// Members per image.
    pub max_members: usize,
    /// Bytes of one property value.
    pub max_property_value: usize,
    /// Bytes of all property names, values and tags of one image.
    pub max_metadata_bytes: usize,
    /// Sort keys in one list request.
    pub list_max_sort_keys: usize,
    /// Attribute and property filters in one list request.
    pub list_max_filters: usize,
    /// `tag=` filters in one list request.
    pub list_max_tags: usize,
    /// Values of one `in:` filter.
    pub list_max_in_values: usize,
    /// Distinct images in one IMS sharing batch.
    pub sharing_max_images: usize,
    /// Distinct projects in one IMS sharing batch.
    pub sharing_max_projects: usize,
    /// Enabled import methods.
    pub import_methods: Vec<String>,
}

/// `[web_download]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebDownloadConfig {
    /// Allowed URL schemes.
    pub schemes: Vec<String>,
    /// Allowed ports; empty allows any.
    pub ports: Vec<u16>,
    /// Allow addresses that are not globally reachable (off by default: SSRF).
    pub allow_private: bool,
    /// Exact addresses exempt from the refusal (a test harness's own loopback server,
    /// say); ports are still checked.
    pub allow_addresses: Vec<std::net::IpAddr>,
    /// Names answered from this table instead of DNS (`{ "mirror.example" =
    /// ["192.0.2.7"] }`); the addresses are filtered like resolved ones.
    pub resolve: std::collections::BTreeMap<String, Vec<std::net::IpAddr>>,
    /// Seconds to connect (TCP and TLS).
    pub connect_timeout_secs: u64,
    /// Seconds any single read may wait (the response head, each part of the body).
    pub read_timeout_secs: u64,
    /// Seconds one whole transfer may take, connecting included.
    pub deadline_secs: u64,
    /// The slowest average rate a transfer may keep over a window, bytes per second.
    pub min_bytes_per_sec: u64,
    /// The window over which `min_bytes_per_sec` is measured, seconds.
    pub rate_window_secs: u64,
}

/// `[glance_download]` (Glance's `[glance_download_properties]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlanceDownloadConfig {
    /// Prefixes of the source's extra properties that a glance-download import copies to
    /// the target image (a trailing `*` means the same prefix).
    pub extra_properties: Vec<String>,
}

impl Default for GlanceDownloadConfig {
    fn default() -> Self {
        GlanceDownloadConfig {
            extra_properties: ims_domain::service::glance_download::DEFAULT_EXTRA_PROPERTIES
                .iter()
                .map(|p| p.to_string())
                .collect(),
        }
    }
}

/// `[jobs]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs running at once on this node.
    pub concurrency: usize,
    /// Per-kind limits on this node, e.g. `{ image_export = 1, image_copy = 2 }`; kinds
    /// not named are bounded by `concurrency` only.
    pub per_kind: std::collections::BTreeMap<String, usize>,
    /// Lease length in seconds; heartbeats renew it every third.
    pub lease_secs: u64,
    /// Waiting and running jobs per project; more is a quota error.
    pub max_per_project: u64,
    /// Waiting and running jobs in all; more is 503.
    pub max_queued: u64,
}

/// `[buckets]`: which store serves each bucket.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketsConfig {
    /// The store of every bucket no store lists: `local` (directories under
    /// `<data-dir>/buckets/`) or the name of a store in `stores`.
    pub default: String,
    /// Object stores by name.
    pub stores: std::collections::BTreeMap<String, StoreConfig>,
    /// Owner project (id or name) of each bucket named here, e.g. `image-test =
    /// "tenant-a"`: how buckets on S3/OBS get owners. Recorded in the catalog at every
    /// start, over what `ims bucket assign` set. Unnamed buckets keep the owner the
    /// catalog has (`ims bucket create --project`), or none (administrators only).
    pub owners: std::collections::BTreeMap<String, String>,
}

/// `[image_stores]`: where image data is stored. With two or more stores ims offers
/// Glance's multi-store API (`/v2/info/stores`, `stores` on imports, `copy-image`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageStoresConfig {
    /// The store new image data goes to: `local` (`<data-dir>/images/`) or the name of a
    /// store under `[image_stores.stores]`.
    pub default: String,
    /// Image stores by name. `local` is a store when it is the default or listed here
    /// (to give it a weight or description; it is always `<data-dir>/images/`).
    pub stores: std::collections::BTreeMap<String, ImageStoreConfig>,
}

impl Default for ImageStoresConfig {
    fn default() -> Self {
        ImageStoresConfig {
            default: LOCAL_STORE.into(),
            stores: Default::default(),
        }
    }
}

/// The backend of an image store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageStoreKind {
    /// A local (or mounted) directory.
    File,
    /// A bucket of an S3-compatible store (Ceph RGW, MinIO, AWS, OBS's S3 API).
    S3,
}

/// `[image_stores.stores.<name>]`: one image store.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageStoreConfig {
    /// `file` or `s3`.
    pub kind: ImageStoreKind,
    /// What `/v2/info/stores` says about it.
    #[serde(default)]
    pub description: Option<String>,
    /// Preference: heavier stores are listed first in an image's `stores` and read first.
    #[serde(default)]
    pub weight: i64,
    /// `file`: the directory (not for `local`, which is `<data-dir>/images/`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `s3`: base URL, `http(s)://host[:port]`.
    #[serde(default)]
    pub endpoint: String,
    /// `s3`: signing region.
    #[serde(default = "default_region")]
    pub region: String,
    /// `s3`: the bucket holding the image data; it must exist.
    #[serde(default)]
    pub bucket: String,
    /// `s3`: prepended to every object ims writes there.
    #[serde(default = "default_image_prefix")]
    pub prefix: String,
    /// `s3`: access key id.
    #[serde(default)]
    pub access_key_id: String,
    /// `s3`: secret access key; never printed, never serialized.
    #[serde(default = "no_secret", skip_serializing, deserialize_with = "secret")]
    pub secret_access_key: ims_blob::Secret,
    /// `s3`: MiB per part of a multipart upload (at least 5).
    #[serde(default = "default_part_mib")]
    pub part_size_mib: usize,
    /// `s3`: parts of one upload in flight at once.
    #[serde(default = "default_part_concurrency")]
    pub concurrency: usize,
}

fn no_secret() -> ims_blob::Secret {
    ims_blob::Secret::new("")
}

fn default_image_prefix() -> String {
    "images/".into()
}

fn default_part_mib() -> usize {
    16
}

fn default_part_concurrency() -> usize {
    2
}

impl ImageStoresConfig {
    /// Refuses a default that names no store, and stores that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.default != LOCAL_STORE && !self.stores.contains_key(&self.default) {
            anyhow::bail!(
                "image_stores.default: no store named {:?} (use \"{LOCAL_STORE}\" or a name under [image_stores.stores])",
                self.default
            );
        }
        for (name, store) in &self.stores {
            store
                .validate(name)
                .map_err(|e| anyhow::anyhow!("image_stores.stores.{name}: {e}"))?;
        }
        Ok(())
    }

    /// Every store with its settings (`None` for an implicit `local`): the default
    /// first, then the others in name order (the order `/v2/info/stores` lists them).
    pub fn all(&self) -> Vec<(&str, Option<&ImageStoreConfig>)> {
        let mut all: Vec<(&str, Option<&ImageStoreConfig>)> =
            vec![(self.default.as_str(), self.stores.get(&self.default))];
        all.extend(
            self.stores
                .iter()
                .filter(|(name, _)| **name != self.default)
                .map(|(name, store)| (name.as_str(), Some(store))),
        );
        all
    }

    /// Refuses two stores in one place (a directory, or a bucket and prefix): each would
    /// take the other's blobs for orphans and delete them.
    pub fn check_apart(&self, data_dir: &Path) -> Result<()> {
        let mut places = std::collections::BTreeMap::new();
        for (name, store) in self.all() {
            let place = match store {
                Some(s) if s.kind == ImageStoreKind::S3 => {
                    format!(
                        "{} {} {}",
                        s.endpoint.trim_end_matches('/'),
                        s.bucket,
                        s.prefix
                    )
                }
                Some(ImageStoreConfig {
                    path: Some(path), ..
                }) => path.display().to_string(),
                _ => data_dir.join("images").display().to_string(),
            };
            let place = place.trim_end_matches('/').to_string();
            if let Some(other) = places.insert(place, name) {
                anyhow::bail!("image_stores.stores.{name}: the same place as store {other}");
            }
        }
        Ok(())
    }

    /// Whether `<data-dir>/images/` is one of the stores.
    pub fn has_local(&self) -> bool {
        self.default == LOCAL_STORE || self.stores.contains_key(LOCAL_STORE)
    }

    /// The default store's settings when it is in S3, or `None`.
    pub fn remote(&self) -> Option<(&str, &ImageStoreConfig)> {
        self.stores
            .get_key_value(&self.default)
            .filter(|(_, s)| s.kind == ImageStoreKind::S3)
            .map(|(n, s)| (n.as_str(), s))
    }
}

impl ImageStoreConfig {
    fn validate(&self, name: &str) -> Result<()> {
        let id_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && !name.starts_with("os_glance");
        if !id_ok {
            anyhow::bail!("a store name is 1 to 64 of a-z, 0-9, _ and -, not starting os_glance");
        }
        match self.kind {
            ImageStoreKind::File if name == LOCAL_STORE && self.path.is_some() => {
                anyhow::bail!("path: {LOCAL_STORE} is always <data-dir>/images/")
            }
            ImageStoreKind::File if name != LOCAL_STORE && self.path.is_none() => {
                anyhow::bail!("path: a file store needs its directory")
            }
            ImageStoreKind::S3 if name == LOCAL_STORE => {
                anyhow::bail!("kind: {LOCAL_STORE} is a file store")
            }
            ImageStoreKind::S3 if self.endpoint.is_empty() || self.bucket.is_empty() => {
                anyhow::bail!("endpoint and bucket are required")
            }
            ImageStoreKind::S3
                if self.access_key_id.is_empty() || self.secret_access_key.expose().is_empty() =>
            {
                anyhow::bail!("access_key_id and secret_access_key are required")
            }
            ImageStoreKind::S3 if self.part_size_mib < 5 => {
                anyhow::bail!("part_size_mib: at least 5")
            }
            _ => Ok(()),
        }
    }
}

/// The name of the embedded store (`<data-dir>/buckets/`).
pub const LOCAL_STORE: &str = "local";

/// `[buckets.stores.<name>]`: one S3-compatible or OBS endpoint and its keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `s3` or `obs`.
    pub kind: StoreKind,
    /// Base URL, `http(s)://host[:port]`.
    pub endpoint: String,
    /// Signing region (S3 only; OBS reads it from the endpoint).
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key; never printed, never serialized.
    #[serde(skip_serializing, deserialize_with = "secret")]
    pub secret_access_key: ims_blob::Secret,
    /// The buckets this store serves.
    #[serde(default)]
    pub buckets: Vec<String>,
}

/// The protocol of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// S3-compatible.
    S3,
    /// Huawei OBS.
    Obs,
}

impl StoreKind {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::S3 => "s3",
            StoreKind::Obs => "obs",
        }
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ims_blob::Secret, D::Error> {
    String::deserialize(d).map(ims_blob::Secret::new)
}

impl BucketsConfig {
    /// The name of the store serving `bucket`.
    pub fn store_of(&self, bucket: &str) -> &str {
        self.stores
            .iter()
            .find(|(_, s)| s.buckets.iter().any(|b| b == bucket))
            .map_or(self.default.as_str(), |(name, _)| name.as_str())
    }

    /// Refuses what would route a bucket nowhere or to two places.
    pub fn validate(&self) -> Result<()> {
        if self.default != LOCAL_STORE && !self.stores.contains_key(&self.default) {
            anyhow::bail!(
                "buckets.default: no store named {:?} (use \"{LOCAL_STORE}\" or a name under [buckets.stores])",
                self.default
            );
        }
        for (bucket, project) in &self.owners {
            ims_domain::bucket::check_bucket(bucket)
                .map_err(|e| anyhow::anyhow!("buckets.owners: {e}"))?;
            if project.trim().is_empty() {
                anyhow::bail!("buckets.owners.{bucket}: the project is empty");
            }
        }
        let mut owner: std::collections::BTreeMap<&str, &str> = Default::default();
        for (name, store) in &self.stores {
            if name == LOCAL_STORE {
                anyhow::bail!(
                    "buckets.stores.{LOCAL_STORE}: the name is reserved for the embedded buckets"
                );
            }
            if store.endpoint.trim().is_empty() {
                anyhow::bail!("buckets.stores.{name}.endpoint is empty");
            }
            if store.access_key_id.is_empty() || store.secret_access_key.expose().is_empty() {
                anyhow::bail!(
                    "buckets.stores.{name}: access_key_id and secret_access_key are required"
                );
            }
            for bucket in &store.buckets {
                ims_domain::bucket::check_bucket(bucket)
                    .map_err(|e| anyhow::anyhow!("buckets.stores.{name}.buckets: {e}"))?;
                if let Some(other) = owner.insert(bucket, name) {
                    anyhow::bail!(
                        "bucket {bucket:?} is assigned to two stores: {other} and {name}"
                    );
                }
            }
        }
        Ok(())
    }
}

impl Default for BucketsConfig {
    fn default() -> Self {
        BucketsConfig {
            default: LOCAL_STORE.into(),
            stores: Default::default(),
            owners: Default::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./ims-data"),
            node_id: None,
            listen: "127.0.0.1:9292".into(),
            public_url: None,
            database_url: None,
            database: DatabaseConfig::default(),
            credential_key: None,
            region: "RegionOne".into(),
            log_format: "text".into(),
            token_ttl_secs: 3600,
            images: ImagesConfig::default(),
            web_download: WebDownloadConfig::default(),
            glance_download: GlanceDownloadConfig::default(),
            jobs: JobsConfig::default(),
            buckets: BucketsConfig::default(),
            image_stores: ImageStoresConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            transfers: TransfersConfig::default(),
            volumes: VolumesConfig::default(),
            zstack: ZStackConfig::default(),
            servers: ServersConfig::default(),
            kms: KmsConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// The defaults of `[images]` are the domain's own ([`ImageSettings::default`]), written
/// as configuration keys; `0` stands for "no quota".
impl Default for ImagesConfig {
    fn default() -> Self {
        let d = ImageSettings::default();
        ImagesConfig {
            size_cap: d.size_cap,
            hash_algo: d.hash_algo.as_str().into(),
            inspect_formats: d.inspect_formats,
            max_import_file: d.max_import_file,
            quota_image_count: d.quotas.image_count.unwrap_or(0),
            quota_image_size_total: d.quotas.image_size_total.unwrap_or(0),
            max_tags: d.limits.max_tags,
            max_properties: d.limits.max_properties,
            max_members: d.max_members,
            max_property_value: d.limits.max_property_value,
            max_metadata_bytes: d.limits.max_metadata_bytes,
            list_max_sort_keys: d.list_limits.sort_keys,
            list_max_filters: d.list_limits.filters,
            list_max_tags: d.list_limits.tags,
            list_max_in_values: d.list_limits.in_values,
            sharing_max_images: d.sharing_limits.images,
            sharing_max_projects: d.sharing_limits.projects,
            import_methods: d
                .import_methods
                .iter()
                .map(|m| m.as_str().to_string())
                .collect(),
        }
    }
}

/// The defaults of `[web_download]`: the domain's address filter and transfer limits, and
/// the HTTP client's timeouts.
impl Default for WebDownloadConfig {
    fn default() -> Self {
        let (filter, limits) = (UrlFilter::default(), FetchLimits::default());
        let http = ims_blob::HttpSettings::default();
        WebDownloadConfig {
            schemes: filter.schemes,
            ports: filter.ports,
            allow_private: filter.allow_private,
            allow_addresses: filter.allow_addresses,
            resolve: http.resolve.into_iter().collect(),
            connect_timeout_secs: http.connect_timeout.as_secs(),
            read_timeout_secs: http.read_timeout.as_secs(),
            deadline_secs: limits.deadline.as_secs(),
            min_bytes_per_sec: limits.min_bytes_per_sec,
            rate_window_secs: limits.rate_window.as_secs(),
        }
    }
}

/// Jobs running at once on a node unless configured.
const DEFAULT_JOB_CONCURRENCY: usize = 2;

/// The defaults of `[jobs]`: the domain's queue limits and lease length.
impl Default for JobsConfig {
    fn default() -> Self {
        let limits = JobLimits::default();
        JobsConfig {
            concurrency: DEFAULT_JOB_CONCURRENCY,
            per_kind: std::collections::BTreeMap::new(),
            lease_secs: ims_domain::context::Node::DEFAULT_LEASE.as_secs(),
            max_per_project: limits.per_project,
            max_queued: limits.total,
        }
    }
}

/// Loads the file (if any) and applies `IMS_*` overrides from `env`.
pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Config> {
    let mut doc: toml::Table = match file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .parse()
            .with_context(|| format!("parsing {}", p.display()))?,
        None => toml::Table::new(),
    };
    let known = known_keys();
    for (key, raw) in env {
        let Some(name) = key.strip_prefix("IMS_") else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        // Other IMS_* variables (IMS_CONFIG, IMS_NEW_USER_PASSWORD, a test's IMS_BIN…)
        // are not configuration; only names of real keys apply.
        if !known.contains(&name) {
            continue;
        }
        // A TOML value if it parses as one (numbers, booleans, arrays), else a string.
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        match name.split_once("__") {
            Some((section, key)) => {
                let entry = doc
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = entry {
                    t.insert(key.to_string(), value);
                }
            }
            None => {
                doc.insert(name, value);
            }
        }
    }
    let config: Config = toml::Value::Table(doc)
        .try_into()
        .context("invalid configuration")?;
    config.buckets.validate()?;
    config.image_stores.validate()?;
    config.image_stores.check_apart(&config.data_dir)?;
    Ok(config)
}

/// `key` and `section__key` for every configuration key.
fn known_keys() -> Vec<String> {
    let Ok(toml::Value::Table(defaults)) = toml::Value::try_from(Config::default()) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (k, v) in defaults {
        if let toml::Value::Table(section) = v {
            keys.extend(section.keys().map(|s| format!("{k}__{s}")));
        }
        keys.push(k);
    }
    // Optional keys are absent from the serialized defaults.
    keys.extend(
        [
            "public_url",
            "database_url",
            "credential_key",
            "node_id",
            "kms__master_key",
            "kms__master_key_file",
            "kms__kmip_ca_file",
            "kms__kmip_cert_file",
            "kms__kmip_key_file",
            "metrics__listen",
        ]
        .map(String::from),
    );
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_sections() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ims.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\n[images]\nsize_cap = 5\n").unwrap();
        let env = vec![
            ("IMS_LISTEN".to_string(), "127.0.0.1:2".to_string()),
            ("IMS_IMAGES__QUOTA_IMAGE_COUNT".to_string(), "3".to_string()),
            (
                "IMS_WEB_DOWNLOAD__ALLOW_PRIVATE".to_string(),
                "true".to_string(),
            ),
            ("IMS_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("OTHER".to_string(), "1".to_string()),
        ];
        let c = load(Some(&f), env.into_iter()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.images.size_cap, 5);
        assert_eq!(c.images.quota_image_count, 3);
        assert!(c.web_download.allow_private);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn database_pool_keys_map_to_pool_settings() {
        let defaults = Config::default().database.pool_settings();
        assert_eq!(defaults.max_connections, None);
        assert_eq!(defaults.acquire_timeout, std::time::Duration::from_secs(10));
        assert_eq!(
            defaults.statement_timeout,
            Some(std::time::Duration::from_secs(30))
        );
        let env = vec![
            ("IMS_DATABASE__MAX_CONNECTIONS".to_string(), "4".to_string()),
            (
                "IMS_DATABASE__ACQUIRE_TIMEOUT_SECS".to_string(),
                "2".to_string(),
            ),
            (
                "IMS_DATABASE__STATEMENT_TIMEOUT_MS".to_string(),
                "0".to_string(),
            ),
            (
                "IMS_DATABASE_URL".to_string(),
                "postgres://u@h/db".to_string(),
            ),
        ];
        let c = load(None, env.into_iter()).unwrap();
        assert_eq!(c.database_url.as_deref(), Some("postgres://u@h/db"));
        let pool = c.database.pool_settings();
        assert_eq!(pool.max_connections, Some(4));
        assert_eq!(pool.acquire_timeout, std::time::Duration::from_secs(2));
        assert_eq!(pool.statement_timeout, None);
    }

    #[test]
    fn unknown_file_keys_are_errors_but_other_env_vars_are_not_config() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ims.toml");
        std::fs::write(&f, "[images]\nbogus = 1\n").unwrap();
        assert!(load(Some(&f), std::iter::empty()).is_err());
        let env = vec![
            ("IMS_CONFIG".to_string(), "x".to_string()),
            ("IMS_BIN".to_string(), "/x".to_string()),
        ];
        assert!(load(None, env.into_iter()).is_ok());
    }

    /// Every default docs/CONFIG.md states (the first `value` of a table row) is the
    /// built-in one: the defaults come from the domain's, and the doc must follow them.
    #[test]
    fn the_documented_defaults_are_the_built_in_ones() {
        let doc = include_str!("../../../docs/CONFIG.md");
        let toml::Value::Table(defaults) = toml::Value::try_from(Config::default()).unwrap() else {
            panic!("the defaults are not a table");
        };
        let mut section: Option<String> = None;
        let mut checked = 0;
        for line in doc.lines() {
            if let Some(heading) = line.strip_prefix("## ") {
                section = match heading.trim() {
                    "Top-level keys" => Some(String::new()),
                    h => h
                        .strip_prefix("`[")
                        .and_then(|h| h.strip_suffix("]`"))
                        .map(str::to_string),
                };
                continue;
            }
            let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) else {
                continue;
            };
            let mut cells = row.split(" | ");
            let (Some(key), Some(value)) = (cells.next(), cells.next()) else {
                continue;
            };
            let key = key.trim_end_matches('`');
            if !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                continue; // a table's entries (`stores.<name>.kind`), or commands
            }
            let table = if section.is_empty() {
                &defaults
            } else {
                match defaults.get(section.as_str()) {
                    Some(toml::Value::Table(t)) => t,
                    _ => panic!("docs/CONFIG.md documents [{section}], which is no section"),
                }
            };
            // An optional key is absent from the defaults; the doc says "unset".
            let Some(built_in) = table.get(key) else {
                assert!(
                    value.starts_with("unset") || value.starts_with("none"),
                    "[{section}] {key}: documented default {value}, but the key has none"
                );
                continue;
            };
            let text = value
                .strip_prefix('`')
                .and_then(|v| v.split_once('`'))
                .map(|(v, _)| v)
                .unwrap_or_else(|| panic!("[{section}] {key}: no default value in {value:?}"));
            let documented = format!("v = {text}")
                .parse::<toml::Table>()
                .map(|mut t| t.remove("v").unwrap())
                .unwrap_or_else(|_| toml::Value::String(text.to_string()));
            assert_eq!(&documented, built_in, "[{section}] {key}");
            checked += 1;
        }
        assert!(
            checked >= 55,
            "only {checked} defaults found in docs/CONFIG.md"
        );
    }

    fn load_str(toml: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ims.toml");
        std::fs::write(&f, toml).unwrap();
        load(Some(&f), std::iter::empty())
    }

    #[test]
    fn image_stores_must_name_a_usable_default() {
        let store = |name: &str, extra: &str| {
            format!(
                "[image_stores.stores.{name}]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9000\"\n\
                 bucket = \"img\"\naccess_key_id = \"AK\"\nsecret_access_key = \"SK\"\n{extra}"
            )
        };
        let ok = load_str(&format!(
            "[image_stores]\ndefault = \"s3\"\n{}",
            store("s3", "")
        ))
        .unwrap();
        let (name, s3) = ok.image_stores.remote().unwrap();
        assert_eq!(
            (name, s3.prefix.as_str(), s3.part_size_mib),
            ("s3", "images/", 16)
        );
        assert_eq!(
            ok.image_stores.all().len(),
            1,
            "local is not a store unless named"
        );
        let empty = load_str("").unwrap();
        assert!(empty.image_stores.remote().is_none());
        assert_eq!(empty.image_stores.all()[0].0, "local");
        let two = load_str(&format!(
            "[image_stores]\ndefault = \"local\"\n{}",
            store("s3", "weight = 5\n")
        ))
        .unwrap();
        let names: Vec<_> = two.image_stores.all().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["local", "s3"]);
        for (bad, why) in [
            (
                "[image_stores]\ndefault = \"nowhere\"\n".to_string(),
                "no store named",
            ),
            (
                format!(
                    "[image_stores]\ndefault = \"s3\"\n{}",
                    store("s3", "part_size_mib = 4\n")
                ),
                "at least 5",
            ),
            (
                format!(
                    "[image_stores]\ndefault = \"local\"\n{}",
                    store("local", "")
                ),
                "local is a file store",
            ),
            (
                "[image_stores.stores.cold]\nkind = \"file\"\n".to_string(),
                "needs its directory",
            ),
            (
                "[image_stores.stores.local]\nkind = \"file\"\npath = \"/tmp\"\n".to_string(),
                "always <data-dir>/images/",
            ),
            (
                "[image_stores.stores.Cold]\nkind = \"file\"\npath = \"/tmp\"\n".to_string(),
                "a store name is",
            ),
            (
                "[image_stores.stores.a]\nkind = \"file\"\npath = \"/srv/x\"\n\
                 [image_stores.stores.b]\nkind = \"file\"\npath = \"/srv/x/\"\n"
                    .to_string(),
                "the same place as store",
            ),
        ] {
            let err = format!("{:#}", load_str(&bad).unwrap_err());
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    const EAST: &str = "[buckets.stores.east]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:8014\"\naccess_key_id = \"AK\"\nsecret_access_key = \"top-secret-sk\"\nbuckets = [\"image-test\"]\n";

    #[test]
    fn buckets_route_to_stores_and_the_secret_is_never_shown() {
        let c = load_str(EAST).unwrap();
        assert_eq!(c.buckets.store_of("image-test"), "east");
        assert_eq!(c.buckets.store_of("other"), LOCAL_STORE);
        let east = &c.buckets.stores["east"];
        assert_eq!(
            (east.kind, east.region.as_str()),
            (StoreKind::S3, "us-east-1")
        );
        assert_eq!(east.secret_access_key.expose(), "top-secret-sk");
        assert!(!format!("{c:?}").contains("top-secret-sk"));
        assert!(!toml::to_string(&c).unwrap().contains("top-secret-sk"));

        let c = load_str(&format!("[buckets]\ndefault = \"east\"\n{EAST}")).unwrap();
        assert_eq!(c.buckets.store_of("other"), "east");
        // The whole table can come from the environment too.
        let env = vec![(
            "IMS_BUCKETS__STORES".to_string(),
            "{ west = { kind = \"obs\", endpoint = \"https://obs.example.com\", access_key_id = \"A\", secret_access_key = \"S\", buckets = [\"w-bucket\"] } }".to_string(),
        )];
        let c = load(None, env.into_iter()).unwrap();
        assert_eq!(c.buckets.store_of("w-bucket"), "west");
        assert_eq!(c.buckets.stores["west"].kind, StoreKind::Obs);
    }

    #[test]
    fn bad_bucket_routing_stops_the_start() {
        let err = |toml: &str| format!("{:#}", load_str(toml).unwrap_err());
        assert!(err("[buckets]\ndefault = \"nowhere\"\n").contains("no store named \"nowhere\""));
        let twice = format!(
            "{EAST}[buckets.stores.west]\nkind = \"obs\"\nendpoint = \"https://obs.example.com\"\naccess_key_id = \"A\"\nsecret_access_key = \"S\"\nbuckets = [\"image-test\"]\n"
        );
        assert!(err(&twice).contains("assigned to two stores: east and west"));
        assert!(err(&EAST.replace("image-test", "Bad_Name")).contains("not a valid bucket name"));
        assert!(err(&EAST.replace("\"s3\"", "\"gcs\"")).contains("unknown variant"));
        assert!(err(&EAST.replace("buckets = ", "bucketz = ")).contains("unknown field"));
        assert!(
            err("[buckets.owners]\n\"Bad_Name\" = \"p\"\n").contains("not a valid bucket name")
        );
        assert!(err("[buckets.owners]\nimage-test = \"\"\n").contains("project is empty"));
        let c = load_str(&format!(
            "{EAST}[buckets.owners]\nimage-test = \"tenant-a\"\n"
        ))
        .unwrap();
        assert_eq!(c.buckets.owners["image-test"], "tenant-a");
        assert!(err(&EAST.replace("stores.east", "stores.local")).contains("reserved"));
        assert!(
            err(&EAST.replace("secret_access_key = \"top-secret-sk\"\n", ""))
                .contains("secret_access_key")
        );
    }
}
