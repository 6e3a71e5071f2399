//! The one streaming data pipeline: source → (md5 ∥ secure hash ∥ format inspection) →
//! blob writer.
//!
//! Every way data enters the store (upload, stage, imports, import tasks, bucket-file
//! imports, RegisterImage, copy) goes through [`pump`], and so does an export's way out,
//! from the store into a bucket. Chunks are reference-counted, so the two hashes and the writer see
//! the same bytes without copies. Each chunk is hashed by two jobs on the hashing pool
//! (md5 and the secure hash in parallel, so one upload keeps two cores busy) while the
//! next chunk arrives; at most one chunk per stage is in flight, so memory stays constant
//! and a slow consumer pushes back on the source. Nothing starts before the first full
//! chunk, and a stalled source holds no thread (see [`crate::workers`]). The format
//! inspector keeps only headers (at most a few MiB) as the bytes pass, so its verdict is
//! ready when the last byte is, before the caller decides whether to commit the blob.

use std::str::FromStr;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use openssl::hash::{Hasher, MessageDigest};

use ims_format::{Report, StreamInspector};

use crate::error::{Error, Result};
use crate::ports::{BlobWriter, ByteStream};

/// How far a job's data transfer has come: bytes moved and bytes expected. The pump
/// updates it when it runs inside a job; the job's heartbeat reports it as a percentage.
#[derive(Debug, Default)]
pub struct Progress {
    done: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// 0–99 while data moves (100 is for the job's end); 0 when the total is unknown.
    pub fn percent(&self) -> u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let (done, total) = (self.done.load(Relaxed), self.total.load(Relaxed));
        if total == 0 {
            return 0;
        }
        u8::try_from((done.saturating_mul(100) / total).min(99)).unwrap_or(99)
    }
}

tokio::task_local! {
    /// The progress of the job whose task is running, if any.
    pub static JOB_PROGRESS: std::sync::Arc<Progress>;
}

/// Chunks are coalesced to this size before fan-out, to keep per-chunk costs small.
/// Memory per transfer is about three chunks: one filling, one hashing, one writing.
pub const CHUNK_SIZE: usize = 1 << 20;

crate::string_enum! {
    /// The secure hash behind `os_hash_algo`/`os_hash_value`.
    HashAlgo {
        /// SHA-256.
        Sha256 = "sha256",
        /// SHA-384.
        Sha384 = "sha384",
        /// SHA-512 (Glance's default).
        Sha512 = "sha512",
    }
}

impl HashAlgo {
    /// Parses a configured algorithm name.
    pub fn parse(name: &str) -> Result<Self> {
        HashAlgo::from_str(name)
    }
}

/// What one pass over the data learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Bytes that went through.
    pub size: u64,
    /// Hex md5.
    pub md5: String,
    /// The secure hash algorithm.
    pub algo: HashAlgo,
    /// Hex secure hash.
    pub hash: String,
    /// What the format inspection found, unless inspection was off.
    pub inspection: Option<Report>,
    /// The virtual size to record, once the inspection was accepted.
    pub virtual_size: Option<u64>,
}

/// Limits a pass enforces while it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Hard cap on bytes (`image_size_cap`, quota headroom).
    pub cap: u64,
    /// The size the client declared, if any; a mismatch fails the pass.
    pub expected: Option<u64>,
}

/// Streams `source` into `sink`, hashing on two cores in parallel, in constant memory.
///
/// The sink is neither committed nor aborted here: the caller decides, because it may
/// have more checks to make before the data becomes visible. A source that fails with a
/// domain [`Error`] wrapped in its `io::Error` (see [`source_error`]) fails the pass with
/// that error as it is.
pub async fn pump(
    mut source: ByteStream,
    sink: &mut dyn BlobWriter,
    algo: HashAlgo,
    limits: Limits,
    inspect: bool,
) -> Result<Digests> {
    let started = std::time::Instant::now();
    let mut hashes = Hashes::new(algo)?;
    let mut size: u64 = 0;
    let mut inspector = inspect.then(StreamInspector::new);
    let progress = JOB_PROGRESS.try_with(std::sync::Arc::clone).ok();
    if let Some(p) = &progress {
        use std::sync::atomic::Ordering::Relaxed;
        p.done.store(0, Relaxed);
        p.total.store(limits.expected.unwrap_or(0), Relaxed);
    }
    let mut pending = BytesMut::new();
    let mut done = false;
    while !done {
        let chunk = match source.next().await {
            Some(Ok(frame)) => {
                size += frame.len() as u64;
                check_size(size, limits)?;
                if pending.is_empty() && frame.len() >= CHUNK_SIZE {
                    frame
                } else {
                    pending.extend_from_slice(&frame);
                    if pending.len() < CHUNK_SIZE {
                        continue;
                    }
                    pending.split().freeze()
                }
            }
            Some(Err(e)) => return Err(source_error(e)),
            None => {
                done = true;
                pending.split().freeze()
            }
        };
        if chunk.is_empty() {
            continue;
        }
        hashes.feed(chunk.clone()).await?;
        if let Some(inspector) = &mut inspector {
            inspector.feed(&chunk);
        }
        if let Some(p) = &progress {
            p.done
                .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        sink.write(chunk).await?;
    }
    if let Some(expected) = limits.expected
        && expected != size
    {
        return Err(Error::invalid(format!(
            "Size mismatch: expected {expected} bytes, got {size}"
        )));
    }
    let (md5, hash) = hashes.finish().await?;
    crate::telemetry::pipeline_pass(size, started.elapsed());
    Ok(Digests {
        size,
        md5,
        algo,
        hash,
        inspection: inspector.map(StreamInspector::finish),
        virtual_size: None,
    })
}

/// What a failed source means: a domain error it carries is passed on as it is; a
/// connection the source gave up on is a transient failure; anything else is bad data.
pub fn source_error(e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(Ok(err)) = e.into_inner().map(|inner| inner.downcast::<Error>()) {
            return *err;
        }
        return Error::internal("source error lost");
    }
    if e.kind() == std::io::ErrorKind::ConnectionAborted {
        return Error::Unavailable(format!("Image data source failed: {e}"));
    }
    Error::invalid(format!("Image data stream failed: {e}"))
}

/// Fails `source` with `Error::InvalidInput` when no byte arrives for `idle` (a client
/// that opened an upload and went silent), so the transfer ends instead of holding its
/// image, lease and slot for as long as the connection stays open.
pub fn idle_timeout(source: ByteStream, idle: Duration) -> ByteStream {
    Box::pin(futures::stream::unfold(
        Some(source),
        move |source| async move {
            let mut source = source?;
            match tokio::time::timeout(idle, source.next()).await {
                Ok(Some(item)) => Some((item, Some(source))),
                Ok(None) => None,
                Err(_) => {
                    let stalled = Error::invalid(format!(
                        "No image data arrived for {} s; the upload was abandoned",
                        idle.as_secs()
                    ));
                    Some((Err(std::io::Error::other(stalled)), None))
                }
            }
        },
    ))
}

fn check_size(size: u64, limits: Limits) -> Result<()> {
    if let Some(expected) = limits.expected
        && size > expected
    {
        return Err(Error::invalid(format!(
            "Size exceeds: expected {expected} bytes, got more"
        )));
    }
    if size > limits.cap {
        return Err(Error::TooLarge(format!(
            "Image data exceeds the limit of {} bytes",
            limits.cap
        )));
    }
    Ok(())
}

type HashJob = crate::workers::Job<Result<Hasher>>;

/// md5 and the secure hash of one pass. OpenSSL's assembly MD5 and SHA-512 cost about a
/// third less CPU per byte than pure Rust here, which is what bounds an upload on two
/// cores; chunks are hashed by two jobs on the hashing pool, one per digest.
///
/// Hashing may fall up to [`HASH_BACKLOG`] chunks behind the store: while one batch is
/// hashed, the next chunks go on to the store and wait in the backlog, and the next batch
/// hashes them all. So a moment of slow writing does not idle the hashers and a moment of
/// slow hashing does not idle the disk (on two cores both happen all the time).
struct Hashes {
    idle: Option<(Hasher, Hasher)>,
    running: Option<(HashJob, HashJob)>,
    backlog: Vec<Bytes>,
}

/// Chunks (of [`CHUNK_SIZE`]) that may wait for hashing: 8 MiB per transfer.
const HASH_BACKLOG: usize = 8;

impl Hashes {
    fn new(algo: HashAlgo) -> Result<Self> {
        let secure = match algo {
            HashAlgo::Sha256 => MessageDigest::sha256(),
            HashAlgo::Sha384 => MessageDigest::sha384(),
            HashAlgo::Sha512 => MessageDigest::sha512(),
        };
        let md5 = Hasher::new(MessageDigest::md5()).map_err(Error::internal)?;
        let secure = Hasher::new(secure).map_err(Error::internal)?;
        Ok(Hashes {
            idle: Some((md5, secure)),
            running: None,
            backlog: Vec::new(),
        })
    }

    /// Queues `chunk`. While a batch is being hashed, it waits in the backlog (so this
    /// returns at once) until the backlog is full; then, or when nothing is being hashed,
    /// the previous batch is awaited and the backlog becomes the next batch.
    async fn feed(&mut self, chunk: Bytes) -> Result<()> {
        self.backlog.push(chunk);
        if self.running.is_some() && self.backlog.len() < HASH_BACKLOG {
            return Ok(());
        }
        let (md5, secure) = self.settle().await?;
        self.start(md5, secure);
        Ok(())
    }

    /// Hashes the backlog on the pool, one job per digest.
    fn start(&mut self, md5: Hasher, secure: Hasher) {
        let batch = std::sync::Arc::new(std::mem::take(&mut self.backlog));
        let pool = crate::workers::hashing();
        let other = std::sync::Arc::clone(&batch);
        self.running = Some((
            pool.submit(move || update(md5, &batch)),
            pool.submit(move || update(secure, &other)),
        ));
    }

    async fn settle(&mut self) -> Result<(Hasher, Hasher)> {
        if let Some((md5, secure)) = self.running.take() {
            let (md5, secure) = tokio::join!(md5, secure);
            return Ok((md5??, secure??));
        }
        self.idle
            .take()
            .ok_or_else(|| Error::internal("hashes used after a failure"))
    }

    /// The hex digests, once every chunk is hashed.
    async fn finish(mut self) -> Result<(String, String)> {
        if !self.backlog.is_empty() {
            let (md5, secure) = self.settle().await?;
            self.start(md5, secure);
        }
        let (mut md5, mut secure) = self.settle().await?;
        let hex = |h: &mut Hasher| h.finish().map(hex::encode).map_err(Error::internal);
        Ok((hex(&mut md5)?, hex(&mut secure)?))
    }
}

fn update(mut hasher: Hasher, chunks: &[Bytes]) -> Result<Hasher> {
    for chunk in chunks {
        hasher.update(chunk).map_err(Error::internal)?;
    }
    Ok(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use md5::Md5;
    use sha2::Digest;

    #[derive(Default)]
    struct VecSink(Vec<u8>);

    #[async_trait]
    impl BlobWriter for VecSink {
        async fn write(&mut self, chunk: Bytes) -> Result<()> {
            self.0.extend_from_slice(&chunk);
            Ok(())
        }
        async fn commit(self: Box<Self>) -> Result<()> {
            Ok(())
        }
        async fn abort(self: Box<Self>) {}
    }

    fn source(parts: Vec<Vec<u8>>) -> ByteStream {
        Box::pin(futures::stream::iter(
            parts.into_iter().map(|p| Ok(Bytes::from(p))),
        ))
    }

    const NO_LIMIT: Limits = Limits {
        cap: u64::MAX,
        expected: None,
    };

    #[tokio::test]
    async fn hashes_and_copies_in_one_pass() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let parts = data.chunks(65_536).map(|c| c.to_vec()).collect();
        let mut sink = VecSink::default();
        let d = pump(source(parts), &mut sink, HashAlgo::Sha512, NO_LIMIT, true)
            .await
            .unwrap();
        assert_eq!(sink.0, data);
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.md5, hex::encode(Md5::digest(&data)));
        assert_eq!(d.hash, hex::encode(sha2::Sha512::digest(&data)));
    }

    #[tokio::test]
    async fn empty_input_has_well_known_digests() {
        let mut sink = VecSink::default();
        let d = pump(source(vec![]), &mut sink, HashAlgo::Sha256, NO_LIMIT, true)
            .await
            .unwrap();
        assert_eq!(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            d.hash,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[tokio::test]
    async fn a_silent_source_fails_after_the_idle_timeout() {
        let silent: ByteStream = Box::pin(
            futures::stream::iter([Ok(Bytes::from_static(b"first"))])
                .chain(futures::stream::pending()),
        );
        let mut sink = VecSink::default();
        let stalled = idle_timeout(silent, Duration::from_secs(1));
        let err = pump(stalled, &mut sink, HashAlgo::Sha256, NO_LIMIT, false)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains("No image data arrived for 1 s")),
            "{err:?}"
        );
        // Nothing reached the sink: the five bytes were still waiting for a full chunk.
        assert!(sink.0.is_empty());
    }

    #[test]
    fn a_source_passes_its_domain_error_on_unchanged() {
        let quota = std::io::Error::other(Error::QuotaExceeded("over".into()));
        assert!(matches!(source_error(quota), Error::QuotaExceeded(m) if m == "over"));
        let aborted = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
        assert!(matches!(source_error(aborted), Error::Unavailable(_)));
        let other = std::io::Error::other("reset");
        assert!(matches!(source_error(other), Error::InvalidInput(_)));
    }

    #[tokio::test]
    async fn enforces_cap_and_declared_size() {
        let mut sink = VecSink::default();
        let cap = Limits {
            cap: 10,
            expected: None,
        };
        let err = pump(
            source(vec![vec![0; 11]]),
            &mut sink,
            HashAlgo::Sha512,
            cap,
            true,
        )
        .await;
        assert!(matches!(err, Err(Error::TooLarge(_))));
        let short = Limits {
            cap: 100,
            expected: Some(20),
        };
        let err = pump(
            source(vec![vec![0; 10]]),
            &mut sink,
            HashAlgo::Sha512,
            short,
            true,
        )
        .await;
        assert!(matches!(err, Err(Error::InvalidInput(_))));
    }
}
