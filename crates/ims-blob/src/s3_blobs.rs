//! Image blobs in one bucket of an S3-compatible object store (Ceph RGW, MinIO, OBS's S3
//! API, AWS), under a prefix: the distributed mode's [`BlobStore`].
//!
//! Requests are presigned with `rusty-s3` (SigV4, sans-IO) and sent with reqwest, so every
//! step of a multipart upload is ims's own to time out, retry and journal:
//! - **Timeouts and retries.** Every request has a connect and a read timeout, and is
//!   retried with exponential backoff ([`ATTEMPTS`] in all) when the store cannot be
//!   reached, times out, or answers 429 or 5xx. What still fails is `Unavailable` (a 503
//!   to the caller; jobs retry it).
//! - **Writes in constant memory.** A blob smaller than one part is one PUT at `commit`;
//!   a larger one is a multipart upload of `part_size` parts, at most `concurrency` of
//!   them in flight, so a writer holds at most `part_size × (concurrency + 1)` bytes and
//!   no temporary file. Nothing is visible under the key until `commit` completes it.
//! - **No upload outlives a crash unnoticed.** Each multipart upload is recorded by a
//!   small journal object, `<prefix>.uploads/<node>/<uuid>` (the object key and upload
//!   id), written when the upload starts and removed when it completes or is aborted.
//!   Every failure path aborts the upload; a writer dropped unfinished aborts it in the
//!   background; and [`BlobStore::recover`] aborts what a killed process of this node left
//!   (S3's ListMultipartUploads is not needed, and not every server offers it).
//! - **Reads** are one GET (ranged when asked) streamed as it arrives; a body cut off
//!   mid-stream is resumed with a ranged GET from the first byte not yet delivered, so a
//!   download survives a store that drops a connection.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use ims_domain::ports::{BlobStore, BlobWriter, ByteRange, ByteStream, StoredBlob};
use ims_domain::{Entity, Error, Result};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::fs::check_key;
use crate::s3::Secret;

/// Attempts of one request before it counts as failed.
pub const ATTEMPTS: u32 = 4;
/// The first wait between attempts; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// How long a presigned URL stays valid: it is used at once, but a part may wait for a
/// slot and a retry may come later.
const URL_TTL: Duration = Duration::from_secs(3600);
/// How long a health check waits for the store.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// Where the journal of open multipart uploads lives, under the prefix.
const UPLOADS: &str = ".uploads/";

/// Where the blobs are and how to sign for them.
#[derive(Debug, Clone)]
pub struct S3BlobSettings {
    /// The store's name, for messages.
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// Signing region.
    pub region: String,
    /// The bucket holding the blobs (it must exist).
    pub bucket: String,
    /// Prepended to every blob key (e.g. `images/`); may be empty.
    pub prefix: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// This node's id: the journal of its uploads is its own.
    pub node: String,
    /// Bytes per part of a multipart upload (S3's minimum is 5 MiB).
    pub part_size: usize,
    /// Parts of one upload in flight at once.
    pub concurrency: usize,
}

/// Blobs in an S3-compatible bucket.
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    node: String,
    part_size: usize,
    concurrency: usize,
    http: reqwest::Client,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("name", &self.inner.name)
            .field("bucket", &self.inner.bucket.name())
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// A journal entry: an open multipart upload of this node.
#[derive(Serialize, Deserialize)]
struct Journal {
    key: String,
    upload_id: String,
}

/// Whether a failed attempt is worth another.
fn transient(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

impl S3BlobStore {
    /// A store; nothing is contacted until the first request.
    pub fn new(settings: S3BlobSettings) -> Result<Self> {
        let invalid = |what: String| Error::invalid(format!("store {}: {what}", settings.name));
        let endpoint =
            url::Url::parse(&settings.endpoint).map_err(|e| invalid(format!("endpoint: {e}")))?;
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            settings.bucket.clone(),
            settings.region.clone(),
        )
        .map_err(|e| invalid(format!("bucket: {e}")))?;
        if settings.part_size < 5 << 20 {
            return Err(invalid("part_size must be at least 5 MiB".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(Error::internal)?;
        Ok(S3BlobStore {
            inner: Arc::new(Inner {
                name: settings.name,
                bucket,
                credentials: Credentials::new(
                    settings.access_key_id,
                    settings.secret_access_key.expose().to_string(),
                ),
                prefix: settings.prefix,
                node: settings.node,
                part_size: settings.part_size,
                concurrency: settings.concurrency.max(1),
                http,
            }),
        })
    }

    fn object(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(format!("{}{key}", self.inner.prefix))
    }

    /// This node's journal directory.
    fn journal_prefix(&self) -> String {
        format!("{}{UPLOADS}{}/", self.inner.prefix, self.inner.node)
    }
}

impl Inner {
    fn unavailable(&self, what: &str, detail: impl std::fmt::Display) -> Error {
        tracing::warn!(store = %self.name, error = %detail, "{what}");
        Error::Unavailable(format!("object storage store {}", self.name))
    }

    /// Sends the request `build` makes (once per attempt: each is signed afresh), retrying
    /// what may succeed later. Returns the last response, whatever its status.
    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let mut wait = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            match build().send().await {
                Ok(resp) if !transient(resp.status()) || last => return Ok(resp),
                Ok(resp) => {
                    tracing::debug!(store = %self.name, status = %resp.status(), attempt, "{what}: retrying");
                }
                Err(e) if last => return Err(self.unavailable(what, e.without_url())),
                Err(e) => {
                    tracing::debug!(store = %self.name, error = %e.without_url(), attempt, "{what}: retrying");
                }
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        Err(Error::internal("no attempt was made"))
    }

    /// Sends and requires a success; the body of a failure goes into the error.
    async fn expect_ok(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let resp = self.send(what, build).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(512).collect();
        if transient(status) {
            Err(self.unavailable(what, format!("{status}: {body}")))
        } else {
            Err(Error::internal(format!(
                "{what} in object storage store {}: {status}: {body}",
                self.name
            )))
        }
    }

    fn put(&self, object: &str, body: Bytes) -> impl Fn() -> reqwest::RequestBuilder + '_ {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), object)
            .sign(URL_TTL);
        move || self.http.put(url.clone()).body(body.clone())
    }

    async fn delete(&self, object: &str) -> Result<()> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), object)
            .sign(URL_TTL);
        self.send_delete(&format!("deleting {object}"), url).await
    }

    async fn abort_upload(&self, object: &str, upload_id: &str) -> Result<()> {
        let url = self
            .bucket
            .abort_multipart_upload(Some(&self.credentials), object, upload_id)
            .sign(URL_TTL);
        self.send_delete(&format!("aborting the upload of {object}"), url)
            .await
    }

    /// A DELETE of `url`; what is already gone (404) counts as done.
    async fn send_delete(&self, what: &str, url: url::Url) -> Result<()> {
        let resp = self.send(what, || self.http.delete(url.clone())).await?;
        match resp.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(Error::internal(format!(
                "{what} in object storage store {}: {status}",
                self.name
            ))),
        }
    }

    /// Every object under `prefix` and when it was written, with the listing's
    /// continuation followed.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, time::OffsetDateTime)>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
            action.with_prefix(prefix);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(URL_TTL);
            let body = self
                .expect_ok("listing blobs", || self.http.get(url.clone()))
                .await?
                .text()
                .await
                .map_err(|e| self.unavailable("listing blobs", e))?;
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&body)
                .map_err(|e| Error::internal(format!("an unreadable listing: {e}")))?;
            for c in page.contents {
                let written = c
                    .last_modified
                    .as_deref()
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .ok_or_else(|| {
                        Error::internal(format!("a listing without the time {} was written", c.key))
                    })?;
                keys.push((c.key, written));
            }
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// A GET of `object` from byte `from` to `end` (inclusive; the whole rest if `None`).
    async fn get(&self, object: &str, from: u64, end: Option<u64>) -> Result<reqwest::Response> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), object)
            .sign(URL_TTL);
        let range = match (from, end) {
            (0, None) => None,
            (from, None) => Some(format!("bytes={from}-")),
            (from, Some(end)) => Some(format!("bytes={from}-{end}")),
        };
        let resp = self
            .send("reading a blob", || {
                let req = self.http.get(url.clone());
                match &range {
                    Some(r) => req.header(reqwest::header::RANGE, r),
                    None => req,
                }
            })
            .await?;
        match resp.status().as_u16() {
            // A store that ignored the Range would hand back the wrong bytes.
            200 if range.is_some() => Err(Error::internal(format!(
                "object storage store {} ignored a Range request",
                self.name
            ))),
            200..=299 => Ok(resp),
            404 => Err(Error::NotFound {
                kind: Entity::ImageData,
                id: object.to_string(),
            }),
            status if transient(resp.status()) => Err(self.unavailable("reading a blob", status)),
            status => Err(Error::internal(format!(
                "reading {object} in object storage store {}: {status}",
                self.name
            ))),
        }
    }
}

/// A download that resumes: a body cut off mid-stream is fetched again from the first
/// byte not yet delivered, up to [`ATTEMPTS`] times in all.
fn resuming_body(
    inner: Arc<Inner>,
    object: String,
    first: reqwest::Response,
    start: u64,
    end: Option<u64>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    struct State {
        inner: Arc<Inner>,
        object: String,
        body: Option<futures::stream::BoxStream<'static, reqwest::Result<Bytes>>>,
        next: u64,
        end: Option<u64>,
        resumes: u32,
    }
    let state = State {
        inner,
        object,
        body: Some(first.bytes_stream().boxed()),
        next: start,
        end,
        resumes: 0,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            let body = s.body.as_mut()?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    s.next += chunk.len() as u64;
                    return Some((Ok(chunk), s));
                }
                None => return None,
                Some(Err(e)) if s.resumes + 1 >= ATTEMPTS => {
                    s.body = None;
                    let e = std::io::Error::other(format!("reading a blob: {}", e.without_url()));
                    return Some((Err(e), s));
                }
                Some(Err(e)) => {
                    s.resumes += 1;
                    tracing::debug!(store = %s.inner.name, error = %e.without_url(), at = s.next, "resuming a download");
                    match s.inner.get(&s.object, s.next, s.end).await {
                        Ok(resp) => s.body = Some(resp.bytes_stream().boxed()),
                        Err(e) => {
                            s.body = None;
                            return Some((Err(std::io::Error::other(e.to_string())), s));
                        }
                    }
                }
            }
        }
    })
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn check(&self) -> Result<()> {
        let inner = &self.inner;
        let mut action = inner.bucket.list_objects_v2(Some(&inner.credentials));
        action.with_prefix(inner.prefix.clone());
        action.with_max_keys(1);
        let url = action.sign(URL_TTL);
        let resp = inner
            .http
            .get(url)
            .timeout(CHECK_TIMEOUT)
            .send()
            .await
            .map_err(|e| inner.unavailable("checking the store", e.without_url()))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(inner.unavailable("checking the store", s)),
        }
    }

    async fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>> {
        let object = self.object(key)?;
        Ok(Box::new(S3BlobWriter {
            inner: Arc::clone(&self.inner),
            journal_prefix: self.journal_prefix(),
            object,
            buf: BytesMut::with_capacity(self.inner.part_size),
            upload: None,
            in_flight: JoinSet::new(),
            etags: Vec::new(),
            next_part: 1,
        }))
    }

    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let object = self.object(key)?;
        let (start, end) = match range {
            Some(r) => (r.start, Some(r.end)),
            None => (0, None),
        };
        let first = self.inner.get(&object, start, end).await?;
        Ok(Box::pin(resuming_body(
            Arc::clone(&self.inner),
            object,
            first,
            start,
            end,
        )))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(&self.object(key)?).await
    }

    async fn keys(&self) -> Result<Vec<StoredBlob>> {
        let prefix = &self.inner.prefix;
        let journal = format!("{prefix}{UPLOADS}");
        Ok(self
            .inner
            .list(prefix)
            .await?
            .into_iter()
            .filter(|(k, _)| !k.starts_with(&journal))
            .filter_map(|(k, written)| {
                let key = k.strip_prefix(prefix.as_str())?.to_string();
                check_key(&key)
                    .is_ok()
                    .then_some(StoredBlob { key, written })
            })
            .collect())
    }

    async fn recover(&self) -> Result<u64> {
        self.abort_journaled(&self.journal_prefix(), None).await
    }

    async fn abort_stale_writes(&self, before: time::OffsetDateTime) -> Result<u64> {
        let every_node = format!("{}{UPLOADS}", self.inner.prefix);
        self.abort_journaled(&every_node, Some(before)).await
    }
}

impl S3BlobStore {
    /// Aborts the multipart uploads journaled under `prefix` (those journaled before
    /// `before`, if given) and removes their journal entries.
    async fn abort_journaled(
        &self,
        prefix: &str,
        before: Option<time::OffsetDateTime>,
    ) -> Result<u64> {
        let mut aborted = 0;
        for (entry, written) in self.inner.list(prefix).await? {
            if before.is_some_and(|b| written >= b) {
                continue;
            }
            let url = self
                .inner
                .bucket
                .get_object(Some(&self.inner.credentials), &entry)
                .sign(URL_TTL);
            let resp = self
                .inner
                .send("reading the upload journal", || {
                    self.inner.http.get(url.clone())
                })
                .await?;
            if resp.status().is_success() {
                let body = resp.bytes().await.unwrap_or_default();
                if let Ok(j) = serde_json::from_slice::<Journal>(&body) {
                    self.inner.abort_upload(&j.key, &j.upload_id).await?;
                    aborted += 1;
                }
            }
            self.inner.delete(&entry).await?;
        }
        Ok(aborted)
    }
}

/// An open multipart upload and its journal entry.
struct Upload {
    id: String,
    journal: String,
}

/// A blob being written.
struct S3BlobWriter {
    inner: Arc<Inner>,
    journal_prefix: String,
    object: String,
    /// The part being filled.
    buf: BytesMut,
    upload: Option<Upload>,
    /// Parts being sent: each yields its number and ETag.
    in_flight: JoinSet<Result<(u16, String)>>,
    etags: Vec<(u16, String)>,
    next_part: u16,
}

impl S3BlobWriter {
    /// Starts the multipart upload and journals it.
    async fn start(&mut self) -> Result<()> {
        let url = self
            .inner
            .bucket
            .create_multipart_upload(Some(&self.inner.credentials), &self.object)
            .sign(URL_TTL);
        let body = self
            .inner
            .expect_ok("starting an upload", || self.inner.http.post(url.clone()))
            .await?
            .text()
            .await
            .map_err(|e| self.inner.unavailable("starting an upload", e))?;
        let id = rusty_s3::actions::CreateMultipartUpload::parse_response(&body)
            .map_err(|e| Error::internal(format!("an unreadable upload id: {e}")))?
            .upload_id()
            .to_string();
        let journal = format!("{}{}", self.journal_prefix, uuid::Uuid::new_v4().simple());
        let entry = serde_json::to_vec(&Journal {
            key: self.object.clone(),
            upload_id: id.clone(),
        })
        .map_err(Error::internal)?;
        let journaled = self
            .inner
            .expect_ok(
                "journaling an upload",
                self.inner.put(&journal, Bytes::from(entry)),
            )
            .await;
        if let Err(e) = journaled {
            let _ = self.inner.abort_upload(&self.object, &id).await;
            return Err(e);
        }
        self.upload = Some(Upload { id, journal });
        Ok(())
    }

    /// Waits for one part in flight.
    async fn settle_one(&mut self) -> Result<()> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(done))) => {
                self.etags.push(done);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(Error::internal(format!("a part upload panicked: {e}"))),
            None => Ok(()),
        }
    }

    /// Sends `part` once a slot is free.
    async fn send_part(&mut self, part: Bytes) -> Result<()> {
        if self.upload.is_none() {
            self.start().await?;
        }
        while self.in_flight.len() >= self.inner.concurrency {
            self.settle_one().await?;
        }
        let number = self.next_part;
        self.next_part = self
            .next_part
            .checked_add(1)
            .ok_or_else(|| Error::TooLarge("The image is too large for the store.".into()))?;
        let upload_id = self
            .upload
            .as_ref()
            .map(|u| u.id.clone())
            .unwrap_or_default();
        let (inner, object) = (Arc::clone(&self.inner), self.object.clone());
        self.in_flight.spawn(async move {
            let url = inner
                .bucket
                .upload_part(Some(&inner.credentials), &object, number, &upload_id)
                .sign(URL_TTL);
            let resp = inner
                .expect_ok("uploading a part", || {
                    inner.http.put(url.clone()).body(part.clone())
                })
                .await?;
            let etag = resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Error::internal("a part upload without an ETag"))?
                .to_string();
            Ok((number, etag))
        });
        Ok(())
    }

    /// Completes the multipart upload with every part.
    async fn complete(&mut self, upload: &Upload) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        self.etags.sort_by_key(|(n, _)| *n);
        let etags: Vec<&str> = self.etags.iter().map(|(_, e)| e.as_str()).collect();
        let action = self.inner.bucket.complete_multipart_upload(
            Some(&self.inner.credentials),
            &self.object,
            &upload.id,
            etags.iter().copied(),
        );
        let url = action.sign(URL_TTL);
        let body = action.body();
        let started = std::time::Instant::now();
        let resp = self
            .inner
            .expect_ok("completing an upload", || {
                self.inner.http.post(url.clone()).body(body.clone())
            })
            .await?;
        // S3 may answer 200 and still report an error in the body.
        let text = resp.text().await.unwrap_or_default();
        if text.contains("<Error>") {
            return Err(self.inner.unavailable("completing an upload", text));
        }
        // Some stores copy every part here (s3s-fs does): bench/scale reads this line.
        tracing::debug!(
            store = %self.inner.name,
            parts = etags.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "completed a multipart upload"
        );
        Ok(())
    }

    /// Aborts the upload (if one started) and removes its journal entry.
    async fn discard(&mut self) {
        self.in_flight.abort_all();
        if let Some(upload) = self.upload.take() {
            if let Err(e) = self.inner.abort_upload(&self.object, &upload.id).await {
                tracing::warn!(store = %self.inner.name, error = %e, "aborting an upload; the next recovery retries");
                return;
            }
            let _ = self.inner.delete(&upload.journal).await;
        }
    }
}

#[async_trait]
impl BlobWriter for S3BlobWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.buf.extend_from_slice(&chunk);
        while self.buf.len() >= self.inner.part_size {
            let part = self.buf.split_to(self.inner.part_size).freeze();
            // The next part gets its whole size at once, not by doubling (and copying).
            self.buf.reserve(self.inner.part_size);
            if let Err(e) = self.send_part(part).await {
                self.discard().await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        if self.upload.is_none() && self.in_flight.is_empty() {
            // Smaller than one part: one PUT.
            let body = std::mem::take(&mut self.buf).freeze();
            let inner = Arc::clone(&self.inner);
            return inner
                .expect_ok("writing a blob", inner.put(&self.object, body))
                .await
                .map(|_| ());
        }
        let last = std::mem::take(&mut self.buf).freeze();
        let mut done = Ok(());
        if !last.is_empty() {
            done = self.send_part(last).await;
        }
        if done.is_ok()
            && let Some(upload) = self.upload.take()
        {
            done = self.complete(&upload).await;
            if done.is_ok() {
                let _ = self.inner.delete(&upload.journal).await;
                return Ok(());
            }
            self.upload = Some(upload);
        }
        self.discard().await;
        done
    }

    async fn abort(mut self: Box<Self>) {
        self.discard().await;
    }
}

impl Drop for S3BlobWriter {
    fn drop(&mut self) {
        // Neither committed nor aborted (a dropped future): abort in the background.
        self.in_flight.abort_all();
        if let Some(upload) = self.upload.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (inner, object) = (Arc::clone(&self.inner), self.object.clone());
            rt.spawn(async move {
                if inner.abort_upload(&object, &upload.id).await.is_ok() {
                    let _ = inner.delete(&upload.journal).await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_prefixed() {
        let store = S3BlobStore::new(S3BlobSettings {
            name: "s3".into(),
            endpoint: "http://127.0.0.1:1".into(),
            region: "us-east-1".into(),
            bucket: "images".into(),
            prefix: "ims/".into(),
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("very-secret"),
            node: "node-1".into(),
            part_size: 8 << 20,
            concurrency: 2,
        })
        .unwrap();
        assert_eq!(store.object("abc-1.x").unwrap(), "ims/abc-1.x");
        for bad in ["", ".uploads", "a/b", "../x", "a b"] {
            assert!(store.object(bad).is_err(), "{bad:?}");
        }
        assert_eq!(store.journal_prefix(), "ims/.uploads/node-1/");
        assert!(!format!("{store:?}").contains("very-secret"));
    }
}
