//! Workspace error bodies: `{"error_code":"WKS.xxxxxxxx","error_msg":…}` with the
//! documented codes; authentication failures come from the API gateway (`APIGW.0301`,
//! the same keys).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ims_domain::Error;
use serde_json::json;

/// The parameter is invalid.
pub const INVALID: &str = "WKS.00211102";
/// No such resource.
pub const NOT_FOUND: &str = "WKS.00211902";
/// The request conflicts with the resource's state.
pub const CONFLICT: &str = "WKS.00211103";
/// Not permitted.
pub const FORBIDDEN: &str = "WKS.00081102";
/// An internal error.
pub const INTERNAL: &str = "WKS.00211401";
/// Unavailable (a job that failed carries this code too).
pub const UNAVAILABLE: &str = "WKS.00050902";
/// A job failed.
pub const JOB_FAILED: &str = "WKS.00129901";

/// An error in Workspace's shape.
#[derive(Debug)]
pub struct WksError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl WksError {
    /// An error with an explicit code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        WksError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `WKS.00211102`: the request is malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, INVALID, message)
    }
}

fn code_of(e: &Error) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        Error::Unauthenticated(_) => (S::UNAUTHORIZED, "APIGW.0301"),
        Error::Forbidden(_) => (S::FORBIDDEN, FORBIDDEN),
        Error::NotFound { .. } | Error::Gone(_) => (S::NOT_FOUND, NOT_FOUND),
        Error::Conflict(_) | Error::AlreadyExists { .. } => (S::CONFLICT, CONFLICT),
        Error::Throttled(_) => (S::TOO_MANY_REQUESTS, "APIGW.0308"),
        Error::Unavailable(_) => (S::SERVICE_UNAVAILABLE, UNAVAILABLE),
        Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, INTERNAL),
        _ => (S::BAD_REQUEST, INVALID),
    }
}

impl From<Error> for WksError {
    fn from(e: Error) -> Self {
        let (status, code) = code_of(&e);
        let message = ims_http::caller_message(&e);
        WksError::new(status, code, message)
    }
}

impl IntoResponse for WksError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error_code": self.code, "error_msg": self.message})),
        )
            .into_response()
    }
}
