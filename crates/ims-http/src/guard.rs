//! Transport limits every dialect shares: how large a buffered request body may be, how
//! many bytes all requests may buffer at once, and how long a body may take. (Which
//! signatures were already used is kept in the catalog: `IdentityService::first_signature_use`.)

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Method;
use http_body_util::BodyExt;
use ims_domain::{Error, Result};
use tokio::sync::Semaphore;

/// The configurable limits (see `[http]` in docs/CONFIG.md).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// The largest request body that is read into memory (JSON, or a signed body whose
    /// hash must be checked). Image data streams and is not bound by this.
    pub json_body_max: usize,
    /// The most bytes of request bodies buffered at once by signed requests that are not
    /// yet verified, across all connections.
    pub buffered_body_total: usize,
    /// The longest a buffered (non-data) body may take to arrive, counted from when the
    /// request came in: a client trickling a byte at a time cannot hold memory and a
    /// connection for long.
    pub body_timeout: Duration,
    /// Whether Glance's `PATCH /v2/images/{id}` may use `UNSIGNED-PAYLOAD`
    /// (huaweicloudsdkims signs its json-patch content type that way).
    pub unsigned_json_patch: bool,
    /// Whether signatures of state-changing requests are recorded (in the catalog, for
    /// every node) until their date leaves the window, and repeats refused.
    pub replay_check: bool,
    /// How long after its first use a signature is still accepted again. SDKs date
    /// signatures to the second, so a client sending the same request twice within one
    /// second sends the same signature; later repeats are replays.
    pub replay_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            json_body_max: 2 << 20,
            buffered_body_total: 64 << 20,
            body_timeout: Duration::from_secs(30),
            unsigned_json_patch: true,
            replay_check: true,
            replay_grace: Duration::from_secs(3),
        }
    }
}

/// The limits with their shared state; cheap to clone.
#[derive(Clone)]
pub struct Guard {
    /// The limits.
    pub limits: Arc<HttpLimits>,
    budget: Arc<Semaphore>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new(HttpLimits::default())
    }
}

/// Permits count KiB, so a semaphore of `u32` permits covers any budget.
const PERMIT_BYTES: usize = 1024;

fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(PERMIT_BYTES).max(1)).unwrap_or(u32::MAX)
}

impl Guard {
    /// Shared state for `limits`.
    pub fn new(limits: HttpLimits) -> Self {
        let budget = permits(limits.buffered_body_total.max(limits.json_body_max)) as usize;
        Guard {
            limits: Arc::new(limits),
            budget: Arc::new(Semaphore::new(budget)),
        }
    }

    /// Reads a body that must be held whole (to hash it) within the limits: a declared
    /// length over `json_body_max` is refused before any byte is read; room for it is
    /// reserved in the shared budget (503 when none frees up in time); the whole read,
    /// waiting included, must end within `body_timeout`.
    pub async fn buffer(&self, body: Body, declared: Option<u64>) -> Result<Bytes> {
        let max = self.limits.json_body_max;
        let too_large = || Error::TooLarge(format!("The request body may not exceed {max} bytes"));
        let expected = match declared {
            Some(n) if n > max as u64 => return Err(too_large()),
            Some(n) => n as usize,
            None => max,
        };
        let deadline = tokio::time::Instant::now() + self.limits.body_timeout;
        let _room = tokio::time::timeout_at(deadline, self.budget.acquire_many(permits(expected)))
            .await
            .map_err(|_| Error::Unavailable("too many request bodies are being received".into()))?
            .map_err(Error::internal)?;
        let read = async {
            let mut body = body;
            let mut buf = Vec::with_capacity(expected.min(64 << 10));
            while let Some(frame) = body.frame().await {
                let frame = frame
                    .map_err(|_| Error::invalid("The request body could not be read in time."))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Bytes::from(buf))
        };
        tokio::time::timeout_at(deadline, read).await.map_err(|_| {
            Error::invalid("The request body did not arrive in time; send it at once.")
        })?
    }
}

/// Whether a request carries image data (streamed, never buffered): Glance's
/// `PUT /v2/images/{id}/file` and `PUT /v2/images/{id}/stage`.
pub fn is_data_upload(method: &Method, path: &str) -> bool {
    if method != Method::PUT {
        return false;
    }
    let mut segments = path.trim_end_matches('/').split('/');
    matches!(
        (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next()
        ),
        (Some(""), Some("v2"), Some("images"), Some(id), Some("file" | "stage"), None) if !id.is_empty()
    )
}

/// Whether a method changes state (so a replayed request could do harm again).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Gives every body that is not image data a deadline of `body_timeout` from now (image
/// data has its own stall timeout in the data path).
pub async fn time_out_slow_bodies(
    axum::extract::State(guard): axum::extract::State<Guard>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if is_data_upload(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let limit = guard.limits.body_timeout;
    next.run(req.map(|b| Body::new(tower_http::timeout::DeadlineBody::new(limit, b))))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_routes_are_the_two_uploads() {
        assert!(is_data_upload(&Method::PUT, "/v2/images/abc/file"));
        assert!(is_data_upload(&Method::PUT, "/v2/images/abc/stage"));
        assert!(!is_data_upload(&Method::GET, "/v2/images/abc/file"));
        assert!(!is_data_upload(&Method::PATCH, "/v2/images/abc"));
        assert!(!is_data_upload(&Method::PUT, "/v2/images/abc/tags/file"));
        assert!(!is_data_upload(&Method::PUT, "/v2/images//file"));
    }

    #[tokio::test]
    async fn declared_lengths_over_the_limit_are_refused_unread() {
        let guard = Guard::new(HttpLimits {
            json_body_max: 10,
            ..HttpLimits::default()
        });
        assert!(matches!(
            guard.buffer(Body::from("x".repeat(100)), Some(100)).await,
            Err(Error::TooLarge(_))
        ));
        assert!(matches!(
            guard.buffer(Body::from("x".repeat(100)), None).await,
            Err(Error::TooLarge(_))
        ));
        assert_eq!(
            guard.buffer(Body::from("abc"), Some(3)).await.unwrap(),
            "abc"
        );
    }
}
