//! Keystone's error envelope: `{"error":{"code","message","title"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ims_domain::{Entity, Error};

/// A domain error rendered the Keystone way.
#[derive(Debug)]
pub struct KeystoneError(pub Error);

impl From<Error> for KeystoneError {
    fn from(e: Error) -> Self {
        KeystoneError(e)
    }
}

fn status_of(e: &Error) -> StatusCode {
    ims_http::openstack_status(e)
}

impl IntoResponse for KeystoneError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let message = match &self.0 {
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "An unexpected error prevented the server from fulfilling your request.".to_string()
            }
            Error::NotFound { kind, id } => format!("Could not find {}: {id}.", noun(*kind)),
            Error::AlreadyExists { kind, id } => format!(
                "Conflict occurred attempting to store {} - duplicate entry {id}",
                noun(*kind)
            ),
            other => other.to_string(),
        };
        let body = serde_json::json!({"error": {
            "code": status.as_u16(), "message": message, "title": status.canonical_reason().unwrap_or("Error"),
        }});
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Keystone uri=\"/v3\""),
            );
        }
        resp
    }
}

/// Keystone's word for each kind of missing entity. Exhaustive: a new kind does not
/// compile until it is worded here.
fn noun(kind: Entity) -> &'static str {
    match kind {
        Entity::Project => "project",
        Entity::User => "user",
        Entity::Role => "role",
        // Keystone reports a missing grant as a missing role assignment.
        Entity::RoleAssignment => "role assignment",
        Entity::Token => "token",
        Entity::Credential => "credential",
        Entity::Image
        | Entity::ImageData
        | Entity::ImportMethod
        | Entity::Member
        | Entity::Tag
        | Entity::Job
        | Entity::Task
        | Entity::Schema
        | Entity::Bucket
        | Entity::Object
        | Entity::MetadefNamespace
        | Entity::MetadefObject
        | Entity::MetadefProperty
        | Entity::MetadefTag
        | Entity::MetadefResourceType
        | Entity::MetadefAssociation
        | Entity::Volume
        | Entity::Server
        | Entity::Key
        | Entity::Store
        | Entity::MetadefMarker => kind.noun(),
    }
}
