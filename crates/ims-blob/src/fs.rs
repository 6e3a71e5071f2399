//! A blob store in a local directory.
//!
//! Writes go to `<root>/.tmp/<node>-<uuid>`, are fsynced, then renamed to `<root>/<key>`,
//! so a half-written file is never visible under a key. The temp file is created on the
//! first chunk, not before. All file I/O runs as short jobs on the data path's disk pool
//! ([`ims_domain::workers::disk`]): one write per chunk, at most one in flight per writer,
//! and every 64 MiB a `fdatasync` of what is written so far, so the final one has little
//! left to flush. A stalled upload or a download whose client does not read holds no
//! thread. Files are created 0600 and directories 0700: image data is the tenants'.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use ims_domain::ports::{BlobStore, BlobWriter, ByteRange, ByteStream, StoredBlob};
use ims_domain::workers::{self, Job};
use ims_domain::{Error, Result};

const WRITEBACK_WINDOW: u64 = 64 << 20;
/// Bytes per read job of a download. With one read ahead, a client that does not read
/// holds at most two of these.
const READ_CHUNK: usize = 512 << 10;
/// The mode of every data file.
pub(crate) const FILE_MODE: u32 = 0o600;
/// The mode of every data directory.
pub(crate) const DIR_MODE: u32 = 0o700;

/// A blob store rooted at a directory.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    node: String,
}

pub(crate) fn io_err(e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(nix::libc::ENOSPC) {
        return Error::TooLarge("Image storage media is full".into());
    }
    Error::internal(format!("blob store: {e}"))
}

/// Keys are opaque names chosen by the domain; refuse anything path-like. Every blob
/// store checks its keys with this one rule.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::internal(format!("invalid blob key {key:?}")))
    }
}

impl FsBlobStore {
    /// Opens (creating) a store at `root`; `node` prefixes this process's temp files.
    /// The store and its temp directory are made private (0700), also when they exist.
    pub fn open(root: impl Into<PathBuf>, node: &str) -> Result<Self> {
        let root = root.into();
        private_dir(&root.join(".tmp")).map_err(io_err)?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_err)?;
        Ok(FsBlobStore {
            root,
            node: node.to_string(),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn check(&self) -> Result<()> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(Error::Unavailable(format!(
                "{} is not a directory",
                self.root.display()
            ))),
            Err(e) => Err(Error::Unavailable(format!("{}: {e}", self.root.display()))),
        }
    }

    async fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>> {
        let target = self.path(key)?;
        let temp = temp_path(&self.root, &self.node);
        Ok(Box::new(FsWriter::start(temp, target, Publish::Replace)?))
    }

    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let (path, key) = (self.path(key)?, key.to_string());
        let file = blocking(move || {
            File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound {
                    kind: ims_domain::Entity::ImageData,
                    id: key,
                },
                _ => io_err(e),
            })
        })
        .await?;
        stream_file(file, range)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        blocking(move || match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<StoredBlob>> {
        let root = self.root.clone();
        blocking(move || {
            let mut keys = Vec::new();
            for entry in std::fs::read_dir(&root).map_err(io_err)? {
                let entry = entry.map_err(io_err)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type().map_err(io_err)?.is_file() && check_key(&name).is_ok() {
                    let written = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .map_err(io_err)?;
                    keys.push(StoredBlob {
                        key: name,
                        written: written.into(),
                    });
                }
            }
            Ok(keys)
        })
        .await
    }

    async fn recover(&self) -> Result<u64> {
        let prefix = format!("{}-", self.node);
        self.remove_temp_files(move |name, _| name.starts_with(&prefix))
            .await
    }

    async fn abort_stale_writes(&self, before: time::OffsetDateTime) -> Result<u64> {
        let before = std::time::SystemTime::from(before);
        self.remove_temp_files(move |_, modified| modified < before)
            .await
    }
}

impl FsBlobStore {
    /// Removes the temp files (partial writes) for which `stale(name, modified)` holds.
    async fn remove_temp_files(
        &self,
        stale: impl Fn(&str, std::time::SystemTime) -> bool + Send + 'static,
    ) -> Result<u64> {
        let tmp = self.root.join(".tmp");
        blocking(move || {
            let mut removed = 0;
            for entry in std::fs::read_dir(tmp).map_err(io_err)? {
                let entry = entry.map_err(io_err)?;
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map_err(io_err)?;
                if stale(&entry.file_name().to_string_lossy(), modified) {
                    std::fs::remove_file(entry.path()).map_err(io_err)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }
}

/// Runs filesystem work on a blocking thread, off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}

/// Creates `dir` and its missing parents with mode 0700, and makes `dir` itself 0700 if
/// it existed with a wider mode.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
}

/// Streams a file (or a range of it) in chunks read by jobs on the disk pool, one chunk
/// ahead of the consumer: no thread of its own, and no more than two chunks buffered for
/// a client that does not read.
pub(crate) fn stream_file(file: File, range: Option<ByteRange>) -> Result<ByteStream> {
    let (start, left) = match range {
        Some(r) => (r.start, r.len()),
        None => (0, u64::MAX),
    };
    let file = std::sync::Arc::new(file);
    let first = read_chunk(&file, start, left);
    Ok(Box::pin(futures::stream::unfold(
        Some((file, first, start, left)),
        |state| async move {
            let (file, job, at, left) = state?;
            let chunk = match job.await {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(e)) => return Some((Err(e), None)),
                Err(e) => return Some((Err(std::io::Error::other(e)), None)),
            };
            if chunk.is_empty() {
                return None;
            }
            let (at, left) = (at + chunk.len() as u64, left - chunk.len() as u64);
            let next = read_chunk(&file, at, left);
            Some((Ok(chunk), Some((file, next, at, left))))
        },
    )))
}

/// Reads up to [`READ_CHUNK`] bytes at `at` (at most `left`) on the disk pool; an empty
/// chunk means the end.
fn read_chunk(file: &std::sync::Arc<File>, at: u64, left: u64) -> Job<std::io::Result<Bytes>> {
    let file = std::sync::Arc::clone(file);
    workers::disk().submit(move || {
        let want = READ_CHUNK.min(usize::try_from(left).unwrap_or(READ_CHUNK));
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            match file.read_at(&mut buf[filled..], at + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(Bytes::from(buf))
    })
}

/// `<root>/.tmp/<node>-<uuid>`: where a write goes until it is published.
pub(crate) fn temp_path(root: &Path, node: &str) -> PathBuf {
    root.join(".tmp")
        .join(format!("{node}-{}", uuid::Uuid::new_v4()))
}

/// How a committed write becomes visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// Rename over the target (blob keys are fresh per attempt anyway).
    Replace,
    /// Link to the target, failing if it exists (bucket objects are never overwritten).
    CreateNew,
}

/// A file being written: created on the first chunk, each chunk one job on the disk pool.
pub(crate) struct FsWriter {
    file: Option<File>,
    /// The write in flight; it hands the file back when done.
    writing: Option<Job<std::io::Result<File>>>,
    /// The `fdatasync` in flight, if any (on a clone of the file's handle).
    flushing: Option<Job<std::io::Result<()>>>,
    created: bool,
    failed: bool,
    written: u64,
    flushed: u64,
    temp: PathBuf,
    target: PathBuf,
    publish: Publish,
}

impl FsWriter {
    /// A writer to `temp` that `commit` publishes at `target`. Nothing is created yet.
    pub(crate) fn start(temp: PathBuf, target: PathBuf, publish: Publish) -> Result<Self> {
        Ok(FsWriter {
            file: None,
            writing: None,
            flushing: None,
            created: false,
            failed: false,
            written: 0,
            flushed: 0,
            temp,
            target,
            publish,
        })
    }

    /// The file, once the previous write is done; created (0600) on first use.
    async fn file(&mut self) -> Result<File> {
        if self.failed {
            return Err(Error::internal("write after a failed write"));
        }
        let file = if let Some(job) = self.writing.take() {
            job.await.and_then(|r| r.map_err(io_err))
        } else if let Some(file) = self.file.take() {
            Ok(file)
        } else {
            let temp = self.temp.clone();
            self.created = true;
            workers::disk()
                .submit(move || create_private(&temp))
                .await
                .and_then(|r| r.map_err(io_err))
        };
        self.failed = file.is_err();
        file
    }

    /// Every [`WRITEBACK_WINDOW`] bytes, asks the disk to write back what is written so
    /// far, unless the previous request is still running (it will cover this one too).
    fn maybe_flush(&mut self, file: &File) {
        if self.written - self.flushed < WRITEBACK_WINDOW || !self.flush_finished() {
            return;
        }
        if let Ok(clone) = file.try_clone() {
            // Best effort: a failure here resurfaces in the final fdatasync.
            self.flushing = Some(workers::disk().submit(move || clone.sync_data()));
            self.flushed = self.written;
        }
    }

    /// Whether no flush is running (a finished one is collected, without waiting).
    fn flush_finished(&mut self) -> bool {
        use futures::FutureExt;
        match self.flushing.as_mut().map(FutureExt::now_or_never) {
            None => true,
            Some(None) => false,
            Some(Some(_)) => {
                self.flushing = None;
                true
            }
        }
    }

    /// Waits for every write and flush, and makes the data durable.
    async fn finish(&mut self) -> Result<File> {
        let file = self.file().await?;
        if let Some(flush) = self.flushing.take() {
            let _ = flush.await;
        }
        workers::disk()
            .submit(move || file.sync_data().map(|()| file))
            .await
            .and_then(|r| r.map_err(io_err))
    }
}

fn create_private(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl BlobWriter for FsWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let file = self.file().await?;
        self.written += chunk.len() as u64;
        self.maybe_flush(&file);
        self.writing = Some(workers::disk().submit(move || {
            let mut file = file;
            file.write_all(&chunk).map(|()| file)
        }));
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let file = match self.finish().await {
            Ok(file) => file,
            Err(e) => {
                self.remove_temp().await;
                return Err(e);
            }
        };
        drop(file);
        let (temp, target, publish) = (self.temp.clone(), self.target.clone(), self.publish);
        // Published or not, the temp file is gone after this.
        self.created = false;
        let published = workers::disk()
            .submit(move || {
                let linked = match publish {
                    Publish::Replace => std::fs::rename(&temp, &target),
                    Publish::CreateNew => std::fs::hard_link(&temp, &target),
                };
                let _ = std::fs::remove_file(&temp);
                linked?;
                sync_dir(target.parent().unwrap_or(Path::new(".")))
            })
            .await?;
        published.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::Conflict(format!("{} already exists", self.target.display()))
            }
            _ => io_err(e),
        })
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(job) = self.writing.take() {
            let _ = job.await;
        }
        if let Some(job) = self.flushing.take() {
            let _ = job.await;
        }
        self.file = None;
        self.remove_temp().await;
    }
}

impl FsWriter {
    async fn remove_temp(&mut self) {
        if std::mem::take(&mut self.created) {
            let temp = self.temp.clone();
            let _ = workers::disk()
                .submit(move || std::fs::remove_file(temp))
                .await;
        }
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        // Neither committed nor aborted (a panic or a dropped future): leave no temp file.
        // A write still in flight has its own handle; unlinking the name is enough.
        if self.created {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn collect(s: ByteStream) -> Vec<u8> {
        s.map(|c| c.unwrap().to_vec()).concat().await
    }

    #[tokio::test]
    async fn commit_makes_data_visible_and_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path(), "n1").unwrap();
        let mut w = store.writer("a").await.unwrap();
        w.write(Bytes::from_static(b"hello ")).await.unwrap();
        w.write(Bytes::from_static(b"world")).await.unwrap();
        assert!(
            store.keys().await.unwrap().is_empty(),
            "nothing visible before commit"
        );
        w.commit().await.unwrap();
        assert_eq!(
            collect(store.read("a", None).await.unwrap()).await,
            b"hello world"
        );
        let r = ByteRange { start: 6, end: 9 };
        assert_eq!(
            collect(store.read("a", Some(r)).await.unwrap()).await,
            b"worl"
        );

        let mut w = store.writer("b").await.unwrap();
        w.write(Bytes::from_static(b"partial")).await.unwrap();
        w.abort().await;
        let listed = store.keys().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "a");
        let age = time::OffsetDateTime::now_utc() - listed[0].written;
        assert!(age.abs() < time::Duration::minutes(1), "{age}");
        assert_eq!(
            std::fs::read_dir(dir.path().join(".tmp")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn a_writer_creates_nothing_before_its_first_chunk_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path(), "n1").unwrap();
        let tmp = dir.path().join(".tmp");
        assert_eq!(mode(dir.path()), DIR_MODE);
        assert_eq!(mode(&tmp), DIR_MODE);
        let mut w = store.writer("a").await.unwrap();
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        w.write(Bytes::from(vec![1u8; 3 * READ_CHUNK + 5]))
            .await
            .unwrap();
        w.write(Bytes::from_static(b"tail")).await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(mode(&dir.path().join("a")), FILE_MODE);
        let data = collect(store.read("a", None).await.unwrap()).await;
        assert_eq!(data.len(), 3 * READ_CHUNK + 9);
        assert!(data.ends_with(b"\x01tail"));
        // A range across chunk boundaries.
        let r = ByteRange {
            start: READ_CHUNK as u64 - 2,
            end: 3 * READ_CHUNK as u64 + 6,
        };
        let part = collect(store.read("a", Some(r)).await.unwrap()).await;
        assert_eq!(part.len(), 2 * READ_CHUNK + 9);
        assert!(part.ends_with(b"\x01ta"));
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn refuses_path_like_keys_and_recovers_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path(), "n1").unwrap();
        assert!(store.writer("../x").await.is_err());
        assert!(store.writer("a/b").await.is_err());
        std::fs::write(dir.path().join(".tmp/n1-stale"), b"x").unwrap();
        std::fs::write(dir.path().join(".tmp/n2-other"), b"x").unwrap();
        assert_eq!(store.recover().await.unwrap(), 1);
        assert!(dir.path().join(".tmp/n2-other").exists());
        // Another node's partial write goes once it is older than the cut-off.
        let now = time::OffsetDateTime::now_utc();
        let hour = time::Duration::hours(1);
        assert_eq!(store.abort_stale_writes(now - hour).await.unwrap(), 0);
        assert!(dir.path().join(".tmp/n2-other").exists());
        assert_eq!(store.abort_stale_writes(now + hour).await.unwrap(), 1);
        assert!(!dir.path().join(".tmp/n2-other").exists());
    }
}
