//! Sends each bucket to the store that holds it: named buckets to their store, every
//! other bucket to the default one.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ims_domain::bucket::ObjectRef;
use ims_domain::ports::{BlobWriter, BucketSource, ByteStream, ObjectInfo};
use ims_domain::{Error, Result};

/// A [`BucketSource`] that delegates by bucket name.
pub struct BucketRouter {
    default: Arc<dyn BucketSource>,
    routes: HashMap<String, Arc<dyn BucketSource>>,
}

impl std::fmt::Debug for BucketRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut routed: Vec<&String> = self.routes.keys().collect();
        routed.sort();
        f.debug_struct("BucketRouter")
            .field("routed", &routed)
            .finish_non_exhaustive()
    }
}

impl BucketRouter {
    /// A router sending every bucket to `default`.
    pub fn new(default: Arc<dyn BucketSource>) -> Self {
        BucketRouter {
            default,
            routes: HashMap::new(),
        }
    }

    /// Sends `bucket` to `store`; a bucket routed twice is an error.
    pub fn route(&mut self, bucket: &str, store: Arc<dyn BucketSource>) -> Result<()> {
        ims_domain::bucket::check_bucket(bucket)?;
        if self.routes.insert(bucket.to_string(), store).is_some() {
            return Err(Error::invalid(format!(
                "bucket {bucket:?} is assigned to more than one store"
            )));
        }
        Ok(())
    }

    fn store(&self, bucket: &str) -> &dyn BucketSource {
        self.routes.get(bucket).unwrap_or(&self.default).as_ref()
    }
}

#[async_trait]
impl BucketSource for BucketRouter {
    async fn head(&self, object: &ObjectRef) -> Result<ObjectInfo> {
        self.store(&object.bucket).head(object).await
    }

    async fn open(&self, object: &ObjectRef) -> Result<ByteStream> {
        self.store(&object.bucket).open(object).await
    }

    async fn create(&self, object: &ObjectRef) -> Result<Box<dyn BlobWriter>> {
        self.store(&object.bucket).create(object).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.store(bucket).list(bucket, prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FsBuckets;
    use bytes::Bytes;

    #[tokio::test]
    async fn each_bucket_goes_to_its_store_and_the_rest_to_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let local = FsBuckets::open(dir.path().join("local"), "n1").unwrap();
        let east = FsBuckets::open(dir.path().join("east"), "n1").unwrap();
        for b in [&local, &east] {
            b.create_bucket("shared-name").await.unwrap();
            b.create_bucket("routed").await.unwrap();
        }
        let mut router = BucketRouter::new(Arc::new(local));
        router.route("routed", Arc::new(east.clone())).unwrap();
        for target in ["routed:a.img", "shared-name:b.img"] {
            let mut w = router
                .create(&ObjectRef::parse(target).unwrap())
                .await
                .unwrap();
            w.write(Bytes::from_static(b"x")).await.unwrap();
            w.commit().await.unwrap();
        }
        assert!(dir.path().join("east/routed/a.img").is_file());
        assert!(!dir.path().join("local/routed/a.img").exists());
        assert!(dir.path().join("local/shared-name/b.img").is_file());
        assert_eq!(router.list("routed", "").await.unwrap().len(), 1);
        assert!(matches!(
            router.head(&ObjectRef::parse("nowhere:x").unwrap()).await,
            Err(Error::NotFound {
                kind: ims_domain::Entity::Bucket,
                ..
            })
        ));

        assert!(
            router.route("routed", Arc::new(east)).is_err(),
            "routed twice"
        );
    }
}
