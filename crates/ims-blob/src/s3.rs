//! Buckets in S3-compatible object storage or Huawei OBS, through opendal.
//!
//! One [`S3Buckets`] is one configured store (an endpoint and a key pair); it serves any
//! bucket there, with one opendal operator per bucket, built when first used.
//!
//! - **Reads** stream the body of one GET; memory stays constant.
//! - **Writes** are multipart uploads in [`PART_SIZE`] parts, [`WRITE_CONCURRENCY`] in
//!   flight (an object smaller than one part is one PUT); `commit` completes the upload,
//!   `abort` (or dropping the writer) aborts it, so nothing is visible before `commit`.
//! - **No overwrite.** `create` refuses an object that is already there. S3 then writes
//!   conditionally (`If-None-Match: *` on PutObject and CompleteMultipartUpload), so an
//!   object that appears while the data is streaming makes `commit` a `Conflict`. opendal
//!   offers no conditional write for OBS, so there the check before the upload is all
//!   there is: two writers racing for the same new key can both pass it, and the later
//!   commit wins.
//! - **Storage class.** opendal's metadata does not carry it, so `head` sends its own HEAD
//!   request, presigned by opendal (same signer and URL as every other request), and
//!   reads the class header: `x-amz-storage-class` for S3, `x-obs-storage-class` for OBS.
//!   Both services omit the header for Standard objects ([`storage_class`]).
//! - **Missing bucket or object.** A HEAD on a missing object is a bare 404, and OBS
//!   answers 404 for a missing bucket too, so on any "not found" the bucket is probed with
//!   a one-entry listing: `NotFound { kind: ims_domain::Entity::Bucket }` if it fails, `NotFound { kind:
//!   "object" }` if it works, as [`crate::FsBuckets`] reports them. A bucket the key pair
//!   may not read (403) is reported as a missing bucket ("not accessible").
//! - **Secrets** never reach `Debug` output or logs: [`Secret`] prints as `***`, and
//!   opendal's own builders and signers redact credentials too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use ims_domain::bucket::{ObjectRef, check_bucket};
use ims_domain::ports::{BlobWriter, BucketSource, ByteStream, ObjectInfo};
use ims_domain::{Error, Result};
use opendal::{ErrorKind, HttpTransporter, OperationContext, Operator};
use opendal_http_transport_reqwest::ReqwestTransport;

/// Size of one part of a multipart upload. S3 and OBS allow 10,000 parts, so an object
/// can be up to about 156 GiB (`max_import_file` and IMS's export limit are 128 GiB).
pub const PART_SIZE: usize = 16 << 20;
/// Parts uploaded at once by one writer. A writer holds up to `PART_SIZE * (this + 2)`
/// bytes: the parts in flight, one being filled, and one opendal holds back until it
/// knows the object needs more than one part.
pub const WRITE_CONCURRENCY: usize = 2;
/// Lifetime of the presigned HEAD request; it is sent right away.
const PRESIGN_TTL: Duration = Duration::from_secs(300);
/// Operators kept per store; bucket names come from requests, so the cache is bounded.
const MAX_CACHED_BUCKETS: usize = 256;

/// Which protocol a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Amazon S3 and compatible servers (path-style addressing, SigV4).
    S3,
    /// Huawei OBS, natively (virtual-host addressing, OBS signatures).
    Obs,
}

impl Flavor {
    /// The response header that carries an object's storage class.
    fn class_header(self) -> &'static str {
        match self {
            Flavor::S3 => "x-amz-storage-class",
            Flavor::Obs => "x-obs-storage-class",
        }
    }
}

/// A secret string: kept in memory, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (the signer).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where a store is and how to sign for it.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The configured store's name, for messages.
    pub name: String,
    /// S3 or OBS.
    pub flavor: Flavor,
    /// Base URL, e.g. `http://127.0.0.1:8014` or `https://obs.cn-north-4.myhuaweicloud.com`.
    pub endpoint: String,
    /// Signing region (S3; OBS takes it from the endpoint).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
}

/// Buckets of one S3-compatible or OBS store.
pub struct S3Buckets {
    settings: S3Settings,
    operators: Mutex<HashMap<String, Operator>>,
    http: reqwest::Client,
    /// opendal's requests go through this client: its default has no timeouts, so a
    /// stalled store would hold a job slot for ever.
    transport: reqwest::Client,
}

impl std::fmt::Debug for S3Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Buckets")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl S3Buckets {
    /// A store; nothing is contacted until the first request.
    pub fn new(settings: S3Settings) -> Result<Self> {
        // Without opendal's default features the HTTP transport must be installed.
        opendal::install_default();
        let url = url::Url::parse(&settings.endpoint)
            .map_err(|e| Error::invalid(format!("store {}: endpoint: {e}", settings.name)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::invalid(format!(
                "store {}: endpoint must be an http or https URL",
                settings.name
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(Error::internal)?;
        // No total timeout (objects may be large), but every read must progress.
        let transport = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(Error::internal)?;
        Ok(S3Buckets {
            settings,
            operators: Mutex::new(HashMap::new()),
            http,
            transport,
        })
    }

    /// The operator for one bucket.
    fn operator(&self, bucket: &str) -> Result<Operator> {
        check_bucket(bucket)?;
        let mut cached = self
            .operators
            .lock()
            .map_err(|_| Error::internal("operator cache poisoned"))?;
        if let Some(op) = cached.get(bucket) {
            return Ok(op.clone());
        }
        let s = &self.settings;
        let built = match s.flavor {
            Flavor::S3 => Operator::new(
                opendal::services::S3::default()
                    .bucket(bucket)
                    .endpoint(&s.endpoint)
                    .region(&s.region)
                    .access_key_id(&s.access_key_id)
                    .secret_access_key(s.secret_access_key.expose())
                    // Only the configured keys: no ~/.aws files, no instance metadata.
                    .disable_config_load()
                    .disable_ec2_metadata(),
            ),
            Flavor::Obs => Operator::new(
                opendal::services::Obs::default()
                    .bucket(bucket)
                    .endpoint(&s.endpoint)
                    .access_key_id(&s.access_key_id)
                    .secret_access_key(s.secret_access_key.expose()),
            ),
        };
        let op = built
            .map_err(|e| Error::internal(format!("store {}: {e}", s.name)))?
            .with_context(
                OperationContext::new().with_http_transport(HttpTransporter::new(
                    ReqwestTransport::new(self.transport.clone()),
                )),
            );
        if cached.len() >= MAX_CACHED_BUCKETS {
            cached.clear();
        }
        cached.insert(bucket.to_string(), op.clone());
        Ok(op)
    }

    /// Converts an opendal error that is not about existence.
    fn failure(&self, what: &str, e: &opendal::Error) -> Error {
        if e.is_temporary() || e.kind() == ErrorKind::RateLimited {
            tracing::warn!(store = %self.settings.name, error = %e, "{what}: object storage unavailable");
            Error::Unavailable(format!("object storage store {}", self.settings.name))
        } else {
            Error::internal(format!(
                "{what} in object storage store {}: {e}",
                self.settings.name
            ))
        }
    }

    /// What a "not found" (or "no such bucket", or "access denied") means: the bucket's
    /// absence, or, when the bucket is there, the object's.
    async fn not_found(&self, op: &Operator, bucket: &str, object: &ObjectRef) -> Error {
        match self.bucket_exists(op, bucket).await {
            Ok(()) => Error::NotFound {
                kind: ims_domain::Entity::Object,
                id: object.to_string(),
            },
            Err(e) => e,
        }
    }

    /// `Ok` if the bucket can be listed, else `NotFound { kind: ims_domain::Entity::Bucket }` (or the failure).
    async fn bucket_exists(&self, op: &Operator, bucket: &str) -> Result<()> {
        let first = match op.lister_with("/").limit(1).await {
            Ok(mut lister) => lister.next().await.transpose().map(|_| ()),
            Err(e) => Err(e),
        };
        match first {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Err(Error::NotFound {
                kind: ims_domain::Entity::Bucket,
                id: bucket.to_string(),
            }),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(inaccessible(bucket)),
            Err(e) => Err(self.failure("listing", &e)),
        }
    }

    /// Maps an opendal error from an operation on `object`.
    async fn object_error(&self, op: &Operator, object: &ObjectRef, e: opendal::Error) -> Error {
        if absent(&e) || e.kind() == ErrorKind::PermissionDenied {
            self.not_found(op, &object.bucket, object).await
        } else {
            self.failure(&format!("{object}"), &e)
        }
    }
}

/// Errors that mean "no such object" or "no such bucket" (opendal classifies S3's
/// `NoSuchBucket` as a configuration error).
fn absent(e: &opendal::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConfigInvalid)
}

fn inaccessible(bucket: &str) -> Error {
    Error::NotFound {
        kind: ims_domain::Entity::Bucket,
        id: format!("{bucket} (not accessible with the configured keys)"),
    }
}

/// The storage class a HEAD response reports, in the store's own words (upper-case).
/// S3 omits `x-amz-storage-class` for STANDARD objects and OBS omits
/// `x-obs-storage-class` for them, so no header means `STANDARD`. Other classes are
/// passed on unchanged (`STANDARD_IA`, `GLACIER`, `WARM`, `COLD`, …): imports accept
/// only `STANDARD`.
pub fn storage_class(flavor: Flavor, headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get(flavor.class_header())
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_uppercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "STANDARD".to_string())
}

#[async_trait]
impl BucketSource for S3Buckets {
    async fn head(&self, object: &ObjectRef) -> Result<ObjectInfo> {
        let op = self.operator(&object.bucket)?;
        let presigned = op
            .presign_stat(&object.key, PRESIGN_TTL)
            .await
            .map_err(|e| self.failure("presigning a HEAD", &e))?;
        let resp = self
            .http
            .request(presigned.method().clone(), presigned.uri().to_string())
            .headers(presigned.header().clone())
            .send()
            .await
            .map_err(|e| {
                // The URL is presigned: its query holds a signature and the key id.
                let e = e.without_url();
                tracing::warn!(store = %self.settings.name, error = %e, "HEAD {object} failed");
                Error::Unavailable(format!("object storage store {}", self.settings.name))
            })?;
        let status = resp.status();
        if status.is_success() {
            let size = resp
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| Error::internal(format!("HEAD {object}: no Content-Length")))?;
            return Ok(ObjectInfo {
                key: object.key.clone(),
                size,
                storage_class: storage_class(self.settings.flavor, resp.headers()),
            });
        }
        match status.as_u16() {
            403 | 404 => Err(self.not_found(&op, &object.bucket, object).await),
            429 | 500..=599 => {
                tracing::warn!(store = %self.settings.name, %status, "HEAD {object}");
                Err(Error::Unavailable(format!(
                    "object storage store {}",
                    self.settings.name
                )))
            }
            _ => Err(Error::internal(format!(
                "HEAD {object} in store {}: {status}",
                self.settings.name
            ))),
        }
    }

    async fn open(&self, object: &ObjectRef) -> Result<ByteStream> {
        let op = self.operator(&object.bucket)?;
        let opened = async {
            let mut stream = op.reader(&object.key).await?.into_bytes_stream(..).await?;
            // Sends the GET now, so a missing object fails here rather than mid-stream.
            match stream.metadata().await {
                Ok(_) => Ok(stream),
                Err(e) if e.kind() == ErrorKind::Unsupported => Ok(stream),
                Err(e) => Err(e),
            }
        }
        .await;
        match opened {
            Ok(stream) => Ok(Box::pin(stream)),
            Err(e) => Err(self.object_error(&op, object, e).await),
        }
    }

    async fn create(&self, object: &ObjectRef) -> Result<Box<dyn BlobWriter>> {
        // Fails early on a missing bucket or an existing object, before any data moves.
        match self.head(object).await {
            Ok(_) => return Err(Error::Conflict(format!("{object} already exists"))),
            Err(Error::NotFound {
                kind: ims_domain::Entity::Object,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        let op = self.operator(&object.bucket)?;
        let writer = op
            .writer_with(&object.key)
            .chunk(PART_SIZE)
            .concurrent(WRITE_CONCURRENCY)
            // OBS: not offered by opendal; see the module comment for the race that leaves.
            .if_not_exists(self.settings.flavor == Flavor::S3)
            .await;
        match writer {
            Ok(inner) => Ok(Box::new(S3Writer {
                inner: Some(inner),
                object: object.clone(),
                store: self.settings.name.clone(),
            })),
            Err(e) => Err(self.object_error(&op, object, e).await),
        }
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let op = self.operator(bucket)?;
        // opendal's listings carry no storage class, and a HEAD per object would make a
        // listing slow: the class is left empty here ("not reported"); `head` has it.
        let path = if prefix.is_empty() { "/" } else { prefix };
        let listed = async {
            let mut out = Vec::new();
            let mut lister = op.lister_with(path).recursive(true).await?;
            while let Some(entry) = lister.next().await {
                let entry = entry?;
                if entry.metadata().is_file() && entry.path().starts_with(prefix) {
                    out.push((entry.path().to_string(), entry.metadata().content_length()));
                }
            }
            Ok::<_, opendal::Error>(out)
        }
        .await;
        let entries = match listed {
            Ok(entries) => entries,
            Err(e) if absent(&e) || e.kind() == ErrorKind::PermissionDenied => {
                // A missing prefix in an existing bucket lists nothing.
                self.bucket_exists(&op, bucket).await?;
                Vec::new()
            }
            Err(e) => return Err(self.failure(&format!("listing {bucket}"), &e)),
        };
        let mut out = Vec::with_capacity(entries.len());
        for (key, size) in entries {
            out.push(ObjectInfo {
                key,
                size,
                storage_class: String::new(),
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// A multipart upload in progress.
struct S3Writer {
    inner: Option<opendal::Writer>,
    object: ObjectRef,
    store: String,
}

impl S3Writer {
    fn inner(&mut self) -> Result<&mut opendal::Writer> {
        self.inner
            .as_mut()
            .ok_or_else(|| Error::internal("write after finish"))
    }

    fn failure(&self, e: &opendal::Error) -> Error {
        match e.kind() {
            ErrorKind::ConditionNotMatch => {
                Error::Conflict(format!("{} already exists", self.object))
            }
            _ if e.is_temporary() || e.kind() == ErrorKind::RateLimited => {
                tracing::warn!(store = %self.store, error = %e, "writing {}", self.object);
                Error::Unavailable(format!("object storage store {}", self.store))
            }
            _ => Error::internal(format!(
                "writing {} in object storage store {}: {e}",
                self.object, self.store
            )),
        }
    }
}

#[async_trait]
impl BlobWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        match self.inner()?.write(chunk).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failure(&e)),
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let mut inner = self
            .inner
            .take()
            .ok_or_else(|| Error::internal("commit after finish"))?;
        match inner.close().await {
            Ok(_) => Ok(()),
            Err(e) => {
                // Best effort: leave no parts behind a failed completion.
                let _ = inner.abort().await;
                Err(self.failure(&e))
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(mut inner) = self.inner.take()
            && let Err(e) = inner.abort().await
        {
            tracing::warn!(store = %self.store, error = %e, "aborting the upload of {}", self.object);
        }
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // Neither committed nor aborted (a panic or a dropped future): abort the upload in
        // the background so its parts do not linger.
        if let Some(mut inner) = self.inner.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = inner.abort().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, reqwest::header::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn storage_class_comes_from_the_services_own_header_and_defaults_to_standard() {
        assert_eq!(storage_class(Flavor::S3, &headers(&[])), "STANDARD");
        assert_eq!(storage_class(Flavor::Obs, &headers(&[])), "STANDARD");
        assert_eq!(
            storage_class(
                Flavor::S3,
                &headers(&[("x-amz-storage-class", "STANDARD_IA")])
            ),
            "STANDARD_IA"
        );
        assert_eq!(
            storage_class(Flavor::S3, &headers(&[("x-amz-storage-class", "GLACIER")])),
            "GLACIER"
        );
        assert_eq!(
            storage_class(Flavor::Obs, &headers(&[("x-obs-storage-class", "WARM")])),
            "WARM"
        );
        assert_eq!(
            storage_class(Flavor::Obs, &headers(&[("x-obs-storage-class", "cold")])),
            "COLD"
        );
        assert_eq!(
            storage_class(Flavor::Obs, &headers(&[("x-obs-storage-class", "")])),
            "STANDARD"
        );
        // Each service is read through its own header only.
        assert_eq!(
            storage_class(Flavor::S3, &headers(&[("x-obs-storage-class", "COLD")])),
            "STANDARD"
        );
        assert_eq!(
            storage_class(Flavor::Obs, &headers(&[("x-amz-storage-class", "GLACIER")])),
            "STANDARD"
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let store = S3Buckets::new(S3Settings {
            name: "east".into(),
            flavor: Flavor::S3,
            endpoint: "http://127.0.0.1:1".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI-very-secret"),
        })
        .unwrap();
        let shown = format!("{store:?}");
        assert!(
            shown.contains("AKIDEXAMPLE") && shown.contains("east"),
            "{shown}"
        );
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        for bad in ["127.0.0.1:8014", "ftp://host", "not a url"] {
            let r = S3Buckets::new(S3Settings {
                name: "x".into(),
                flavor: Flavor::Obs,
                endpoint: bad.into(),
                region: String::new(),
                access_key_id: "a".into(),
                secret_access_key: Secret::new("b"),
            });
            assert!(r.is_err(), "{bad} accepted");
        }
    }
}
