//! Objects in buckets, named the way Huawei IMS names them: `bucket:object`.
//!
//! Every rule about what a name may be lives here, so no adapter (a directory per bucket,
//! or S3/OBS) ever sees a name that could leave its bucket. So does the one rule about who
//! may use a bucket ([`may_use`]): [`Buckets`] applies it before every `head`, `open` and
//! `create`, and a bucket the caller may not use is reported exactly like a missing one.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::{Error, Result};
use async_trait::async_trait;

use super::{BlobWriter, ByteStream};
use crate::principal::Principal;

/// The longest object key accepted (S3's and OBS's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// A validated reference to one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// The bucket: 3–63 of `a-z 0-9 . -`, starting and ending with a letter or digit.
    pub bucket: String,
    /// The key: relative, `/`-separated, without empty, `.` or `..` segments, NUL or `\`.
    pub key: String,
}

impl ObjectRef {
    /// Parses `bucket:object`, split on the first `:`.
    pub fn parse(url: &str) -> Result<Self> {
        let (bucket, key) = url
            .split_once(':')
            .ok_or_else(|| Error::invalid(format!("{url:?} is not of the form bucket:object")))?;
        Ok(ObjectRef {
            bucket: check_bucket(bucket)?.to_string(),
            key: check_key(key)?.to_string(),
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.bucket, self.key)
    }
}

/// Checks a bucket name.
pub fn check_bucket(name: &str) -> Result<&str> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && !name.contains("..");
    if ok {
        Ok(name)
    } else {
        Err(Error::invalid(format!(
            "{name:?} is not a valid bucket name"
        )))
    }
}

/// Checks an object key: it can never name anything outside its bucket.
pub fn check_key(key: &str) -> Result<&str> {
    let bad = key.is_empty()
        || key.len() > MAX_KEY_BYTES
        || key.starts_with('/')
        || key.contains('\0')
        || key.contains('\\')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        Err(Error::invalid(format!(
            "{key:?} is not a valid object name"
        )))
    } else {
        Ok(key)
    }
}

/// What a caller does with a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketUse {
    /// Reads objects (imports).
    Read,
    /// Writes new objects (exports).
    Write,
}

/// Who may use a bucket: its owner project reads and writes, the projects it is shared
/// with read. A bucket without an owner is for cloud administrators only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketGrants {
    /// The bucket's name (the rules of [`ObjectRef::bucket`]).
    pub name: String,
    /// The owner project's id; `None`: administrators only.
    pub owner: Option<String>,
    /// Projects (ids) the bucket is shared with, read-only.
    pub readers: BTreeSet<String>,
}

/// Who uses a bucket: a project, and whether the caller is a cloud administrator. Jobs
/// run later as the caller that queued them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCaller {
    /// The caller's project.
    pub project_id: String,
    /// A cloud administrator (may use every bucket).
    pub admin: bool,
}

impl BucketCaller {
    /// The caller behind a request.
    pub fn of(who: &Principal) -> Self {
        BucketCaller {
            project_id: who.project_id.clone(),
            admin: who.is_admin(),
        }
    }

    /// The caller a job acts for: its project, and whether an administrator queued it
    /// (recorded in the payload). Jobs check again when they run, since a share may
    /// have ended since they were queued.
    pub fn of_job(job: &crate::job::Job, admin: bool) -> Self {
        BucketCaller {
            project_id: job.project_id.clone(),
            admin,
        }
    }
}

/// The rule: administrators use every bucket; otherwise the owner project reads and
/// writes, a project it is shared with reads, and nobody else uses it at all. A bucket
/// the catalog does not know (`grants` is `None`) has no owner.
pub fn may_use(caller: &BucketCaller, grants: Option<&BucketGrants>, how: BucketUse) -> bool {
    if caller.admin {
        return true;
    }
    let Some(g) = grants else {
        return false;
    };
    let owner = g.owner.as_deref() == Some(caller.project_id.as_str());
    match how {
        BucketUse::Write => owner,
        BucketUse::Read => owner || g.readers.contains(&caller.project_id),
    }
}

/// The error for a bucket that does not exist, or that the caller may not use: one and
/// the same, so a caller cannot learn which buckets exist.
pub fn bucket_not_found(bucket: &str) -> Error {
    Error::NotFound {
        kind: crate::Entity::Bucket,
        id: bucket.to_string(),
    }
}

/// The buckets as image use cases see them: the object stores behind the access check.
/// Every method takes the caller and checks [`may_use`] before the store is asked
/// anything.
#[derive(Clone)]
pub struct Buckets {
    store: Arc<dyn BucketSource>,
    grants: Arc<dyn BucketRepo>,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buckets").finish_non_exhaustive()
    }
}

impl Buckets {
    /// The stores `store` guarded by the grants in `grants`.
    pub fn new(store: Arc<dyn BucketSource>, grants: Arc<dyn BucketRepo>) -> Self {
        Buckets { store, grants }
    }

    /// `Ok` if `caller` may use `bucket` as `how`, else the missing-bucket error.
    pub async fn check(&self, caller: &BucketCaller, bucket: &str, how: BucketUse) -> Result<()> {
        // Administrators skip the lookup: they may use any bucket, known or not.
        if caller.admin {
            return Ok(());
        }
        let grants = self.grants.bucket_grants(bucket).await?;
        if may_use(caller, grants.as_ref(), how) {
            Ok(())
        } else {
            Err(bucket_not_found(bucket))
        }
    }

    /// An object's size and class, if `caller` may use its bucket as `how` (an export
    /// checks its target with `Write`).
    pub async fn head(
        &self,
        caller: &BucketCaller,
        how: BucketUse,
        object: &ObjectRef,
    ) -> Result<ObjectInfo> {
        self.check(caller, &object.bucket, how).await?;
        self.store.head(object).await
    }

    /// Streams an object, if `caller` may read its bucket.
    pub async fn open(&self, caller: &BucketCaller, object: &ObjectRef) -> Result<ByteStream> {
        self.check(caller, &object.bucket, BucketUse::Read).await?;
        self.store.open(object).await
    }

    /// An object's size and its data, if `caller` may read its bucket.
    pub async fn read(
        &self,
        caller: &BucketCaller,
        object: &ObjectRef,
    ) -> Result<(u64, ByteStream)> {
        let size = self.head(caller, BucketUse::Read, object).await?.size;
        Ok((size, self.store.open(object).await?))
    }

    /// Writes a new object, if `caller` may write its bucket.
    pub async fn create(
        &self,
        caller: &BucketCaller,
        object: &ObjectRef,
    ) -> Result<Box<dyn BlobWriter>> {
        self.check(caller, &object.bucket, BucketUse::Write).await?;
        self.store.create(object).await
    }

    /// The catalog's record of who may use the buckets (for administration).
    pub fn grants(&self) -> &Arc<dyn BucketRepo> {
        &self.grants
    }
}

/// What a bucket says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its storage class as the store names it (`STANDARD`, `WARM`, `COLD`, `STANDARD_IA`,
    /// …); imports need `STANDARD`. Always set by `head`; empty in a listing whose store
    /// does not report classes there (S3/OBS through opendal).
    pub storage_class: String,
}

/// Object storage that image files are imported from and exported to. Names arrive
/// validated ([`ObjectRef`]); a missing bucket is `NotFound { kind:
/// "bucket" }` and a missing object `NotFound { kind: crate::Entity::Object }`.
#[async_trait]
pub trait BucketSource: Send + Sync {
    /// An object's size and storage class.
    async fn head(&self, object: &ObjectRef) -> Result<ObjectInfo>;
    /// Streams an object.
    async fn open(&self, object: &ObjectRef) -> Result<ByteStream>;
    /// Writes a new object, visible only on commit; an existing one is a `Conflict`.
    async fn create(&self, object: &ObjectRef) -> Result<Box<dyn BlobWriter>>;
    /// The objects of a bucket whose keys start with `prefix`, in key order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>>;
}

/// The catalog's record of bucket owners and shares (`ims bucket create --project`,
/// `share`, `unshare`, `[buckets.owners]`). Project ids are checked by the catalog: an
/// unknown one is `InvalidInput`.
#[async_trait]
pub trait BucketRepo: Send + Sync {
    /// Who may use `bucket`; `None` if the catalog does not know it.
    async fn bucket_grants(&self, bucket: &str) -> Result<Option<BucketGrants>>;
    /// Records a new bucket; `Conflict` if it is recorded already.
    async fn insert_bucket(&self, bucket: &str, owner: Option<&str>) -> Result<()>;
    /// Records each of `buckets` the catalog does not know yet as `owner`'s; returns
    /// those it recorded.
    async fn adopt_buckets(&self, buckets: &[String], owner: &str) -> Result<Vec<String>>;
    /// Sets a bucket's owner, recording the bucket if it is new.
    async fn set_bucket_owner(&self, bucket: &str, owner: Option<&str>) -> Result<()>;
    /// Shares a recorded bucket read-only with a project (idempotent); `NotFound` if the
    /// bucket is not recorded.
    async fn share_bucket(&self, bucket: &str, project_id: &str) -> Result<()>;
    /// Ends a share; `false` if there was none.
    async fn unshare_bucket(&self, bucket: &str, project_id: &str) -> Result<bool>;
    /// Every recorded bucket, by name.
    async fn list_buckets(&self) -> Result<Vec<BucketGrants>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_read_and_write_readers_read_and_nobody_else_uses_a_bucket() {
        let grants = BucketGrants {
            name: "bkt".into(),
            owner: Some("a".into()),
            readers: ["b".to_string()].into(),
        };
        let caller = |p: &str, admin| BucketCaller {
            project_id: p.into(),
            admin,
        };
        let g = Some(&grants);
        assert!(may_use(&caller("a", false), g, BucketUse::Read));
        assert!(may_use(&caller("a", false), g, BucketUse::Write));
        assert!(may_use(&caller("b", false), g, BucketUse::Read));
        assert!(!may_use(&caller("b", false), g, BucketUse::Write));
        assert!(!may_use(&caller("c", false), g, BucketUse::Read));
        assert!(may_use(&caller("c", true), g, BucketUse::Write));
        let unowned = BucketGrants {
            owner: None,
            ..grants.clone()
        };
        assert!(!may_use(
            &caller("b", false),
            Some(&unowned),
            BucketUse::Write
        ));
        assert!(!may_use(
            &caller("a", false),
            Some(&unowned),
            BucketUse::Read
        ));
        assert!(!may_use(&caller("a", false), None, BucketUse::Read));
        assert!(may_use(&caller("a", true), None, BucketUse::Write));
    }

    #[test]
    fn splits_on_the_first_colon() {
        let o = ObjectRef::parse("image-test:dir/centos:7.qcow2").unwrap();
        assert_eq!(
            (o.bucket.as_str(), o.key.as_str()),
            ("image-test", "dir/centos:7.qcow2")
        );
        assert_eq!(o.to_string(), "image-test:dir/centos:7.qcow2");
    }

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in [
            "b:../etc/passwd",
            "bkt:a/../../x",
            "bkt:/etc/passwd",
            "bkt:a\0b",
            "bkt:a\\..\\b",
            "bkt:a//b",
            "bkt:./a",
            "bkt:",
            "no-colon",
            "..:x",
            "Bucket:x",
            "ab:x",
            "-bkt:x",
            "b/kt:x",
        ] {
            assert!(ObjectRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ObjectRef::parse(&format!("bkt:{}", "a".repeat(1025))).is_err());
        assert!(ObjectRef::parse("my.bucket-1:a/b/c.qcow2").is_ok());
    }
}
