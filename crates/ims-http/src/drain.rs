//! Refused requests still have their bodies read, within bounds.
//!
//! A request refused before its body is read (too large, over quota, unauthorised)
//! would otherwise be answered and its connection closed while the client is still
//! sending: the client then sees a broken pipe or a reset instead of the error
//! (Python's `requests`, which the Huawei SDKs and glanceclient use, reports the write
//! error, not the response). So the body a handler left unread is read and discarded
//! while the answer goes out, up to [`DRAIN_MAX`] bytes and for at most the body
//! timeout. Discarding costs no memory; bodies past the bound are not read, and their
//! clients may still see the connection close. A client that sent
//! `Expect: 100-continue` has not sent its body and is answered at once.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::oneshot;

use crate::guard::Guard;

/// The most bytes of a refused body that are read to let its client see the answer.
pub const DRAIN_MAX: u64 = 64 << 20;

/// Middleware: hands the request a body that gives itself back when the handler drops
/// it unread, then reads that remainder (within bounds) while the answer goes out.
pub async fn drain_unread_bodies(
    axum::extract::State(guard): axum::extract::State<Guard>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !worth_draining(req.headers()) {
        return next.run(req).await;
    }
    let (back, mut unread) = oneshot::channel();
    let req = req.map(|inner| {
        Body::new(Returning {
            inner: Some(inner),
            back: Some(back),
        })
    });
    let response = next.run(req).await;
    // The handler has returned, so a body it dropped unread is already back; one it
    // handed to a task that still runs is not waited for. The remainder is read in the
    // background while the answer goes out: the connection stays open until the body
    // ends (or the bound is reached), so the client reads the answer first.
    if let Ok(rest) = unread.try_recv() {
        let limit = guard.limits.body_timeout;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(limit, discard(rest, DRAIN_MAX)).await;
        });
    }
    response
}

/// Bodies worth reading after a refusal: not announced past [`DRAIN_MAX`], and not
/// held back by the client until it sees `100 Continue`.
fn worth_draining(headers: &HeaderMap) -> bool {
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    !expects_continue && declared.is_none_or(|n| n > 0 && n <= DRAIN_MAX)
}

/// Reads and drops up to `max` bytes of `body`.
async fn discard(mut body: Body, max: u64) {
    let mut seen = 0u64;
    while seen <= max {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

/// A request body that sends what is left of itself back when dropped unfinished.
struct Returning {
    inner: Option<Body>,
    back: Option<oneshot::Sender<Body>>,
}

impl http_body::Body for Returning {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            // Finished or broken: nothing left to give back.
            self.inner = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        if let (Some(inner), Some(back)) = (self.inner.take(), self.back.take())
            && !inner.is_end_stream()
        {
            let _ = back.send(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn bounded_bodies_without_expect_are_drained() {
        assert!(worth_draining(&headers(&[(
            header::CONTENT_LENGTH,
            "11000000"
        )])));
        assert!(worth_draining(&headers(&[(
            header::TRANSFER_ENCODING,
            "chunked"
        )])));
        assert!(!worth_draining(&headers(&[(header::CONTENT_LENGTH, "0")])));
        let past = (DRAIN_MAX + 1).to_string();
        assert!(!worth_draining(&headers(&[(
            header::CONTENT_LENGTH,
            &past
        )])));
        assert!(!worth_draining(&headers(&[
            (header::CONTENT_LENGTH, "10"),
            (header::EXPECT, "100-Continue")
        ])));
    }

    #[tokio::test]
    async fn an_unread_body_comes_back_and_a_read_one_does_not() {
        let (back, unread) = oneshot::channel();
        let body = Returning {
            inner: Some(Body::from("abc")),
            back: Some(back),
        };
        drop(body);
        let rest = unread.await.expect("the unread body comes back");
        assert_eq!(rest.collect().await.unwrap().to_bytes(), "abc");

        let (back, unread) = oneshot::channel();
        let body = Body::new(Returning {
            inner: Some(Body::from("abc")),
            back: Some(back),
        });
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abc");
        assert!(unread.await.is_err());
    }
}
