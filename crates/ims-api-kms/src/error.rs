//! KMS error bodies: `{"error":{"error_code":"KMS.xxxx","error_msg":…}}` with the codes
//! Huawei KMS documents; authentication failures come from the API gateway
//! (`APIGW.0301`), as for the other Huawei dialects.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ims_domain::Error;
use serde_json::json;

/// An error in KMS's shape.
#[derive(Debug)]
pub struct KmsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl KmsError {
    /// An error with an explicit code (400 unless the code says otherwise).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        KmsError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A 400 with `code`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `e`, where a state conflict is the operation's own code (`KMS.1201` for an enable
    /// of a key that is not disabled, and so on).
    pub fn state(e: Error, code: &'static str) -> Self {
        match e {
            Error::Conflict(m) => Self::bad(code, m),
            other => other.into(),
        }
    }
}

/// KMS's code for an invalid field.
fn field_code(field: &str) -> &'static str {
    match field {
        "key_id" => "KMS.0205",
        "key_alias" => "KMS.1101",
        "key_description" => "KMS.1103",
        "key_spec" => "KMS.1110",
        "pending_days" => "KMS.1401",
        "limit" => "KMS.1601",
        "marker" => "KMS.1602",
        "datakey_length" => "KMS.1901",
        "datakey_spec" => "KMS.1902",
        "plain_text" => "KMS.2101",
        "datakey_plain_length" => "KMS.2102",
        "datakey_dgst" => "KMS.2103",
        "datakey_length_mismatch" => "KMS.2104",
        "cipher_text" => "KMS.2201",
        "datakey_cipher_length" => "KMS.2202",
        _ => "KMS.0308",
    }
}

fn code_of(e: &Error) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        Error::Unauthenticated(_) => (S::UNAUTHORIZED, "APIGW.0301"),
        Error::Forbidden(_) => (S::FORBIDDEN, "KMS.0306"),
        Error::NotFound { .. } | Error::Gone(_) => (S::NOT_FOUND, "KMS.0207"),
        Error::InvalidField { field, .. } => (S::BAD_REQUEST, field_code(field)),
        Error::AlreadyExists { .. } => (S::BAD_REQUEST, "KMS.1104"),
        Error::QuotaExceeded(_) => (S::BAD_REQUEST, "KMS.1105"),
        Error::KeyUnusable { state, .. } if *state == "pending_deletion" => {
            (S::BAD_REQUEST, "KMS.0210")
        }
        Error::KeyUnusable { .. } => (S::BAD_REQUEST, "KMS.0209"),
        Error::Throttled(_) => (S::TOO_MANY_REQUESTS, "APIGW.0308"),
        Error::Unavailable(_) => (S::SERVICE_UNAVAILABLE, "KMS.0102"),
        Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, "KMS.0101"),
        _ => (S::BAD_REQUEST, "KMS.0308"),
    }
}

impl From<Error> for KmsError {
    fn from(e: Error) -> Self {
        let (status, code) = code_of(&e);
        let message = ims_http::caller_message(&e);
        KmsError::new(status, code, message)
    }
}

impl IntoResponse for KmsError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"error_code": self.code, "error_msg": self.message}})),
        )
            .into_response()
    }
}
