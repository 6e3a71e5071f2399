//! Wiring: builds adapters and services from the configuration and runs the server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use ims_blob::{
    BucketRouter, FsBlobStore, FsBuckets, HttpSettings, HttpSource, S3Buckets, S3Settings,
};
use ims_db::Catalog;
use ims_domain::context::Node as NodeContext;
use ims_domain::identity::session::SessionService;
use ims_domain::job::maintenance::JobLeases;
use ims_domain::job::{JobHandlers, JobQueue, JobRunner, Maintenance};
use ims_domain::key::{BuiltinBackend, KeyService, KeySettings, KeySweeper};
use ims_domain::listing::ListLimits;
use ims_domain::metadefs::MetadefService;
use ims_domain::outbound::FetchLimits;
use ims_domain::pipeline::HashAlgo;
use ims_domain::sealing::Sealer;
use ims_domain::server::{ComputeDriver, ServerJobs, ServerService, ServerSweeper};
use ims_domain::service::SharingLimits;
use ims_domain::service::attributes::AttributeLimits;
use ims_domain::service::identity::{IdentityService, random_hex};
use ims_domain::service::job_handlers::{ImageJobs, ImageSweeper};
use ims_domain::service::token_purge::TokenPurge;
use ims_domain::service::{
    GlanceDownloadSettings, ImageService, ImageSettings, ImportMethod, JobLimits, Quotas, UrlFilter,
};
use ims_domain::volume::VolumeService;
use ims_domain::volume::jobs::{VolumeJobs, VolumeSweeper};
use ims_http::{MakeOpenStackRequestId, REQUEST_ID, Services};
use ims_qemu::{Limits as QemuLimits, QemuConverter, QemuImg};
use ims_volume::FsVolumeStore;
use tokio::sync::watch;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::{Config, HttpConfig, LOCAL_STORE, StoreKind};

/// How long open requests may run on after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Sets up structured logging; `RUST_LOG` overrides the default `info`.
///
/// Whatever `RUST_LOG` says, the request-signing crates (`reqsign*`, under opendal) log at
/// most `info`: their debug lines print credential providers with the secret key in them.
pub fn init_logging(format: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let no_secrets = tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.target().starts_with("reqsign") && *meta.level() > tracing::Level::INFO)
    });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder
            .json()
            .with_current_span(true)
            .finish()
            .with(no_secrets)
            .init();
    } else {
        builder.finish().with(no_secrets).init();
    }
}

/// The catalog database, image store and services for a configuration.
pub struct Parts {
    /// The catalog.
    pub catalog: Catalog,
    /// Image use cases.
    pub images: ImageService,
    /// Identity use cases.
    pub identity: IdentityService,
    /// Metadata definitions.
    pub metadefs: MetadefService,
    /// Volume use cases.
    pub volumes: VolumeService,
    /// Image-server use cases.
    pub servers: ServerService,
    /// The key management service.
    pub keys: Arc<KeyService>,
    /// The job queue the services enqueue on and the runner takes from.
    pub queue: JobQueue,
    /// This process as its leases name it.
    pub node: NodeContext,
}

/// Who this process is to the catalog and the data dir: the id its leases, temp files and
/// scratch directory carry. Every process has one of its own, so one never cleans,
/// expires or recovers what another is using:
/// - `ims serve` ([`Node::server`]) keeps its id across restarts, so a start after a crash
///   finds its own leftovers and recovers them (`serve`);
/// - a CLI command ([`Node::cli`]) has an id for this run only, and recovers nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Lease owner, temp-file prefix, and the name of the scratch directory.
    pub id: String,
}

/// The prefix of CLI processes' ids; a configured `node_id` may not start with it.
const CLI_PREFIX: &str = "cli-";

impl Node {
    /// Whether this is a CLI process (`ims admin`, `ims bucket`), not a server.
    pub fn is_cli(&self) -> bool {
        self.id.starts_with(CLI_PREFIX)
    }

    /// The server's identity: `node_id` from the configuration, else `<data-dir>/node-id`
    /// (created on first start).
    pub fn server(config: &Config) -> Result<Node> {
        let id = match &config.node_id {
            Some(id) => check_node_id(id)?,
            None => persisted_node_id(&config.data_dir)?,
        };
        Ok(Node { id })
    }

    /// A one-off identity for a CLI process: unique per process, never a server's.
    pub fn cli() -> Node {
        Node {
            id: format!("{CLI_PREFIX}{}-{}", std::process::id(), random_hex(4)),
        }
    }

    /// Where this process's conversions put their scratch files.
    pub fn scratch_dir(&self, data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("scratch").join(&self.id)
    }
}

/// A configured node id: it names files and directories, so it is kept to a safe alphabet.
fn check_node_id(id: &str) -> Result<String> {
    let id = id.trim();
    anyhow::ensure!(
        (1..=64).contains(&id.len())
            && !id.starts_with('.')
            && !id.starts_with(CLI_PREFIX)
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
        "node_id {id:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '.' or {CLI_PREFIX:?}"
    );
    Ok(id.to_string())
}

/// `<data-dir>/node-id`, created on the first start. Two first starts at once agree on
/// one id: a new id is linked into place only if none is there yet.
fn persisted_node_id(data_dir: &Path) -> Result<String> {
    let path = data_dir.join("node-id");
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|id| id.trim().to_string())
            .with_context(|| format!("reading {}", path.display()))
    };
    match read(&path) {
        Ok(id) if !id.is_empty() => return Ok(id),
        Ok(_) => {
            // Left empty by a crash of an older version mid-write: no id was ever used.
            let id = format!("node-{}", random_hex(6));
            std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
            return Ok(id);
        }
        Err(_) if !path.exists() => {}
        Err(e) => return Err(e),
    }
    let id = format!("node-{}", random_hex(6));
    let temp = path.with_extension(format!("tmp-{}", random_hex(6)));
    let linked = std::fs::write(&temp, &id).and_then(|()| std::fs::hard_link(&temp, &path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// The key sealing AK/SK secrets: configured, or a 0600 file in the data dir.
fn credential_sealer(config: &Config) -> Result<Sealer> {
    let (key, source) = match &config.credential_key {
        Some(key) => (key.clone(), "credential_key".to_string()),
        None => {
            let path = config.data_dir.join("credential.key");
            (
                load_or_create_key(&path, "every stored AK/SK")?,
                path.display().to_string(),
            )
        }
    };
    Sealer::from_hex(key.trim()).map_err(|e| {
        anyhow::anyhow!(
            "{source}: {e}; refusing to start (restore the key every stored AK/SK is sealed with)"
        )
    })
}

/// The built-in KMS's backend with its master key: `[kms] master_key`, else the file
/// `[kms] master_key_file` (a mounted secret, which must exist), else a 0600
/// `kms-master.key` in the data dir, made on the first start.
fn kms_backend(config: &Config) -> Result<BuiltinBackend> {
    let (key, source) = match (&config.kms.master_key, &config.kms.master_key_file) {
        (Some(key), _) => (key.clone(), "kms.master_key".to_string()),
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the KMS master key file {}", path.display()))?,
            path.display().to_string(),
        ),
        (None, None) => {
            let path = config.data_dir.join("kms-master.key");
            (
                load_or_create_key(&path, "every KMS key and encrypted image")?,
                path.display().to_string(),
            )
        }
    };
    BuiltinBackend::from_hex(key.trim())
        .map_err(|e| anyhow::anyhow!("{source}: {e}; refusing to start"))
}

/// The key service, after checking that the master key is the one the catalog's keys
/// are sealed with.
async fn key_service(config: &Config, catalog: &Catalog) -> Result<Arc<KeyService>> {
    let builtin = Arc::new(kms_backend(config)?);
    KeyService::check_master(catalog, &builtin)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}; refusing to start (restore the master key the keys were made under)"
            )
        })?;
    let settings = KeySettings {
        max_keys_per_project: config.kms.max_keys_per_project,
    };
    let repo = Arc::new(catalog.clone());
    let service = match config.kms.backend.as_str() {
        "builtin" => KeyService::new(repo, builtin, Vec::new(), settings),
        // Keys made before stay with the built-in backend.
        "kmip" => KeyService::new(
            repo,
            Arc::new(kmip_backend(config)?),
            vec![builtin],
            settings,
        ),
        other => anyhow::bail!("kms.backend: '{other}' is neither builtin nor kmip"),
    };
    Ok(Arc::new(service))
}

/// The KMIP backend `[kms] kmip_*` describe; its certificate files must be readable.
fn kmip_backend(config: &Config) -> Result<ims_kmip::KmipBackend> {
    let kms = &config.kms;
    let read = |name: &str, path: &Option<std::path::PathBuf>| -> Result<Vec<u8>> {
        let path = path
            .as_ref()
            .with_context(|| format!("kms.backend = \"kmip\" needs kms.{name}"))?;
        std::fs::read(path).with_context(|| format!("reading kms.{name} {}", path.display()))
    };
    Ok(ims_kmip::KmipBackend::new(ims_kmip::KmipConfig::new(
        kms.kmip_host.clone(),
        kms.kmip_port,
        read("kmip_ca_file", &kms.kmip_ca_file)?,
        read("kmip_cert_file", &kms.kmip_cert_file)?,
        read("kmip_key_file", &kms.kmip_key_file)?,
    )))
}

/// Reads a key file (`credential.key`, `kms-master.key`), creating it only when it does
/// not exist. Any other failure stops the start: a fresh key would make `sealed` (what the
/// key seals) unusable.
fn load_or_create_key(path: &Path, sealed: &str) -> Result<String> {
    use std::io::ErrorKind;
    match std::fs::read_to_string(path) {
        Ok(key) => Ok(key),
        Err(e) if e.kind() == ErrorKind::NotFound => match create_key(path) {
            Ok(key) => Ok(key),
            // Another process (a second node's first start, `ims admin`) created it first.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
        },
        Err(e) => Err(anyhow::anyhow!(
            "cannot read {}: {e}; refusing to start, since a new key would make {sealed} unusable (fix the file or its permissions, or configure the key)",
            path.display()
        )),
    }
}

/// Writes a new random key to a temporary file, flushes it, and links it into place
/// only if `path` still does not exist, so a reader never sees half a key and two
/// processes starting together end up with the same one.
fn create_key(path: &Path) -> std::io::Result<String> {
    let key = random_hex(32);
    let temp = path.with_extension(format!("tmp-{}", random_hex(6)));
    let written = write_private(&temp, &key, true)
        .and_then(|()| std::fs::hard_link(&temp, path))
        .and_then(|()| sync_dir(path));
    let _ = std::fs::remove_file(&temp);
    written.map(|()| key)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn image_settings(config: &Config) -> Result<ImageSettings> {
    let nonzero = |n: u64| (n > 0).then_some(n);
    let import_methods = config
        .images
        .import_methods
        .iter()
        .map(|m| m.parse::<ImportMethod>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("images.import_methods: {e}"))?;
    Ok(ImageSettings {
        size_cap: config.images.size_cap,
        hash_algo: HashAlgo::parse(&config.images.hash_algo)
            .map_err(|e| anyhow::anyhow!("images.hash_algo: {e}"))?,
        inspect_formats: config.images.inspect_formats,
        max_import_file: config.images.max_import_file,
        quotas: Quotas {
            image_count: nonzero(config.images.quota_image_count),
            image_size_total: nonzero(config.images.quota_image_size_total),
        },
        limits: AttributeLimits {
            max_tags: config.images.max_tags,
            max_properties: config.images.max_properties,
            max_property_value: config.images.max_property_value,
            max_metadata_bytes: config.images.max_metadata_bytes,
        },
        max_members: config.images.max_members,
        list_limits: ListLimits {
            sort_keys: config.images.list_max_sort_keys,
            filters: config.images.list_max_filters,
            tags: config.images.list_max_tags,
            in_values: config.images.list_max_in_values,
        },
        sharing_limits: SharingLimits {
            images: config.images.sharing_max_images,
            projects: config.images.sharing_max_projects,
        },
        import_methods,
        url_filter: UrlFilter {
            schemes: config.web_download.schemes.clone(),
            ports: config.web_download.ports.clone(),
            allow_private: config.web_download.allow_private,
            allow_addresses: config.web_download.allow_addresses.clone(),
        },
        glance_download: GlanceDownloadSettings {
            region: config.region.clone(),
            extra_properties: config.glance_download.extra_properties.clone(),
        },
        fetch_limits: FetchLimits {
            deadline: Duration::from_secs(config.web_download.deadline_secs.max(1)),
            min_bytes_per_sec: config.web_download.min_bytes_per_sec,
            rate_window: Duration::from_secs(config.web_download.rate_window_secs.max(1)),
        },
        job_limits: JobLimits {
            per_project: config.jobs.max_per_project.max(1),
            total: config.jobs.max_queued.max(1),
        },
        transfers: config.transfers.limits(),
    })
}

/// The web-download client: its timeouts and pinned names.
fn http_source(config: &Config) -> HttpSource {
    let w = &config.web_download;
    HttpSource::new(HttpSettings {
        connect_timeout: Duration::from_secs(w.connect_timeout_secs.max(1)),
        read_timeout: Duration::from_secs(w.read_timeout_secs.max(1)),
        resolve: w
            .resolve
            .iter()
            .map(|(name, ips)| (name.to_ascii_lowercase(), ips.clone()))
            .collect(),
    })
}

/// The buckets: each configured store's buckets routed to it, the rest to the default
/// store (`config::load` has validated the routing). Also returns the embedded store, for
/// `ims bucket create`.
pub fn bucket_router(config: &Config, node: &str) -> Result<(BucketRouter, FsBuckets)> {
    let local = FsBuckets::open(config.data_dir.join("buckets"), node)?;
    let mut stores: std::collections::BTreeMap<&str, Arc<dyn ims_domain::ports::BucketSource>> =
        Default::default();
    stores.insert(LOCAL_STORE, Arc::new(local.clone()));
    for (name, store) in &config.buckets.stores {
        let s3 = S3Buckets::new(S3Settings {
            name: name.clone(),
            flavor: match store.kind {
                StoreKind::S3 => ims_blob::Flavor::S3,
                StoreKind::Obs => ims_blob::Flavor::Obs,
            },
            endpoint: store.endpoint.clone(),
            region: store.region.clone(),
            access_key_id: store.access_key_id.clone(),
            secret_access_key: store.secret_access_key.clone(),
        })
        .map_err(|e| anyhow::anyhow!("buckets.stores.{name}: {e}"))?;
        stores.insert(name, Arc::new(s3));
    }
    let default = stores
        .get(config.buckets.default.as_str())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("buckets.default: no store {:?}", config.buckets.default))?;
    let mut router = BucketRouter::new(default);
    for (name, store) in &config.buckets.stores {
        for bucket in &store.buckets {
            router.route(bucket, stores[name.as_str()].clone())?;
        }
    }
    Ok((router, local))
}

/// The image stores `[image_stores]` names: `local` is `<data-dir>/images/`; S3 stores
/// journal their uploads as `node`'s. Volumes may be overlays on blobs in `local`.
fn image_stores(config: &Config, node: &str) -> Result<ims_domain::storage::Stores> {
    let mut all = Vec::new();
    for (name, settings) in config.image_stores.all() {
        all.push(
            image_store(config, node, name, settings)
                .map_err(|e| anyhow::anyhow!("image_stores.stores.{name}: {e:#}"))?,
        );
    }
    let stores = ims_domain::storage::Stores::new(all, &config.image_stores.default)?;
    Ok(if config.image_stores.has_local() {
        stores.with_overlays_in(crate::config::LOCAL_STORE)
    } else {
        stores
    })
}

/// One image store.
fn image_store(
    config: &Config,
    node: &str,
    name: &str,
    settings: Option<&crate::config::ImageStoreConfig>,
) -> Result<ims_domain::storage::ImageStore> {
    use crate::config::ImageStoreKind;
    let (description, weight) = settings.map_or((None, 0), |s| (s.description.clone(), s.weight));
    let store =
        |kind: &str, properties: serde_json::Value, blobs| ims_domain::storage::ImageStore {
            id: name.to_string(),
            kind: kind.to_string(),
            description: description.clone(),
            weight,
            properties: serde_json::from_value(properties).unwrap_or_default(),
            blobs,
        };
    let s3 = match settings {
        Some(s) if s.kind == ImageStoreKind::S3 => s,
        _ => {
            let dir = match settings.and_then(|s| s.path.clone()) {
                Some(path) => path,
                None => config.data_dir.join("images"),
            };
            let blobs = Arc::new(FsBlobStore::open(dir.clone(), node)?);
            let properties = serde_json::json!({
                "data_dir": dir, "chunk_size": 65536, "thin_provisioning": false,
            });
            return Ok(store("file", properties, blobs));
        }
    };
    let blobs = ims_blob::S3BlobStore::new(ims_blob::S3BlobSettings {
        name: name.to_string(),
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        bucket: s3.bucket.clone(),
        prefix: s3.prefix.clone(),
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: s3.secret_access_key.clone(),
        node: node.to_string(),
        part_size: s3.part_size_mib << 20,
        concurrency: s3.concurrency,
    })?;
    let properties = serde_json::json!({
        "s3_store_large_object_size": s3.part_size_mib,
        "s3_store_large_object_chunk_size": s3.part_size_mib,
        "s3_store_thread_pools": s3.concurrency,
    });
    Ok(store("s3", properties, Arc::new(blobs)))
}

/// Opens the catalog (creating the data dir) and builds the services for a process that
/// is `node`. Nothing here cleans up: that is the server's start-up recovery alone.
pub async fn open(config: &Config, node: &Node) -> Result<Parts> {
    crate::private::data_dir(&config.data_dir)?;
    ims_domain::workers::configure(config.transfers.hash_threads, config.transfers.disk_threads)?;
    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => {
            let path = config.data_dir.join("catalog.sqlite");
            crate::private::catalog_file(&path)?;
            ims_db::sqlite_url(&path)
        }
    };
    let catalog = Catalog::connect_with(&url, config.database.pool_settings())
        .await
        .context("opening the catalog")?;
    let stores = image_stores(config, &node.id)?;
    let lease = Duration::from_secs(config.jobs.lease_secs.max(3));
    let this_node = NodeContext::new(node.id.clone(), lease);
    let queue = JobQueue::new(Arc::new(catalog.clone()));
    let qemu = QemuImg::new(
        "qemu-img",
        QemuLimits::default(),
        config.jobs.concurrency.max(1),
    );
    let keys = key_service(config, &catalog).await?;
    let images = ImageService::new(
        Arc::new(catalog.clone()),
        queue.clone(),
        this_node.clone(),
        stores,
        Arc::new(http_source(config)),
        ims_domain::bucket::Buckets::new(
            Arc::new(bucket_router(config, &node.id)?.0),
            Arc::new(catalog.clone()),
        ),
        Arc::new(QemuConverter::new(
            qemu.clone(),
            node.scratch_dir(&config.data_dir),
        )),
        image_settings(config)?,
    )
    // Volumes are overlays on image blobs: those blobs outlive their images.
    .with_blob_pins(Arc::new(catalog.clone()))
    .with_keys(keys.clone());
    let mut volume_store = FsVolumeStore::open(
        config.data_dir.join("volumes"),
        config.data_dir.join("images"),
        node.scratch_dir(&config.data_dir),
        qemu,
    )?;
    if !config.image_stores.has_local() {
        volume_store = volume_store.without_overlays();
    }
    let volume_store = Arc::new(volume_store);
    let volumes = VolumeService::new(
        Arc::new(catalog.clone()),
        volume_store.clone(),
        images.clone(),
        config.volumes.settings(),
    )
    .with_holders(Arc::new(catalog.clone()));
    let identity = IdentityService::new(
        Arc::new(catalog.clone()),
        Duration::from_secs(config.token_ttl_secs),
    )
    .with_sealer(credential_sealer(config)?)
    .with_password_limits(config.auth.password_limits())
    .with_sessions(Arc::new(catalog.clone()));
    identity.check_sealer().await.map_err(|e| {
        anyhow::anyhow!(
            "{e}; refusing to start (every node needs the same credential_key or credential.key)"
        )
    })?;
    let metadefs = MetadefService::new(Arc::new(catalog.clone()));
    let servers = ServerService::new(
        Arc::new(catalog.clone()),
        Arc::new(catalog.clone()),
        volumes.clone(),
        compute_driver(config, node, volume_store).await?,
        queue.clone(),
        config.servers.limits(),
        this_node.clone(),
    );
    Ok(Parts {
        catalog,
        images,
        identity,
        metadefs,
        volumes,
        servers,
        keys,
        queue,
        node: this_node,
    })
}

/// The compute driver `[servers] driver` names, for the server; VMs live under
/// `<data-dir>/servers/`. A CLI process runs no jobs and never touches VMs: it gets the
/// `none` driver without looking for QEMU.
async fn compute_driver(
    config: &Config,
    node: &Node,
    volumes: Arc<FsVolumeStore>,
) -> Result<Arc<dyn ComputeDriver>> {
    let choice: ims_compute::DriverChoice = config
        .servers
        .driver
        .parse()
        .map_err(|e| anyhow::anyhow!("servers.driver: {e}"))?;
    if node.is_cli() {
        return Ok(Arc::new(ims_compute::NoneDriver));
    }
    let detection = ims_compute::detect(
        choice,
        ims_compute::QemuConfig::default(),
        config.data_dir.join("servers"),
        volumes,
    )
    .await?;
    tracing::info!(driver = detection.driver.name(), reason = %detection.reason, "compute driver");
    Ok(detection.driver)
}

fn auth_url(config: &Config) -> String {
    if let Some(url) = &config.public_url {
        return format!("{}/v3", url.trim_end_matches('/'));
    }
    let listen = config
        .listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    format!("http://{listen}/v3")
}

/// On first start: bootstraps identity and writes `<data-dir>/clouds.yaml` (0600).
pub async fn bootstrap(config: &Config, identity: &IdentityService) -> Result<()> {
    let path = config.data_dir.join("clouds.yaml");
    let Some(boot) = identity.bootstrap().await? else {
        tracing::info!(clouds_yaml = %path.display(), "catalog already bootstrapped");
        return Ok(());
    };
    let yaml = format!(
        "clouds:\n  ims:\n    auth:\n      auth_url: {}\n      username: admin\n      password: {}\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: {}\n    identity_api_version: 3\n    image_api_version: 2\n    interface: public\n",
        auth_url(config),
        boot.admin_password,
        config.region
    );
    write_private(&path, &yaml, false)?;
    tracing::info!(clouds_yaml = %path.display(), "created project admin and user admin; credentials are in clouds.yaml (cloud 'ims')");
    Ok(())
}

fn write_private(path: &Path, contents: &str, new: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(!new)
        .create_new(new)
        .write(true)
        .truncate(!new)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// The ZStack dialect's handles: sessions and api-jobs in the catalog.
pub fn zstack(config: &Config, catalog: &Catalog, services: &Services) -> ims_api_zstack::ZStack {
    let z = &config.zstack;
    ims_api_zstack::ZStack {
        services: services.clone(),
        sessions: SessionService::new(
            services.identity.clone(),
            Arc::new(catalog.clone()),
            Duration::from_secs(z.session_timeout_secs),
        )
        .with_max_per_user(z.max_sessions_per_user),
        calls: Arc::new(catalog.clone()),
        settings: ims_api_zstack::ZStackSettings {
            job_wait: Duration::from_millis(z.job_wait_ms),
            job_retention: Duration::from_secs(z.job_retention_secs),
            image_store: match config.image_stores.remote() {
                Some((_, s3)) => ims_api_zstack::ImageStoreView::Remote(format!(
                    "s3://{}/{}",
                    s3.bucket, s3.prefix
                )),
                None => ims_api_zstack::ImageStoreView::Local(
                    config
                        .image_stores
                        .stores
                        .get(&config.image_stores.default)
                        .and_then(|s| s.path.clone())
                        .unwrap_or_else(|| config.data_dir.join("images")),
                ),
            },
            volume_dir: config.data_dir.join("volumes"),
        },
    }
}

/// Builds the HTTP application: every dialect on one router.
pub fn router(
    services: Services,
    zstack: ims_api_zstack::ZStack,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) -> Router {
    use crate::metrics::dialect as api;
    let dialect = |name: &'static str| axum::middleware::from_fn_with_state(name, api);
    let guard = services.guard.clone();
    // With metrics off ([metrics] enabled = false) there is no /metrics at all.
    let scrape = metrics.map(|metrics| {
        let state = crate::metrics::Scrape {
            services: services.clone(),
            metrics,
        };
        Router::new()
            .route("/metrics", axum::routing::get(crate::metrics::scrape))
            .with_state(state)
    });
    Router::new()
        .route("/healthcheck", axum::routing::get(healthcheck))
        .merge(scrape.unwrap_or_default())
        .merge(ims_api_keystone::router().layer(dialect("keystone")))
        .merge(
            ims_api_glance::router()
                .layer(axum::middleware::from_fn_with_state(
                    services.clone(),
                    ims_api_glance::accept_huawei_signatures,
                ))
                .layer(dialect("glance")),
        )
        .merge(ims_api_ims::router().layer(dialect("ims")))
        .merge(ims_api_zstack::router(zstack).layer(dialect("zstack")))
        .merge(ims_api_workspace::router().layer(dialect("workspace")))
        .merge(ims_api_kms::router().layer(dialect("kms")))
        .merge(ims_console::router().layer(dialect("console")))
        .fallback(not_found)
        .with_state(services)
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::extract::DefaultBodyLimit::max(guard.limits.json_body_max))
        .layer(axum::middleware::from_fn_with_state(guard.clone(), ims_http::guard::time_out_slow_bodies))
        .layer(axum::middleware::from_fn_with_state(guard, ims_http::drain::drain_unread_bodies))
        .layer(axum::middleware::from_fn(ims_api_glance::negotiate))
        .layer(CatchPanicLayer::custom(|_| ims_api_glance::glance_body(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::map_response(also_as_x_request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    // dialect and route are filled in after routing (metrics::track), the
                    // caller's ids once a dialect has authenticated it (ims_http::note_caller).
                    tracing::info_span!("request", request.id = %ims_http::request_id(req.headers()).as_deref().unwrap_or("-"), method = %req.method(), path = %req.uri().path(), dialect = tracing::field::Empty, route = tracing::field::Empty, project.id = tracing::field::Empty, user.id = tracing::field::Empty)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeOpenStackRequestId))
}

/// Huawei's SDKs read the request id from `X-Request-Id`; every response carries both.
async fn also_as_x_request_id(mut resp: Response) -> Response {
    if let Some(id) = resp.headers().get(REQUEST_ID).cloned() {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp
}

/// Glance accepts `/v2.N/…` for every minor version it serves; they all mean `/v2/…`,
/// so they are rewritten to it (not IMS's own `/v2.1/cloudimages…` routes). The path as
/// sent is kept first, for signature checks.
fn strip_minor_version(mut req: axum::extract::Request) -> axum::extract::Request {
    // Signatures cover the path the client sent, so keep it before any rewrite.
    let original = ims_http::signed::OriginalUri(req.uri().clone());
    req.extensions_mut().insert(original);
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v2.") else {
        return req;
    };
    let (minor, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if tail.starts_with("cloudimages") {
        // IMS's /v2.1/ "safe mode" routes are routes of their own, not a Glance minor version.
        return req;
    }
    if !ims_api_glance::VERSIONS.contains(&format!("v2.{minor}").as_str()) {
        return req;
    }
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if let Ok(uri) = format!("/v2/{tail}{query}").parse() {
        *req.uri_mut() = uri;
    }
    req
}

/// How long `/healthcheck` waits for the catalog and the store (a balancer's probe
/// should hear an answer well within its own timeout).
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(4);

async fn within_health_timeout(
    check: impl Future<Output = ims_domain::Result<()>>,
) -> ims_domain::Result<()> {
    tokio::time::timeout(HEALTH_CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(ims_domain::Error::Unavailable("no answer in time".into())))
}

async fn healthcheck(axum::extract::State(svc): axum::extract::State<Services>) -> Response {
    let (catalog, store) = tokio::join!(
        within_health_timeout(svc.images.ping()),
        within_health_timeout(svc.images.check_store())
    );
    let failed = [("catalog", catalog), ("image store", store)]
        .into_iter()
        .filter_map(|(what, r)| {
            r.err().map(|e| {
                tracing::warn!(error = %e, "health check: the {what} is unavailable");
                format!("{what} unavailable")
            })
        })
        .collect::<Vec<_>>();
    if failed.is_empty() {
        (StatusCode::OK, "OK").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, failed.join("; ")).into_response()
    }
}

async fn not_found() -> Response {
    ims_api_glance::glance_body(StatusCode::NOT_FOUND, "The resource could not be found.")
}

/// Holds an exclusive lock on the node id in the data directory: two servers sharing one
/// node id would reset each other's uploads as "abandoned" and empty each other's scratch
/// directory. Servers with distinct `node_id`s may share a data dir.
fn lock_node(data_dir: &Path, node: &Node) -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(format!("serve.{}.lock", node.id)))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another ims serve is already running as node {} on {}",
            node.id,
            data_dir.display()
        )
    })?;
    Ok(file)
}

/// `ims serve`. `addr_file`, if given, receives the address actually bound once ims
/// serves (with port 0 in `listen` the system picks a free port; tests read it there).
pub async fn serve(mut config: Config, addr_file: Option<&Path>) -> Result<()> {
    let addr: SocketAddr = config
        .listen
        .parse()
        .with_context(|| format!("bad listen address {}", config.listen))?;
    // Checked before anything starts, so a misconfigured node changes nothing.
    public_url(&config, addr)?;
    crate::private::data_dir(&config.data_dir)?;
    let node = Node::server(&config)?;
    let _lock = lock_node(&config.data_dir, &node)?;
    // This node's scratch files are from a previous run (no other process uses this id).
    ims_qemu::empty_scratch(&node.scratch_dir(&config.data_dir))
        .context("emptying the scratch directory")?;
    // Bound before the bootstrap so that clouds.yaml names the port really bound; clients
    // that connect early wait in the backlog until start-up recovery is done.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    config.listen = local.to_string();
    inject_test_clock_skew()?;
    let parts = open(&config, &node).await?;
    // The catalog's clock first: bootstrap, recovery and leases compare times other
    // nodes wrote.
    let clock = ims_domain::context::ClockFollower(Arc::new(parts.catalog.clone()));
    ims_domain::job::Sweeper::recover(&clock)
        .await
        .context("reading the catalog's clock")?;
    bootstrap(&config, &parts.identity).await?;
    crate::bucket::sync_owners(&config, &parts).await?;
    let maintenance = Maintenance::new(parts.node.lease)
        .with(Arc::new(clock))
        .with(Arc::new(JobLeases::new(
            parts.queue.clone(),
            parts.node.clone(),
        )))
        .with(Arc::new(ImageSweeper::new(parts.images.clone())))
        .with(Arc::new(VolumeSweeper(parts.volumes.clone())))
        .with(Arc::new(ServerSweeper(parts.servers.clone())))
        .with(Arc::new(KeySweeper(parts.keys.clone())))
        .with(Arc::new(TokenPurge(parts.identity.clone())));
    maintenance.recover().await.context("start-up recovery")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let per_kind = config
        .jobs
        .per_kind
        .iter()
        .map(|(kind, n)| {
            Ok((
                kind.parse::<ims_domain::job::JobKind>()
                    .map_err(|e| anyhow::anyhow!("jobs.per_kind: {e}"))?,
                *n,
            ))
        })
        .collect::<Result<_>>()?;
    let mut handlers = JobHandlers::new();
    handlers.register(Arc::new(ImageJobs(parts.images.clone())))?;
    handlers.register(Arc::new(VolumeJobs(parts.volumes.clone())))?;
    handlers.register(Arc::new(ServerJobs(parts.servers.clone())))?;
    let (queue, node) = (parts.queue.clone(), parts.node.clone());
    let runner = JobRunner::new(queue, node, handlers, config.jobs.concurrency, per_kind);
    let workers = vec![
        tokio::spawn(runner.run(stop_rx.clone())),
        tokio::spawn(maintenance.run(stop_rx.clone())),
    ];
    let services = Services {
        images: parts.images.clone(),
        identity: parts.identity.clone(),
        volumes: parts.volumes.clone(),
        servers: parts.servers.clone(),
        keys: parts.keys.clone(),
        metadefs: parts.metadefs.clone(),
        public_url: Arc::from(public_url(&config, local)?),
        region: Arc::from(config.region.as_str()),
        guard: ims_http::guard::Guard::new(config.http.limits()),
    };
    tracing::info!(listen = %local, data_dir = %config.data_dir.display(), "ims is serving");
    if let Some(path) = addr_file {
        write_addr_file(path, local)?;
    }
    let zstack = zstack(&config, &parts.catalog, &services);
    let metrics = match config.metrics.enabled {
        true => Some(Arc::new(crate::metrics::Metrics::install(
            parts.catalog.clone(),
        )?)),
        false => None,
    };
    if let (Some(metrics), Some(listen)) = (&metrics, &config.metrics.listen) {
        serve_metrics(listen, Arc::clone(metrics)).await?;
    }
    let app = router(services, zstack, metrics);
    // Connections get a grace period to finish after a signal; then the process exits and
    // the next start recovers whatever was cut off.
    serve_connections(listener, app, &config.http).await;
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    parts.catalog.close().await;
    tracing::info!("ims stopped");
    Ok(())
}

/// Serves `/metrics` alone, without authentication, on `listen` (`[metrics] listen`: a
/// management address that only the monitoring system reaches).
async fn serve_metrics(listen: &str, metrics: Arc<crate::metrics::Metrics>) -> Result<()> {
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("bad metrics.listen address {listen}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics listener {addr}"))?;
    tracing::info!(listen = %listener.local_addr()?, "metrics listener");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, crate::metrics::listener_app(metrics)).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// `IMS_TEST_CLOCK_SKEW_SECS`: a fault for tests of clock skew between nodes: this
/// host's clock reads that many seconds off, as a node without NTP would, and the
/// catalog's clock corrects it.
fn inject_test_clock_skew() -> Result<()> {
    if let Ok(secs) = std::env::var("IMS_TEST_CLOCK_SKEW_SECS") {
        let secs: i64 = secs
            .parse()
            .context("IMS_TEST_CLOCK_SKEW_SECS must be whole seconds")?;
        ims_domain::context::inject_clock_skew(secs);
        tracing::warn!(
            secs,
            "this node's clock is deliberately skewed (a test fault)"
        );
    }
    Ok(())
}

/// Writes `local` (`ip:port` and a newline) to `path` through a temporary file renamed
/// over it, so a reader finds either no file or the whole address.
fn write_addr_file(path: &Path, local: SocketAddr) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{local}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing the listen address to {}", path.display()))
}

/// The base URL of links and the catalog: `public_url`, or the loopback address ims
/// listens on. On any other address a client's `Host` header would be the only source,
/// so ims refuses to start without `public_url` there.
fn public_url(config: &Config, local: SocketAddr) -> Result<String> {
    if let Some(url) = &config.public_url {
        return Ok(url.trim_end_matches('/').to_string());
    }
    anyhow::ensure!(
        local.ip().is_loopback(),
        "listen = {local} is not a loopback address: set public_url to the URL clients reach ims at (links, Location headers and the service catalog are built from it, never from the client's Host header)"
    );
    Ok(format!("http://{local}"))
}

/// Accepts connections until a shutdown signal, within `[http]`'s limits: at most
/// `max_connections` open (more are closed at once, without reading them), and a
/// client that does not send a request's headers within `header_read_timeout` (a new
/// connection, or a kept-alive one sitting idle) is disconnected.
async fn serve_connections(listener: tokio::net::TcpListener, app: Router, http: &HttpConfig) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(http.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout())
        .keep_alive(true);
    let service = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
        tower::ServiceExt::oneshot(
            app.clone(),
            strip_minor_version(req.map(axum::body::Body::new)),
        )
    });
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: wait for connections to close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("connection limit reached; closing a new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service.clone()),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("grace period over; abandoning open connections");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
