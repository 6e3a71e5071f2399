//! A blob store in a local directory.
//!
//! Writes go to `<root>/.tmp/<node>-<uuid>`, are fsynced, then renamed to `<root>/<key>`,
//! so a half-written file is never visible under a key. Each writer owns a thread that
//! does the file I/O, and a flusher thread syncs every 64 MiB, so the final fsync has
//! little left to flush.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use ims_domain::ports::{BlobStore, BlobWriter, ByteRange, ByteStream};
use ims_domain::{Error, Result};
use tokio::sync::{mpsc, oneshot};

const WRITEBACK_WINDOW: u64 = 64 << 20;
const READ_CHUNK: usize = 1 << 20;

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

/// Keys are opaque names chosen by the domain; refuse anything path-like.
fn check_key(key: &str) -> Result<()> {
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
    pub fn open(root: impl Into<PathBuf>, node: &str) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join(".tmp")).map_err(io_err)?;
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
    async fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>> {
        let target = self.path(key)?;
        let temp = temp_path(&self.root, &self.node);
        let writer = blocking(move || FsWriter::start(temp, target, Publish::Replace)).await?;
        Ok(Box::new(writer))
    }

    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let (path, key) = (self.path(key)?, key.to_string());
        let file = blocking(move || {
            File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound {
                    kind: "image data",
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

    async fn keys(&self) -> Result<Vec<String>> {
        let root = self.root.clone();
        blocking(move || {
            let mut keys = Vec::new();
            for entry in std::fs::read_dir(&root).map_err(io_err)? {
                let entry = entry.map_err(io_err)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type().map_err(io_err)?.is_file() && check_key(&name).is_ok() {
                    keys.push(name);
                }
            }
            Ok(keys)
        })
        .await
    }

    async fn recover(&self) -> Result<u64> {
        let (tmp, prefix) = (self.root.join(".tmp"), format!("{}-", self.node));
        blocking(move || {
            let mut removed = 0;
            for entry in std::fs::read_dir(tmp).map_err(io_err)? {
                let entry = entry.map_err(io_err)?;
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
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

/// Streams a file (or a range of it) in 1 MiB chunks from a reader thread.
pub(crate) fn stream_file(mut file: File, range: Option<ByteRange>) -> Result<ByteStream> {
    let (start, mut left) = match range {
        Some(r) => (r.start, r.len()),
        None => (0, u64::MAX),
    };
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    std::thread::Builder::new()
        .name("ims-blob-reader".into())
        .spawn(move || {
            if let Err(e) = file.seek(SeekFrom::Start(start)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            while left > 0 {
                let want = READ_CHUNK.min(usize::try_from(left).unwrap_or(READ_CHUNK));
                // read_to_end fills spare capacity without zeroing it first.
                let mut buf = Vec::with_capacity(want);
                match (&mut file).take(want as u64).read_to_end(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        left -= n as u64;
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        break;
                    }
                }
            }
        })
        .map_err(io_err)?;
    Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })))
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

/// The writer thread: write, and every window ask a flusher thread to `fdatasync` what is
/// written so far, so the disk works while data still arrives and the final `fdatasync`
/// has little left. The pages stay cached, so a download right after an upload is served
/// from memory.
fn write_all(mut file: File, mut rx: mpsc::Receiver<Bytes>) -> std::io::Result<()> {
    let flusher = file.try_clone()?;
    let (flush_tx, flush_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let flush_thread = std::thread::Builder::new()
        .name("ims-blob-flush".into())
        .spawn(move || {
            while flush_rx.recv().is_ok() {
                // Best effort: a failure here resurfaces in the final fdatasync.
                let _ = flusher.sync_data();
            }
        })?;
    let (mut written, mut flushed) = (0u64, 0u64);
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
        if written - flushed >= WRITEBACK_WINDOW {
            // A full channel means a flush is running; it will cover this window too.
            let _ = flush_tx.try_send(());
            flushed = written;
        }
    }
    drop(flush_tx);
    let _ = flush_thread.join();
    file.sync_data()
}

pub(crate) struct FsWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    done: oneshot::Receiver<std::io::Result<()>>,
    temp: PathBuf,
    target: PathBuf,
    publish: Publish,
}

impl FsWriter {
    /// Creates `temp` and starts its writer thread; `commit` publishes it at `target`.
    pub(crate) fn start(temp: PathBuf, target: PathBuf, publish: Publish) -> Result<Self> {
        let file = File::create(&temp).map_err(io_err)?;
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("ims-blob-writer".into())
            .spawn(move || {
                let _ = done_tx.send(write_all(file, rx));
            })
            .map_err(io_err)?;
        Ok(FsWriter {
            tx: Some(tx),
            done: done_rx,
            temp,
            target,
            publish,
        })
    }

    async fn finish(&mut self) -> Result<()> {
        self.tx.take();
        (&mut self.done)
            .await
            .map_err(|_| Error::internal("blob writer thread died"))?
            .map_err(io_err)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl BlobWriter for FsWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| Error::internal("write after finish"))?;
        if tx.send(chunk).await.is_err() {
            // The thread stopped early; its error says why.
            return Err(self
                .finish()
                .await
                .err()
                .unwrap_or_else(|| Error::internal("blob writer stopped")));
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        if let Err(e) = self.finish().await {
            let _ = std::fs::remove_file(&self.temp);
            return Err(e);
        }
        let (temp, target, publish) = (self.temp.clone(), self.target.clone(), self.publish);
        let published = tokio::task::spawn_blocking(move || {
            let linked = match publish {
                Publish::Replace => std::fs::rename(&temp, &target),
                Publish::CreateNew => std::fs::hard_link(&temp, &target),
            };
            let _ = std::fs::remove_file(&temp);
            linked?;
            sync_dir(target.parent().unwrap_or(Path::new(".")))
        })
        .await
        .map_err(Error::internal)?;
        published.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::Conflict(format!("{} already exists", self.target.display()))
            }
            _ => io_err(e),
        })
    }

    async fn abort(mut self: Box<Self>) {
        let _ = self.finish().await;
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        // Neither committed nor aborted (a panic or a dropped future): leave no temp file.
        if self.tx.is_some() {
            self.tx.take();
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
        assert_eq!(store.keys().await.unwrap(), vec!["a".to_string()]);
        assert_eq!(
            std::fs::read_dir(dir.path().join(".tmp")).unwrap().count(),
            0
        );
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
    }
}
