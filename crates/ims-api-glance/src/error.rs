//! Glance's error shape: `{"message","code","title"}`, one exhaustive status mapping.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ims_domain::Error;

/// A domain error rendered the Glance way.
#[derive(Debug)]
pub struct GlanceError {
    err: Error,
    headers: Vec<(&'static str, String)>,
}

impl GlanceError {
    /// Adds a response header (e.g. `Accept-Patch` on a 415).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl From<Error> for GlanceError {
    fn from(err: Error) -> Self {
        GlanceError {
            err,
            headers: Vec::new(),
        }
    }
}

/// Shorthand for handlers.
pub type GlanceResult<T> = Result<T, GlanceError>;

fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::InvalidInput(_) => StatusCode::BAD_REQUEST,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::QuotaExceeded(_) | Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        Error::Gone(_) => StatusCode::GONE,
        Error::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn message_of(e: &Error) -> String {
    match e {
        Error::Internal(detail) => {
            tracing::error!(error = %detail, "internal error");
            "The server has either erred or is incapable of performing the requested operation."
                .into()
        }
        Error::NotFound { kind: "image", id } => format!("No image found with ID {id}"),
        Error::NotFound { kind, id } => format!("No {kind} found with ID {id}"),
        other => other.to_string(),
    }
}

/// Renders any status with Glance's body shape.
pub fn glance_body(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = serde_json::json!({
        "message": message,
        "code": format!("{} {title}", status.as_u16()),
        "title": title,
    });
    (status, Json(body)).into_response()
}

impl IntoResponse for GlanceError {
    fn into_response(self) -> Response {
        let status = status_of(&self.err);
        let mut resp = glance_body(status, &message_of(&self.err));
        let h = resp.headers_mut();
        if let Error::RangeNotSatisfiable { size } = self.err {
            h.insert(
                "content-range",
                HeaderValue::from_str(&format!("bytes */{size}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            );
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}
