//! ZStack's error shapes: API failures are 503 with `{"error": ErrorCode}`; problems the
//! REST layer itself refuses (headers, query syntax, unknown routes) are plain text with
//! 400/404/405.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ims_domain::{Entity, Error};
use serde_json::{Value, json};

/// An error the ZStack way.
#[derive(Debug, Clone, PartialEq)]
pub enum ZsError {
    /// An API failure: 503 with an ErrorCode.
    Api {
        /// `SYS.1003`, `ID.1001`, …
        code: &'static str,
        /// The formatted message.
        details: String,
    },
    /// A REST-layer refusal: plain text.
    Rest {
        /// 400, 404 or 405.
        status: StatusCode,
        /// The text.
        text: String,
    },
}

/// Shorthand for handlers and operations.
pub type ZsResult<T> = Result<T, ZsError>;

/// The fixed description of each code ZStack's `conf/errorCodes` gives.
pub fn description(code: &str) -> &'static str {
    match code {
        "SYS.1000" => "An internal error happened in system",
        "SYS.1001" => "A message or a operation timeout",
        "SYS.1002" => "Unable to create a resource",
        "SYS.1003" => "A resource can not be found",
        "SYS.1006" => "An operation failed",
        "SYS.1007" => "One or more API argument is invalid",
        "SYS.1008" => "Unknown message, no service can deal with the message",
        "SYS.1014" => "The operation is not implemented or not supported yet",
        "ID.1000" => "Unable to authenticate a user",
        "ID.1001" => {
            "The session is invalid, either wrong session id or the session has been expired"
        }
        "ID.1002" => "The user doesn't have permission to perform the operation",
        "ID.1003" => "The user exceeds a quota of a resource",
        "ID.1006" => "Max number of active sessions exceeded",
        _ => "An operation failed",
    }
}

impl ZsError {
    /// An API error with `code`.
    pub fn api(code: &'static str, details: impl Into<String>) -> Self {
        ZsError::Api {
            code,
            details: details.into(),
        }
    }

    /// `SYS.1007`: a bad argument.
    pub fn invalid(details: impl Into<String>) -> Self {
        Self::api("SYS.1007", details)
    }

    /// A plain-text 400 from the REST layer.
    pub fn bad_request(text: impl Into<String>) -> Self {
        ZsError::Rest {
            status: StatusCode::BAD_REQUEST,
            text: text.into(),
        }
    }

    /// The `ErrorCode` object (for bodies, stored results and RPC replies); `None` for
    /// REST-layer errors.
    pub fn error_code(&self) -> Value {
        match self {
            ZsError::Api { code, details } => json!({
                "code": code,
                "description": description(code),
                "details": truncate(details),
            }),
            ZsError::Rest { text, .. } => json!({
                "code": "SYS.1007",
                "description": description("SYS.1007"),
                "details": text,
            }),
        }
    }
}

/// ZStack caps `details` at 4096 characters.
fn truncate(details: &str) -> String {
    details.chars().take(4096).collect()
}

/// ZStack's resource class names, used in "not found" details.
fn resource_type(kind: Entity) -> &'static str {
    match kind {
        Entity::Image | Entity::ImageData => "ImageVO",
        Entity::Store => "ImageBackupStorageRefVO",
        Entity::Volume => "VolumeVO",
        Entity::Server => "VmInstanceVO",
        Entity::Key => "KmsKeyVO",
        Entity::Job | Entity::Task => "LongJobVO",
        Entity::Project => "AccountVO",
        Entity::User => "UserVO",
        Entity::Role => "RoleVO",
        Entity::RoleAssignment => "RoleAccountRefVO",
        Entity::Token => "SessionVO",
        Entity::Credential => "AccessKeyVO",
        Entity::Tag => "UserTagVO",
        Entity::Member => "SharedResourceVO",
        Entity::ImportMethod
        | Entity::Schema
        | Entity::Bucket
        | Entity::Object
        | Entity::MetadefNamespace
        | Entity::MetadefObject
        | Entity::MetadefProperty
        | Entity::MetadefTag
        | Entity::MetadefResourceType
        | Entity::MetadefAssociation
        | Entity::MetadefMarker => "ResourceVO",
    }
}

impl From<Error> for ZsError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound { kind, id } => ZsError::api(
                "SYS.1003",
                format!(
                    "invalid field[uuid], resource[uuid:{}, type:{}] not found",
                    crate::wire::zs_uuid(&id),
                    resource_type(kind)
                ),
            ),
            Error::InvalidInput(m) | Error::TooLarge(m) | Error::UnsupportedMedia(m) => {
                ZsError::invalid(m)
            }
            Error::InvalidField { field, message } => {
                ZsError::invalid(format!("field[{field}]: {message}"))
            }
            Error::RangeNotSatisfiable { .. } => ZsError::invalid(e.to_string()),
            Error::AlreadyExists { id, .. } => ZsError::invalid(format!(
                "resourceUuid[{}] is already in use",
                crate::wire::zs_uuid(&id)
            )),
            // Callers without write rights are refused before any operation (ID.1002,
            // in `calls`); what the domain still forbids is a state that does not
            // allow the operation.
            Error::Forbidden(m) | Error::KeyUnusable { message: m, .. } => {
                ZsError::api("SYS.1006", m)
            }
            Error::Unauthenticated(m) => ZsError::api("ID.1001", m),
            Error::QuotaExceeded(m) => ZsError::api("ID.1003", m),
            Error::Conflict(m) | Error::Gone(m) | Error::Throttled(m) | Error::Unavailable(m) => {
                ZsError::api("SYS.1006", m)
            }
            Error::NotSupported(m) => ZsError::api("SYS.1014", m),
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ZsError::api("SYS.1000", "An internal error happened in system")
            }
        }
    }
}

/// Plain text with a status.
pub fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text.into(),
    )
        .into_response()
}

impl IntoResponse for ZsError {
    fn into_response(self) -> Response {
        match self {
            ZsError::Rest { status, text } => plain(status, text),
            api => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "error": api.error_code() })),
            )
                .into_response(),
        }
    }
}
