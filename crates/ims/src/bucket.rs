//! `ims bucket …`: stage files in the buckets that image imports read from and exports
//! write to, without another tool: the embedded ones (`<data-dir>/buckets/`) or those of
//! the S3/OBS stores configured under `[buckets]`, routed exactly as the server routes them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Subcommand;
use futures::StreamExt;
use ims_domain::bucket::ObjectRef;
use ims_domain::ports::BucketSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Config, LOCAL_STORE};

/// Bucket commands.
#[derive(Subcommand)]
pub enum BucketCommand {
    /// Create a bucket (embedded store only; S3/OBS buckets are made with their own tools).
    Create {
        /// Bucket name (3–63 of a-z, 0-9, '.', '-').
        name: String,
    },
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

/// Runs a bucket command against the configured data dir.
pub async fn run(config: Config, command: BucketCommand) -> Result<()> {
    let node = format!("cli-{}", std::process::id());
    let (buckets, local) = crate::app::bucket_router(&config, &node)?;
    match command {
        BucketCommand::Create { name } => {
            let store = config.buckets.store_of(&name);
            if let Some(s) = config.buckets.stores.get(store) {
                anyhow::bail!(
                    "bucket {name} is served by store {store} ({} at {}); create it with that object store's own tools",
                    s.kind.as_str(),
                    s.endpoint
                );
            }
            debug_assert_eq!(store, LOCAL_STORE);
            local.create_bucket(&name).await?
        }
        BucketCommand::Put { file, target } => {
            let object = ObjectRef::parse(&target)?;
            let mut input = tokio::fs::File::open(&file)
                .await
                .with_context(|| format!("opening {}", file.display()))?;
            let mut writer = buckets.create(&object).await?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = input.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                if let Err(e) = writer.write(Bytes::copy_from_slice(&buf[..n])).await {
                    writer.abort().await;
                    return Err(e.into());
                }
            }
            writer.commit().await?;
        }
        BucketCommand::Ls { bucket } => {
            let (name, prefix) = bucket.split_once(':').unwrap_or((&bucket, ""));
            for o in buckets.list(name, prefix).await? {
                println!("{} {}", o.size, o.key);
            }
        }
        BucketCommand::Get { source, file } => {
            let mut stream = buckets.open(&ObjectRef::parse(&source)?).await?;
            let mut out = tokio::fs::File::create(&file)
                .await
                .with_context(|| format!("creating {}", file.display()))?;
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?).await?;
            }
            out.flush().await?;
        }
    }
    Ok(())
}
