//! The console's stylesheet and script, compiled into the binary (no build step, no
//! files to deploy), and the format suggestion the create page asks for.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::session::Session;

const CSS: &str = include_str!("../static/console.css");
const JS: &str = include_str!("../static/console.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /console/static/console.css`.
pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /console/static/console.js`.
pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// The most of a file's start the suggestion reads (enough for every header ims knows,
/// ISO 9660's descriptors included).
const INSPECT_MAX: usize = 4 << 20;

/// `POST /console/inspect`: the disk format `ims inspect` would see in the first bytes
/// of a file the browser is about to upload (`null` when they show none).
pub async fn inspect(session: Session, headers: HeaderMap, body: Body) -> Response {
    if let Err(refused) = session.check(&headers, None) {
        return refused.into_response();
    }
    let Ok(head) = axum::body::to_bytes(body, INSPECT_MAX).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Send at most the file's first 4 MiB.",
        )
            .into_response();
    };
    let mut inspector = ims_format::StreamInspector::new();
    inspector.feed(&head);
    let report = inspector.finish();
    let format = match report.format.as_str() {
        // Partition tables are raw disks; a header alone says nothing about plain data.
        "gpt" | "mbr" => Some("raw"),
        "raw" => None,
        other => Some(other),
    };
    Json(json!({"disk_format": format})).into_response()
}
