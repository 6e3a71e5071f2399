//! `ims bucket …`: stage files in the buckets that image imports read from and exports
//! write to, without another tool: the embedded ones (`<data-dir>/buckets/`) or those of
//! the S3/OBS stores configured under `[buckets]`, routed exactly as the server routes them.
//! And say who may use them: a bucket's owner project reads and writes it, projects it is
//! shared with read it, and a bucket without owner is for administrators only.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Subcommand;
use futures::StreamExt;
use ims_blob::BucketRouter;
use ims_domain::bucket::ObjectRef;
use ims_domain::ports::{BucketSource, ByteStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::Parts;
use crate::config::{Config, LOCAL_STORE};
use crate::progress::{self, Progress};

/// Bucket commands.
#[derive(Subcommand)]
pub enum BucketCommand {
    /// Create a bucket (embedded store only; S3/OBS buckets are made with their own tools,
    /// and get their owner from `[buckets.owners]`).
    Create {
        /// Bucket name (3–63 of a-z, 0-9, '.', '-').
        name: String,
        /// The owner project (id or name); without it, only administrators use the bucket.
        #[arg(long)]
        project: Option<String>,
    },
    /// Share a bucket read-only with a project: its imports may read the bucket.
    Share {
        /// The bucket.
        bucket: String,
        /// The project (id or name).
        #[arg(long)]
        project: String,
    },
    /// End a share.
    Unshare {
        /// The bucket.
        bucket: String,
        /// The project (id or name).
        #[arg(long)]
        project: String,
    },
    /// Give a bucket (embedded or S3/OBS) another owner, or none with `--no-project`.
    Assign {
        /// The bucket.
        bucket: String,
        /// The new owner project (id or name).
        #[arg(long, required_unless_present = "no_project")]
        project: Option<String>,
        /// Leave the bucket without owner: administrators only.
        #[arg(long, conflicts_with = "project")]
        no_project: bool,
    },
    /// The buckets the catalog knows: `bucket owner-project-id|- shared-project-ids…` per
    /// line.
    Owners,
    /// Upload a local file as `bucket:object` (never overwrites).
    Put {
        /// The local file.
        file: PathBuf,
        /// Target, `bucket:object`.
        target: String,
    },
    /// List a bucket's objects: `size key` per line.
    Ls {
        /// `bucket` or `bucket:prefix`.
        bucket: String,
    },
    /// Download `bucket:object` to a local file.
    Get {
        /// Source, `bucket:object`.
        source: String,
        /// The local file to write.
        file: PathBuf,
    },
}

/// Runs a bucket command against the configured data dir; `put` and `get` draw a progress
/// bar on a terminal unless `quiet`.
pub async fn run(config: Config, command: BucketCommand, quiet: bool) -> Result<()> {
    let (buckets, local) = crate::app::bucket_router(&config, &crate::app::Node::cli().id)?;
    match command {
        BucketCommand::Put { file, target } => {
            let object = ObjectRef::parse(&target)?;
            let input = tokio::fs::File::open(&file)
                .await
                .with_context(|| format!("opening {}", file.display()))?;
            let total = input.metadata().await.ok().map(|m| m.len());
            let bar = Progress::bytes(&target, total, progress::shown(quiet));
            let done = put(&buckets, &object, input, &bar).await;
            finish(&bar, done)?;
        }
        BucketCommand::Ls { bucket } => {
            let (name, prefix) = bucket.split_once(':').unwrap_or((&bucket, ""));
            for o in buckets.list(name, prefix).await? {
                println!("{} {}", o.size, o.key);
            }
        }
        BucketCommand::Get { source, file } => {
            let object = ObjectRef::parse(&source)?;
            let stream = buckets.open(&object).await?;
            let out = tokio::fs::File::create(&file)
                .await
                .with_context(|| format!("creating {}", file.display()))?;
            let total = object_size(&buckets, &object).await;
            let bar = Progress::bytes(&source, total, progress::shown(quiet));
            let done = get(stream, out, &bar).await;
            finish(&bar, done)?;
        }
        other => {
            if let BucketCommand::Create { name, .. } = &other {
                check_embedded(&config, name)?;
            }
            let parts = catalog(&config).await?;
            let done = manage(&config, &parts, &local, other).await;
            parts.catalog.close().await;
            done?
        }
    }
    Ok(())
}

/// Streams `input` into a new object; the object is aborted on any failure.
async fn put(
    buckets: &BucketRouter,
    object: &ObjectRef,
    mut input: tokio::fs::File,
    bar: &Progress,
) -> Result<()> {
    let mut writer = buckets.create(object).await?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                writer.abort().await;
                return Err(e.into());
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = writer.write(Bytes::copy_from_slice(&buf[..n])).await {
            writer.abort().await;
            return Err(e.into());
        }
        bar.advance(n as u64);
    }
    writer.commit().await?;
    Ok(())
}

/// Writes an object's bytes to `out`.
async fn get(mut stream: ByteStream, mut out: tokio::fs::File, bar: &Progress) -> Result<()> {
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        out.write_all(&chunk).await?;
        bar.advance(chunk.len() as u64);
    }
    out.flush().await?;
    Ok(())
}

/// The object's size, for the bar's total (`None` if the listing cannot tell).
async fn object_size(buckets: &BucketRouter, object: &ObjectRef) -> Option<u64> {
    let found = buckets.list(&object.bucket, &object.key).await.ok()?;
    found.iter().find(|o| o.key == object.key).map(|o| o.size)
}

/// Leaves the bar complete on success, or takes it away before the error is printed.
fn finish(bar: &Progress, done: Result<()>) -> Result<()> {
    match done {
        Ok(()) => bar.finish(),
        Err(_) => bar.abandon(),
    }
    done
}

/// The commands that say who may use a bucket, on the catalog of `parts`.
async fn manage(
    config: &Config,
    parts: &Parts,
    local: &ims_blob::FsBuckets,
    command: BucketCommand,
) -> Result<()> {
    let repo = parts.images.buckets().grants();
    let project_id = |p: String| async move { parts.identity.project_id(&p).await };
    match command {
        BucketCommand::Create { name, project } => {
            let owner = match project {
                Some(p) => Some(project_id(p).await?),
                None => None,
            };
            record_new_bucket(parts, &name, owner.as_deref()).await?;
            local.create_bucket(&name).await?;
        }
        BucketCommand::Share { bucket, project } => {
            let project = project_id(project).await?;
            repo.share_bucket(&check_bucket(&bucket)?, &project).await?;
        }
        BucketCommand::Unshare { bucket, project } => {
            let project = project_id(project).await?;
            if !repo
                .unshare_bucket(&check_bucket(&bucket)?, &project)
                .await?
            {
                anyhow::bail!("bucket {bucket} is not shared with project {project}");
            }
        }
        BucketCommand::Assign {
            bucket, project, ..
        } => {
            if let Some(p) = config.buckets.owners.get(&bucket) {
                anyhow::bail!(
                    "the owner of bucket {bucket} is set in the configuration ([buckets.owners]: {p}); change it there"
                );
            }
            let owner = match project {
                Some(p) => Some(project_id(p).await?),
                None => None,
            };
            repo.set_bucket_owner(&check_bucket(&bucket)?, owner.as_deref())
                .await?;
        }
        BucketCommand::Owners => {
            for g in repo.list_buckets().await? {
                let readers: Vec<&str> = g.readers.iter().map(String::as_str).collect();
                println!(
                    "{} {} {}",
                    g.name,
                    g.owner.as_deref().unwrap_or("-"),
                    readers.join(" ")
                );
            }
        }
        _ => unreachable!("object commands are handled by run"),
    }
    Ok(())
}

fn check_bucket(name: &str) -> Result<String> {
    Ok(ims_domain::bucket::check_bucket(name)?.to_string())
}

/// The catalog, bootstrapped and with bucket owners brought up to date.
async fn catalog(config: &Config) -> Result<Parts> {
    let parts = crate::app::open(config, &crate::app::Node::cli()).await?;
    crate::app::bootstrap(config, &parts.identity).await?;
    sync_owners(config, &parts).await?;
    Ok(parts)
}

/// Refuses to create a bucket that an S3/OBS store serves (before the catalog is opened).
fn check_embedded(config: &Config, name: &str) -> Result<()> {
    let store = config.buckets.store_of(name);
    if let Some(s) = config.buckets.stores.get(store) {
        anyhow::bail!(
            "bucket {name} is served by store {store} ({} at {}); create it with that object store's own tools",
            s.kind.as_str(),
            s.endpoint
        );
    }
    debug_assert_eq!(store, LOCAL_STORE);
    Ok(())
}

/// Records a bucket `ims bucket create` makes. Creating it again for the same owner is
/// fine (the command is idempotent); for another owner it is refused, so a bucket never
/// changes hands by accident.
async fn record_new_bucket(parts: &Parts, name: &str, owner: Option<&str>) -> Result<()> {
    let repo = parts.images.buckets().grants();
    let name = check_bucket(name)?;
    let recorded = match repo.insert_bucket(&name, owner).await {
        Ok(()) => return Ok(()),
        Err(ims_domain::Error::Conflict(_)) => repo.bucket_grants(&name).await?,
        Err(e) => return Err(e.into()),
    };
    match recorded {
        Some(g) if g.owner.as_deref() == owner => Ok(()),
        Some(g) => anyhow::bail!(
            "bucket {name} exists already, owned by {}; `ims bucket assign` gives it another owner",
            g.owner
                .as_deref()
                .unwrap_or("no project (administrators only)")
        ),
        None => anyhow::bail!("bucket {name} was removed meanwhile; try again"),
    }
}

/// Brings the catalog's bucket owners up to date, at every start of `ims serve` and of
/// the bucket commands that use the catalog:
/// - each bucket of `[buckets.owners]` gets the owner named there;
/// - each embedded bucket directory the catalog does not know yet gets the `admin`
///   project: buckets made before buckets had owners (or by hand) stay usable by that
///   project and administrators, and by nobody else.
pub async fn sync_owners(config: &Config, parts: &Parts) -> Result<()> {
    let repo = parts.images.buckets().grants();
    for (bucket, project) in &config.buckets.owners {
        let owner = parts
            .identity
            .project_id(project)
            .await
            .with_context(|| format!("buckets.owners.{bucket}: project {project}"))?;
        repo.set_bucket_owner(bucket, Some(&owner)).await?;
    }
    let found = embedded_buckets(config)?;
    if found.is_empty() {
        return Ok(());
    }
    let Ok(admin) = parts.identity.project_id(ADMIN_PROJECT).await else {
        tracing::warn!(
            "no project {ADMIN_PROJECT}: embedded buckets unknown to the catalog stay without owner (administrators only)"
        );
        return Ok(());
    };
    let adopted = repo.adopt_buckets(&found, &admin).await?;
    if !adopted.is_empty() {
        tracing::info!(buckets = ?adopted, "embedded buckets recorded as the admin project's");
    }
    Ok(())
}

/// The project that bootstrap creates, and that owns buckets from before owners existed.
const ADMIN_PROJECT: &str = "admin";

/// The embedded bucket directories that the embedded store serves (a directory whose name
/// a configured store claims is not served, so not adopted).
fn embedded_buckets(config: &Config) -> Result<Vec<String>> {
    let root = config.data_dir.join("buckets");
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir()
            && ims_domain::bucket::check_bucket(&name).is_ok()
            && config.buckets.store_of(&name) == LOCAL_STORE
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
