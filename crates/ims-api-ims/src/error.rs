//! IMS error bodies. Service errors: `{"error":{"code":"IMG.xxxx","message":…}}`;
//! authentication failures come from Huawei's API gateway in its own shape,
//! `{"error_msg":…,"error_code":"APIGW.0301","request_id":…}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ims_domain::{Entity, Error, KeyRole};
use serde_json::json;

/// An error in IMS's shape.
#[derive(Debug)]
pub struct ImsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ImsError {
    /// An error with an explicit IMS code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ImsError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `IMG.0001`: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "IMG.0001", message)
    }
}

/// The IMS code and status for each kind of missing entity. Exhaustive: a new kind does
/// not compile until it is mapped here.
fn not_found_code(kind: Entity) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match kind {
        Entity::Image | Entity::ImageData | Entity::Store => (S::NOT_FOUND, "IMG.0027"),
        // A bucket or object named in a request body is a bad request in IMS.
        Entity::Bucket => (S::BAD_REQUEST, "IMG.0069"),
        Entity::Object => (S::BAD_REQUEST, "IMG.0057"),
        // A volume is named in a request body (`volume_id`): a bad parameter.
        Entity::Volume | Entity::Server => (S::BAD_REQUEST, "IMG.0001"),
        // A `cmk_id` that does not exist (or is another project's).
        Entity::Key => (S::BAD_REQUEST, "IMG.0095"),
        Entity::Job
        | Entity::Task
        | Entity::Member
        | Entity::Tag
        | Entity::ImportMethod
        | Entity::Schema
        | Entity::Project
        | Entity::User
        | Entity::Role
        | Entity::RoleAssignment
        | Entity::Token
        | Entity::Credential
        | Entity::MetadefNamespace
        | Entity::MetadefObject
        | Entity::MetadefProperty
        | Entity::MetadefTag
        | Entity::MetadefResourceType
        | Entity::MetadefAssociation
        | Entity::MetadefMarker => (S::NOT_FOUND, "IMG.0121"),
    }
}

/// The IMS code and status for each domain error. Exhaustive: a new kind of error does
/// not compile until it is mapped here.
fn code_of(e: &Error) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        Error::NotFound { kind, .. } => not_found_code(*kind),
        Error::InvalidInput(_) => (S::BAD_REQUEST, "IMG.0001"),
        Error::InvalidField { field, .. } => (S::BAD_REQUEST, field_code(field)),
        Error::Forbidden(_) => (S::FORBIDDEN, "IMG.0026"),
        // The image's own key: gone (IMG.0101) or not enabled (IMG.0102).
        Error::KeyUnusable {
            role: KeyRole::Image,
            state: "deleted",
            ..
        } => (S::BAD_REQUEST, "IMG.0101"),
        Error::KeyUnusable {
            role: KeyRole::Image,
            ..
        } => (S::BAD_REQUEST, "IMG.0102"),
        // The KMS key named is not enabled (disabled, or pending deletion).
        Error::KeyUnusable { .. } => (S::BAD_REQUEST, "IMG.0097"),
        Error::Unauthenticated(_) => (S::UNAUTHORIZED, "APIGW.0301"),
        Error::Conflict(_) | Error::AlreadyExists { .. } => (S::BAD_REQUEST, "IMG.0046"),
        Error::QuotaExceeded(_) => (S::BAD_REQUEST, "IMG.0015"),
        Error::TooLarge(_) => (S::BAD_REQUEST, "IMG.0059"),
        Error::UnsupportedMedia(_) => (S::BAD_REQUEST, "IMG.0072"),
        Error::RangeNotSatisfiable { .. } => (S::RANGE_NOT_SATISFIABLE, "IMG.0001"),
        Error::Gone(_) => (S::NOT_FOUND, "IMG.0027"),
        Error::NotSupported(_) => (S::BAD_REQUEST, "IMG.0105"),
        // The API gateway's throttling answer.
        Error::Throttled(_) => (S::TOO_MANY_REQUESTS, "APIGW.0308"),
        Error::Unavailable(_) => (S::SERVICE_UNAVAILABLE, "IMG.0061"),
        Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, "IMG.0061"),
    }
}

/// IMS's code for an invalid field (reference 4.2).
fn field_code(field: &str) -> &'static str {
    match field {
        "name" => "IMG.0003",
        "description" => "IMG.0054",
        "min_disk" => "IMG.0055",
        "image_url" => "IMG.0017",
        "os_type" => "IMG.0122",
        "tags" => "IMG.0115",
        "cmk_id" => "IMG.0095",
        "cmk_id_unchanged" => "IMG.0096",
        "encrypted_image" => "IMG.0098",
        "storage_class" => "IMG.0069",
        "bucket_url" => "IMG.0075",
        "file_format" => "IMG.0072",
        "export_target" => "IMG.0070",
        "type" => "IMG.0024",
        "os_version" => "IMG.0056",
        "architecture" => "IMG.0212",
        "hw_firmware_type" => "IMG.0141",
        _ => "IMG.0001",
    }
}

impl From<Error> for ImsError {
    fn from(e: Error) -> Self {
        let (status, code) = code_of(&e);
        let message = match &e {
            // Details go to the log (its span carries the request id), never to callers.
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "Unknown system error.".to_string()
            }
            other => other.to_string(),
        };
        ImsError::new(status, code, message)
    }
}

impl IntoResponse for ImsError {
    fn into_response(self) -> Response {
        let body = if self.code.starts_with("APIGW") {
            json!({"error_code": self.code, "error_msg": self.message})
        } else {
            json!({"error": {"code": self.code, "message": self.message}})
        };
        (self.status, Json(body)).into_response()
    }
}
