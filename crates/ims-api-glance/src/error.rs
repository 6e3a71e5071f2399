//! Glance's error shape: `{"message","code","title"}`, one exhaustive status mapping.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ims_domain::{Entity, Error};

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
    ims_http::openstack_status(e)
}

fn message_of(e: &Error) -> String {
    match e {
        Error::Internal(detail) => {
            tracing::error!(error = %detail, "internal error");
            "The server has either erred or is incapable of performing the requested operation."
                .into()
        }
        Error::NotFound { kind, id } => not_found_message(*kind, id),
        Error::AlreadyExists {
            kind: Entity::Image,
            id,
        } => format!("Image ID {id} already exists!"),
        other => other.to_string(),
    }
}

/// Glance's message for each kind of missing entity. Exhaustive: a new kind does not
/// compile until it is worded here.
fn not_found_message(kind: Entity, id: &str) -> String {
    match kind {
        Entity::MetadefNamespace
        | Entity::MetadefObject
        | Entity::MetadefProperty
        | Entity::MetadefTag
        | Entity::MetadefResourceType
        | Entity::MetadefAssociation
        | Entity::MetadefMarker => crate::metadefs::not_found_message(kind, id),
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
        | Entity::Project
        | Entity::User
        | Entity::Role
        | Entity::RoleAssignment
        | Entity::Token
        | Entity::Credential
        | Entity::Volume
        | Entity::Server
        | Entity::Key => format!("No {kind} found with ID {id}"),
        Entity::Store => match id.split_once('/') {
            Some((store, image)) => format!("Image {image} is not stored in store {store}."),
            None => format!("Store for identifier {id} not found"),
        },
    }
}

/// The plain facts of an error response, kept so [`negotiate`] can re-render it.
#[derive(Debug, Clone)]
struct ErrorText(String);

/// Renders any status with Glance's JSON body shape; [`negotiate`] turns it into
/// Glance's HTML page when the client did not ask for JSON.
pub fn glance_body(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = serde_json::json!({
        "message": message,
        "code": format!("{} {title}", status.as_u16()),
        "title": title,
    });
    let mut resp = (status, Json(body)).into_response();
    resp.extensions_mut().insert(ErrorText(message.to_string()));
    resp
}

/// Marks a response `negotiate` has already shaped. The layer runs twice on Glance routes
/// (the Glance router's own, inside the application's); without the mark the outer pass
/// took the inner pass's HTML page for a plain-text rejection and wrapped it in a second
/// page.
#[derive(Clone, Copy)]
struct Negotiated;

/// Middleware: Glance answers errors with JSON only under `Accept: application/json`,
/// and with a small HTML page otherwise; glanceclient parses the latter.
pub async fn negotiate(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // The ZStack dialect answers in its own shapes (plain-text 4xx included), and the
    // console with its own pages.
    let path = req.uri().path();
    let own_shapes = ["/zstack", "/console"].iter().any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    });
    if own_shapes {
        return next.run(req).await;
    }
    let wants_json = req
        .headers()
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("application/json")));
    let resp = next.run(req).await;
    if resp.extensions().get::<Negotiated>().is_some() {
        return resp;
    }
    let mut resp = shape_error(resp, wants_json).await;
    resp.extensions_mut().insert(Negotiated);
    resp
}

/// Gives a client error Glance's body: JSON when asked for, the HTML page otherwise.
async fn shape_error(mut resp: Response, wants_json: bool) -> Response {
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().is_ok_and(|s| s.contains("json")));
    if resp.status().is_client_error() && !is_json && resp.extensions().get::<ErrorText>().is_none()
    {
        resp = reshape_rejection(resp).await;
    }
    if wants_json {
        return resp;
    }
    let Some(ErrorText(message)) = resp.extensions_mut().remove::<ErrorText>() else {
        return resp;
    };
    let status = resp.status();
    let line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let html = format!(
        "<html>\n <head>\n  <title>{line}</title>\n </head>\n <body>\n  <h1>{line}</h1>\n  {escaped}<br /><br />\n\n\n\n </body>\n</html>"
    );
    let (mut parts, _) = resp.into_parts();
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(html))
}

/// Framework rejections (oversized body, wrong method, bad path) come as plain text;
/// give them Glance's body, keeping status and headers such as `Allow`.
async fn reshape_rejection(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let message = if text.trim().is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string()
    } else {
        text
    };
    let mut shaped = glance_body(parts.status, &message);
    for name in [
        axum::http::header::ALLOW,
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::header::HeaderName::from_static("accept-patch"),
    ] {
        if let Some(v) = parts.headers.get(&name) {
            shaped.headers_mut().insert(name, v.clone());
        }
    }
    shaped
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
