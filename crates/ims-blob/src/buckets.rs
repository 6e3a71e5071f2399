//! Buckets as local directories: the embedded stand-in for OBS/S3.
//!
//! `<root>/<bucket>/<key>`; a bucket exists when its directory does. Keys arrive
//! validated by the domain, and every resolved path is also checked to stay inside its
//! bucket after symlinks are followed, so a link planted in a bucket cannot lead out.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ims_domain::bucket::{ObjectRef, check_bucket};
use ims_domain::ports::{BlobWriter, BucketSource, ByteStream, ObjectInfo};
use ims_domain::{Error, Result};

use crate::fs::{FsWriter, Publish, blocking, io_err, stream_file, temp_path};

/// Local directories standing in for object-storage buckets.
#[derive(Debug, Clone)]
pub struct FsBuckets {
    root: PathBuf,
    node: String,
}

fn not_found(kind: &'static str, id: impl Into<String>) -> Error {
    Error::NotFound {
        kind,
        id: id.into(),
    }
}

impl FsBuckets {
    /// Opens (creating) the bucket root; `node` prefixes this process's temp files.
    pub fn open(root: impl Into<PathBuf>, node: &str) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join(".tmp")).map_err(io_err)?;
        Ok(FsBuckets {
            root,
            node: node.to_string(),
        })
    }

    /// Creates a bucket (idempotent).
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        let dir = self.root.join(check_bucket(name)?);
        blocking(move || std::fs::create_dir_all(dir).map_err(io_err)).await
    }

    /// The bucket's directory, resolved; a missing bucket is `NotFound`.
    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf> {
        let dir = self.root.join(check_bucket(bucket)?);
        match dir.canonicalize() {
            Ok(dir) if dir.is_dir() => Ok(dir),
            _ => Err(not_found("bucket", bucket)),
        }
    }

    /// The object's resolved path, required to lie inside its bucket.
    fn object_path(&self, object: &ObjectRef) -> Result<PathBuf> {
        let bucket = self.bucket_dir(&object.bucket)?;
        let path = bucket
            .join(&object.key)
            .canonicalize()
            .map_err(|_| not_found("object", object.to_string()))?;
        if !path.starts_with(&bucket) || !path.is_file() {
            return Err(not_found("object", object.to_string()));
        }
        Ok(path)
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
}

#[async_trait]
impl BucketSource for FsBuckets {
    async fn head(&self, object: &ObjectRef) -> Result<ObjectInfo> {
        self.on_object(object, |this, object| {
            let size = std::fs::metadata(this.object_path(&object)?)
                .map_err(io_err)?
                .len();
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
            let file = std::fs::File::open(this.object_path(&object)?).map_err(io_err)?;
            stream_file(file, None)
        })
        .await
    }

    async fn create(&self, object: &ObjectRef) -> Result<Box<dyn BlobWriter>> {
        self.on_object(object, |this, object| {
            let bucket = this.bucket_dir(&object.bucket)?;
            let target = bucket.join(&object.key);
            let parent = target.parent().unwrap_or(&bucket).to_path_buf();
            std::fs::create_dir_all(&parent).map_err(io_err)?;
            if !parent.canonicalize().map_err(io_err)?.starts_with(&bucket) {
                return Err(Error::invalid(format!("{object} leaves its bucket")));
            }
            if target.exists() {
                return Err(Error::Conflict(format!("{object} already exists")));
            }
            let temp = temp_path(&this.root, &this.node);
            let writer: Box<dyn BlobWriter> =
                Box::new(FsWriter::start(temp, target, Publish::CreateNew)?);
            Ok(writer)
        })
        .await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let (this, bucket, prefix) = (self.clone(), bucket.to_string(), prefix.to_string());
        blocking(move || {
            let dir = this.bucket_dir(&bucket)?;
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
            Err(Error::NotFound { kind: "bucket", .. })
        ));
        b.create_bucket("bkt").await.unwrap();
        assert!(matches!(
            b.head(&obj("bkt:a")).await,
            Err(Error::NotFound { kind: "object", .. })
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
    }
}
