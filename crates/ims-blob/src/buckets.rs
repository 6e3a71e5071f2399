//! Buckets as local directories: the embedded stand-in for OBS/S3.
//!
//! `<root>/<bucket>/<key>`; a bucket exists when its directory does. Keys arrive
//! validated by the domain. Inside a bucket, paths are walked one directory at a time
//! with `openat(O_NOFOLLOW)`, never by path: a symlink planted in a bucket (by a user of
//! the host) is never followed, so nothing outside the bucket is read, created or linked,
//! and swapping a directory for a link while a write runs changes nothing, because the
//! object is linked into the directory already open. Bucket directories are 0700 and
//! objects 0600: only the service's user reads them on the host.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use ims_domain::bucket::{ObjectRef, check_bucket};
use ims_domain::ports::{BlobWriter, BucketSource, ByteStream, ObjectInfo};
use ims_domain::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat, mkdirat};

use crate::fs::{FsWriter, Publish, blocking, io_err, stream_file, temp_path};

/// Bucket directories (and the directories inside them): the service's user only.
const DIR_MODE: u32 = 0o700;

/// Local directories standing in for object-storage buckets.
#[derive(Debug, Clone)]
pub struct FsBuckets {
    root: PathBuf,
    node: String,
}

fn not_found(kind: ims_domain::Entity, id: impl Into<String>) -> Error {
    Error::NotFound {
        kind,
        id: id.into(),
    }
}

fn private_dirs(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .map_err(io_err)
}

fn nix_err(e: Errno) -> Error {
    io_err(std::io::Error::from(e))
}

/// Opens directory `name` in `dir` without following a symlink, first creating it (0700)
/// when `create`.
fn open_dir_at(dir: &OwnedFd, name: &str, create: bool) -> nix::Result<OwnedFd> {
    if create {
        match mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(DIR_MODE)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    openat(
        dir.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The directory holding `key`'s object, walked from the bucket's directory one
/// component at a time (creating missing ones when `create`), and the object's name in
/// it. `Err` with the errno when a component is missing, is a symlink or is no directory.
fn object_dir(bucket: OwnedFd, key: &str, create: bool) -> nix::Result<(OwnedFd, &str)> {
    let (dirs, name) = key.rsplit_once('/').unwrap_or(("", key));
    let mut dir = bucket;
    for part in dirs.split('/').filter(|p| !p.is_empty()) {
        dir = open_dir_at(&dir, part, create)?;
    }
    Ok((dir, name))
}

impl FsBuckets {
    /// Opens (creating, 0700) the bucket root; `node` prefixes this process's temp files.
    pub fn open(root: impl Into<PathBuf>, node: &str) -> Result<Self> {
        let root = root.into();
        private_dirs(&root.join(".tmp"))?;
        Ok(FsBuckets {
            root,
            node: node.to_string(),
        })
    }

    /// Creates a bucket, 0700 (idempotent).
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        let dir = self.root.join(check_bucket(name)?);
        blocking(move || private_dirs(&dir)).await
    }

    /// The bucket's directory, open; a missing bucket is `NotFound`. The bucket directory
    /// itself may be a link the operator made (to another disk); nothing below it may.
    fn bucket_dir(&self, bucket: &str) -> Result<OwnedFd> {
        let dir = self.root.join(check_bucket(bucket)?);
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY)
            .open(dir)
            .map(OwnedFd::from)
            .map_err(|_| not_found(ims_domain::Entity::Bucket, bucket))
    }

    /// The object's file, open for reading, if it is a regular file inside its bucket.
    fn open_object(&self, object: &ObjectRef) -> Result<File> {
        let missing = || not_found(ims_domain::Entity::Object, object.to_string());
        let bucket = self.bucket_dir(&object.bucket)?;
        let (dir, name) = object_dir(bucket, &object.key, false).map_err(|_| missing())?;
        // O_NONBLOCK: a FIFO planted in a bucket must not block the open; regular files
        // ignore the flag.
        let fd = openat(
            dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| missing())?;
        let stat = fstat(fd.as_fd()).map_err(nix_err)?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(missing());
        }
        Ok(File::from(fd))
    }

    /// Runs `f` on a blocking thread with copies of `self` and `object`: resolving paths
    /// and reading metadata are filesystem calls that must not stall the async runtime.
    async fn on_object<T: Send + 'static>(
        &self,
        object: &ObjectRef,
        f: impl FnOnce(FsBuckets, ObjectRef) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (this, object) = (self.clone(), object.clone());
        blocking(move || f(this, object)).await
    }

    /// Starts writing a new object: its directories made (0700) and entered one by one
    /// without following links, the name checked to be free, the data written to a 0600
    /// temp file that [`BucketWriter::commit`] links into the directory held open.
    fn start_object(&self, object: &ObjectRef) -> Result<BucketWriter> {
        let bucket = self.bucket_dir(&object.bucket)?;
        let (dir, name) = object_dir(bucket, &object.key, true).map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR | Errno::EEXIST => {
                Error::invalid(format!("{object} leaves its bucket"))
            }
            e => nix_err(e),
        })?;
        match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(_) => return Err(Error::Conflict(format!("{object} already exists"))),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(nix_err(e)),
        }
        // The writer creates the temp file (0600, exclusively) with its first chunk.
        let temp = temp_path(&self.root, &self.node);
        let mut ready = temp.clone().into_os_string();
        ready.push(".ready");
        let ready = PathBuf::from(ready);
        let inner = FsWriter::start(temp, ready.clone(), Publish::CreateNew)?;
        Ok(BucketWriter {
            inner: Some(Box::new(inner)),
            ready,
            dir,
            name: name.to_string(),
            object: object.to_string(),
        })
    }
}

/// A new object being written: the data goes to a temp file; on commit it is linked, under
/// its name, into the directory that was checked and held open, never overwriting.
struct BucketWriter {
    inner: Option<Box<dyn BlobWriter>>,
    /// Where the finished temp file waits to be linked.
    ready: PathBuf,
    dir: OwnedFd,
    name: String,
    object: String,
}

#[async_trait]
impl BlobWriter for BucketWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.write(chunk).await,
            None => Err(Error::internal("write after finish")),
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let inner = self
            .inner
            .take()
            .ok_or_else(|| Error::internal("commit after finish"))?;
        inner.commit().await?;
        blocking(move || {
            let linked = nix::unistd::linkat(
                AT_FDCWD,
                &self.ready,
                self.dir.as_fd(),
                self.name.as_str(),
                AtFlags::empty(),
            );
            let _ = std::fs::remove_file(&self.ready);
            match linked {
                Ok(()) => nix::unistd::fsync(self.dir.as_fd()).map_err(nix_err),
                Err(Errno::EEXIST) => {
                    Err(Error::Conflict(format!("{} already exists", self.object)))
                }
                Err(e) => Err(nix_err(e)),
            }
        })
        .await
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(inner) = self.inner.take() {
            inner.abort().await;
        }
    }
}

#[async_trait]
impl BucketSource for FsBuckets {
    async fn head(&self, object: &ObjectRef) -> Result<ObjectInfo> {
        self.on_object(object, |this, object| {
            let size = this.open_object(&object)?.metadata().map_err(io_err)?.len();
            Ok(ObjectInfo {
                key: object.key,
                size,
                storage_class: "STANDARD".into(),
            })
        })
        .await
    }

    async fn open(&self, object: &ObjectRef) -> Result<ByteStream> {
        self.on_object(object, |this, object| {
            stream_file(this.open_object(&object)?, None)
        })
        .await
    }

    async fn create(&self, object: &ObjectRef) -> Result<Box<dyn BlobWriter>> {
        self.on_object(object, |this, object| {
            let writer: Box<dyn BlobWriter> = Box::new(this.start_object(&object)?);
            Ok(writer)
        })
        .await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let (this, bucket, prefix) = (self.clone(), bucket.to_string(), prefix.to_string());
        blocking(move || {
            this.bucket_dir(&bucket)?;
            let dir = this.root.join(&bucket);
            let mut out = Vec::new();
            walk(&dir, &dir, &mut out)?;
            out.retain(|o| o.key.starts_with(&prefix));
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }
}

/// Collects regular files under `dir` (not following symlinks) as keys relative to `base`.
fn walk(base: &Path, dir: &Path, out: &mut Vec<ObjectInfo>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let kind = entry.file_type().map_err(io_err)?;
        if kind.is_dir() {
            walk(base, &entry.path(), out)?;
        } else if kind.is_file() {
            let key = entry
                .path()
                .strip_prefix(base)
                .map_err(Error::internal)?
                .to_string_lossy()
                .into_owned();
            let size = entry.metadata().map_err(io_err)?.len();
            out.push(ObjectInfo {
                key,
                size,
                storage_class: "STANDARD".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;

    fn obj(s: &str) -> ObjectRef {
        ObjectRef::parse(s).unwrap()
    }

    #[tokio::test]
    async fn put_head_open_list_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let b = FsBuckets::open(dir.path(), "n1").unwrap();
        assert!(matches!(
            b.head(&obj("bkt:a")).await,
            Err(Error::NotFound {
                kind: ims_domain::Entity::Bucket,
                ..
            })
        ));
        b.create_bucket("bkt").await.unwrap();
        assert!(matches!(
            b.head(&obj("bkt:a")).await,
            Err(Error::NotFound {
                kind: ims_domain::Entity::Object,
                ..
            })
        ));
        let mut w = b.create(&obj("bkt:dir/disk.qcow2")).await.unwrap();
        w.write(Bytes::from_static(b"data")).await.unwrap();
        assert!(
            b.head(&obj("bkt:dir/disk.qcow2")).await.is_err(),
            "invisible before commit"
        );
        w.commit().await.unwrap();
        assert_eq!(b.head(&obj("bkt:dir/disk.qcow2")).await.unwrap().size, 4);
        let data: Vec<u8> = b
            .open(&obj("bkt:dir/disk.qcow2"))
            .await
            .unwrap()
            .map(|c| c.unwrap().to_vec())
            .concat()
            .await;
        assert_eq!(data, b"data");
        assert!(matches!(
            b.create(&obj("bkt:dir/disk.qcow2")).await,
            Err(Error::Conflict(_))
        ));
        let listed = b.list("bkt", "dir/").await.unwrap();
        assert_eq!(
            listed.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            ["dir/disk.qcow2"]
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join(".tmp")).unwrap().count(),
            0
        );
    }

    async fn put(b: &FsBuckets, target: &str, data: &'static [u8]) -> Result<()> {
        let mut w = b.create(&obj(target)).await?;
        w.write(Bytes::from_static(data)).await?;
        w.commit().await
    }

    #[tokio::test]
    async fn a_symlink_cannot_lead_out_of_its_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let b = FsBuckets::open(dir.path().join("buckets"), "n1").unwrap();
        b.create_bucket("bkt").await.unwrap();
        std::fs::write(dir.path().join("secret"), b"host file").unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("secret"),
            dir.path().join("buckets/bkt/link"),
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("buckets/bkt/out")).unwrap();
        assert!(b.open(&obj("bkt:link")).await.is_err());
        assert!(b.head(&obj("bkt:out/secret")).await.is_err());
        assert!(b.create(&obj("bkt:out/new")).await.is_err());
        // The review's L10: directories were created through the link before the check.
        assert!(b.create(&obj("bkt:out/made/new")).await.is_err());
        assert!(
            !dir.path().join("made").exists(),
            "created outside the bucket"
        );
        // Links inside the bucket are not followed either.
        put(&b, "bkt:real/disk.img", b"x").await.unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("buckets/bkt/alias")).unwrap();
        assert!(b.head(&obj("bkt:alias/disk.img")).await.is_err());
        assert!(put(&b, "bkt:alias/new.img", b"x").await.is_err());
        assert!(!dir.path().join("buckets/bkt/real/new.img").exists());
    }

    #[tokio::test]
    async fn a_directory_swapped_for_a_link_during_a_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let b = FsBuckets::open(dir.path().join("buckets"), "n1").unwrap();
        b.create_bucket("bkt").await.unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let mut w = b.create(&obj("bkt:d/x.img")).await.unwrap();
        w.write(Bytes::from_static(b"data")).await.unwrap();
        let bucket = dir.path().join("buckets/bkt");
        std::fs::rename(bucket.join("d"), bucket.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, bucket.join("d")).unwrap();
        w.commit().await.unwrap();
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(std::fs::read(bucket.join("moved/x.img")).unwrap(), b"data");
    }

    #[tokio::test]
    async fn objects_and_bucket_directories_are_private_and_fifos_do_not_block() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("buckets");
        let b = FsBuckets::open(&root, "n1").unwrap();
        b.create_bucket("bkt").await.unwrap();
        put(&b, "bkt:a/b/c.img", b"x").await.unwrap();
        let mode = |p: &str| {
            std::fs::metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        for d in ["", ".tmp", "bkt", "bkt/a", "bkt/a/b"] {
            assert_eq!(mode(d), 0o700, "{d}");
        }
        assert_eq!(mode("bkt/a/b/c.img"), 0o600);
        nix::unistd::mkfifo(&root.join("bkt/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            b.open(&obj("bkt:fifo")).await,
            Err(Error::NotFound {
                kind: ims_domain::Entity::Object,
                ..
            })
        ));
        assert_eq!(std::fs::read_dir(root.join(".tmp")).unwrap().count(), 0);
    }
}
