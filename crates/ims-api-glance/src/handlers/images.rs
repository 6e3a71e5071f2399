//! Image metadata handlers.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ims_domain::Error;
use ims_domain::service::ImageChange;
use ims_http::Services;
use serde_json::{Value, json};

use super::{Caller, json_body};
use crate::convert;
use crate::error::{GlanceError, GlanceResult};
use ims_http::list_query as query;

/// The JSON-patch media types, in the order Glance lists them in `Accept-Patch`.
const PATCH_TYPES: &[&str] = &[
    "application/openstack-images-v2.0-json-patch",
    "application/openstack-images-v2.1-json-patch",
];

/// `POST /v2/images`.
pub async fn create_image(
    State(svc): State<Services>,
    Caller(who): Caller,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Response> {
    let Value::Object(body) = json_body(&headers, &raw, &["application/json"])? else {
        return Err(Error::invalid("The request body must be a JSON object").into());
    };
    let attrs: BTreeMap<String, Value> = body.into_iter().collect();
    let image = svc.images.create(&who, attrs).await?;
    let mut resp = (
        StatusCode::CREATED,
        Json(convert::image(&image, svc.images.stores())),
    )
        .into_response();
    let h = resp.headers_mut();
    let location = format!("{}/v2/images/{}", svc.base_url(&headers), image.id);
    h.insert(
        "location",
        HeaderValue::from_str(&location).map_err(Error::internal)?,
    );
    let methods = super::info::import_methods(&svc);
    if !methods.is_empty() {
        h.insert(
            "openstack-image-import-methods",
            HeaderValue::from_str(&methods.join(",")).map_err(Error::internal)?,
        );
    }
    let stores = svc.images.stores();
    if stores.is_multi() {
        let ids: Vec<&str> = stores.all().iter().map(|s| s.id.as_str()).collect();
        h.insert(
            "openstack-image-store-ids",
            HeaderValue::from_str(&ids.join(",")).map_err(Error::internal)?,
        );
    }
    Ok(resp)
}

/// `DELETE /v2/stores/{store}/{id}`: 204 once the store no longer holds the image.
pub async fn delete_from_store(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((store, id)): Path<(String, String)>,
    raw: Bytes,
) -> GlanceResult<StatusCode> {
    if !raw.is_empty() {
        return Err(Error::invalid("This operation does not take a request body").into());
    }
    svc.images.delete_from_store(&who, &store, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/images/{id}`; non-UUID ids are 404 (clients look names up this way).
pub async fn get_image(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> GlanceResult<Json<Value>> {
    Ok(Json(convert::image(
        &svc.images.get(&who, &id).await?,
        svc.images.stores(),
    )))
}

/// `GET /v2/images` with Glance's filters, sorting and pagination.
pub async fn list_images(
    State(svc): State<Services>,
    Caller(who): Caller,
    RawQuery(raw): RawQuery,
) -> GlanceResult<Json<Value>> {
    let raw = raw.unwrap_or_default();
    let q = query::parse(&raw, &query::GLANCE)?;
    let images = svc.images.list(&who, &q).await?;
    // A full page may have more after it; the next one starts past its last image.
    let next_marker = (images.len() == q.limit as usize)
        .then(|| images.last().map(|last| last.id.to_string()))
        .flatten();
    let (first, next) = query::page_links("/v2/images", &raw, next_marker.as_deref());
    let mut body = json!({
        "images": images
            .iter()
            .map(|i| convert::image(i, svc.images.stores()))
            .collect::<Vec<_>>(),
        "first": first,
        "schema": "/v2/schemas/images",
    });
    if let Some(next) = next {
        body["next"] = json!(next);
    }
    Ok(Json(body))
}

/// `PATCH /v2/images/{id}` with a JSON-patch document in either of Glance's media types.
pub async fn update_image(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Json<Value>> {
    let mime = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or("").trim());
    let draft = match mime {
        Some(m) if m == PATCH_TYPES[0] => PatchDraft::Draft4,
        Some(m) if m == PATCH_TYPES[1] => PatchDraft::Draft10,
        _ => {
            let allowed = PATCH_TYPES.join(", ");
            return Err(GlanceError::from(Error::UnsupportedMedia(format!(
                "Image PATCH expects Content-Type one of: {allowed}"
            )))
            .with_header("accept-patch", allowed));
        }
    };
    let body = json_body(&headers, &raw, PATCH_TYPES)?;
    let changes = decode_patch(body, draft)?;
    Ok(Json(convert::image(
        &svc.images.update(&who, &id, changes).await?,
        svc.images.stores(),
    )))
}

/// The two JSON-patch forms Glance accepts, told apart by the media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchDraft {
    /// `openstack-images-v2.0-json-patch`: the operation is the key
    /// (`{"replace": "/name", "value": "x"}`), and `add` refuses what already exists.
    Draft4,
    /// `openstack-images-v2.1-json-patch`: RFC 6902 (`{"op": "add", "path": "/k", …}`);
    /// `add` of an existing attribute replaces it.
    Draft10,
}

const OPERATIONS: [&str; 3] = ["add", "remove", "replace"];

/// A JSON-patch body → domain changes, with Glance's checks and messages.
fn decode_patch(body: Value, draft: PatchDraft) -> Result<Vec<ImageChange>, Error> {
    let Value::Array(ops) = body else {
        return Err(Error::invalid(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    ops.iter().map(|op| decode_operation(op, draft)).collect()
}

fn decode_operation(raw: &Value, draft: PatchDraft) -> Result<ImageChange, Error> {
    let Value::Object(fields) = raw else {
        return Err(Error::invalid("Operations must be JSON objects."));
    };
    let (op, path) = match draft {
        PatchDraft::Draft10 => (op_member(fields.get("op"))?, fields.get("path")),
        PatchDraft::Draft4 => {
            let mut named = OPERATIONS.into_iter().filter(|o| fields.contains_key(*o));
            let op = named.next().ok_or_else(|| {
                Error::invalid("Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
            })?;
            if named.next().is_some() {
                return Err(Error::invalid(
                    "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\".",
                ));
            }
            (op, fields.get(op))
        }
    };
    let path = path.ok_or_else(|| Error::invalid("Unable to find 'path' in JSON Schema change"))?;
    let pointer = path
        .as_str()
        .ok_or_else(|| Error::invalid(format!("Pointer `{path}` is not a string.")))?;
    let parts = decode_pointer(pointer)?;
    let depth = match (parts[0].as_str(), op) {
        ("locations", "add" | "remove") => 2,
        _ => 1,
    };
    if parts.len() != depth {
        return Err(Error::invalid(format!(
            "Invalid JSON pointer for this resource: '/{}'",
            parts.join("/")
        )));
    }
    let value = match op {
        "remove" => Value::Null,
        _ => fields.get("value").cloned().ok_or_else(|| {
            Error::invalid(format!(
                "Operation \"{op}\" requires a member named \"value\"."
            ))
        })?,
    };
    let name = parts.into_iter().next().unwrap_or_default();
    if name == "locations" {
        return Err(locations_refusal(op, &value));
    }
    Ok(match (op, draft) {
        ("add", PatchDraft::Draft4) => ImageChange::AddNew(name, value),
        ("add", _) => ImageChange::Add(name, value),
        ("replace", _) => ImageChange::Replace(name, value),
        _ => ImageChange::Remove(name),
    })
}

/// The `op` member of an RFC 6902 operation.
fn op_member(op: Option<&Value>) -> Result<&'static str, Error> {
    let available = OPERATIONS.join(", ");
    let op = match op {
        None | Some(Value::Null) => {
            return Err(Error::invalid(format!(
                "Unable to find `op` in JSON Schema change. It must be one of the following: {available}."
            )));
        }
        Some(op) => op,
    };
    let shown = op.as_str().map_or_else(|| op.to_string(), str::to_string);
    OPERATIONS
        .into_iter()
        .find(|o| op.as_str() == Some(*o))
        .ok_or_else(|| {
            Error::invalid(format!(
                "Invalid operation: `{shown}`. It must be one of the following: {available}."
            ))
        })
}

/// Glance's limited JSON pointer: checked, split on `/`, `~1`/`~0` unescaped, each part
/// trimmed. Leading slashes are all dropped, as Glance does.
fn decode_pointer(pointer: &str) -> Result<Vec<String>, Error> {
    let bad = |why: &str| Err(Error::invalid(format!("Pointer `{pointer}` {why}")));
    let Some(rest) = pointer.strip_prefix('/') else {
        return bad("does not start with \"/\".");
    };
    let adjacent = rest.match_indices('/').any(|(i, _)| {
        rest[i + 1..]
            .trim_start_matches(char::is_whitespace)
            .starts_with('/')
    });
    if adjacent {
        return bad("contains adjacent \"/\".");
    }
    if !rest.is_empty() && pointer.ends_with('/') {
        return bad("end with \"/\".");
    }
    if rest.trim() == "/" {
        return bad("does not contains valid token.");
    }
    let stray_tilde = pointer
        .match_indices('~')
        .any(|(i, _)| !matches!(pointer.as_bytes().get(i + 1), Some(b'0' | b'1')));
    if stray_tilde {
        return bad("contains \"~\" not part of a recognized escape sequence.");
    }
    Ok(pointer
        .trim_start_matches('/')
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~").trim().to_string())
        .collect())
}

/// ims shows no locations, so, like Glance with `show_multiple_locations = False`,
/// none can be changed.
fn locations_refusal(op: &str, value: &Value) -> Error {
    let empty = match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if op == "replace" && empty {
        return Error::Forbidden("Cannot set locations to empty list.".into());
    }
    let verb = if op == "replace" { "update" } else { op };
    Error::Forbidden(format!(
        "It's not allowed to {verb} locations if locations are invisible."
    ))
}

/// `DELETE /v2/images/{id}`; Huawei's SDKs send it with an optional
/// `{"delete_backup": false}` body that is accepted and ignored.
pub async fn delete_image(
    State(svc): State<Services>,
    Path(id): Path<String>,
    Caller(who): Caller,
) -> GlanceResult<StatusCode> {
    svc.images.delete(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/actions/deactivate`.
pub async fn deactivate_image(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> GlanceResult<StatusCode> {
    svc.images.deactivate(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/actions/reactivate`.
pub async fn reactivate_image(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> GlanceResult<StatusCode> {
    svc.images.reactivate(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/images/{id}/tags/{tag}` (idempotent).
pub async fn add_tag(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> GlanceResult<StatusCode> {
    svc.images.add_tag(&who, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v2/images/{id}/tags/{tag}`.
pub async fn remove_tag(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> GlanceResult<StatusCode> {
    svc.images.remove_tag(&who, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v21(body: Value) -> Result<Vec<ImageChange>, Error> {
        decode_patch(body, PatchDraft::Draft10)
    }

    fn v20(body: Value) -> Result<Vec<ImageChange>, Error> {
        decode_patch(body, PatchDraft::Draft4)
    }

    fn message(r: Result<Vec<ImageChange>, Error>) -> String {
        match r {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn rfc6902_form() {
        let ch = v21(json!([{"op":"add","path":"/a~1b","value":"x"},{"op":"remove","path":"/c"}]))
            .unwrap();
        assert_eq!(
            ch,
            vec![
                ImageChange::Add("a/b".into(), json!("x")),
                ImageChange::Remove("c".into())
            ]
        );
        assert!(message(v21(json!({"op":"add"}))).contains("JSON array"));
        assert!(message(v21(json!(["add"]))).contains("JSON objects"));
        assert!(
            message(v21(json!([{"op":"move","path":"/a","from":"/b"}])))
                .starts_with("Invalid operation: `move`")
        );
        assert!(
            message(v21(json!([{"replace":"/name","value":"x"}])))
                .starts_with("Unable to find `op`")
        );
        assert!(message(v21(json!([{"op":"add","value":"x"}]))).contains("'path'"));
        assert!(
            message(v21(json!([{"op":"add","path":"/a"}])))
                .contains("requires a member named \"value\"")
        );
    }

    #[test]
    fn draft4_form() {
        let ch =
            v20(json!([{"replace":"/name","value":"x"},{"add":"/k","value":"v"},{"remove":"/c"}]))
                .unwrap();
        assert_eq!(
            ch,
            vec![
                ImageChange::Replace("name".into(), json!("x")),
                ImageChange::AddNew("k".into(), json!("v")),
                ImageChange::Remove("c".into())
            ]
        );
        // An RFC 6902 operation under the draft-4 type names no operation key.
        assert!(
            message(v20(json!([{"op":"replace","path":"/name","value":"x"}])))
                .contains("exactly one member")
        );
        assert!(
            message(v20(json!([{"add":"/a","remove":"/b","value":"x"}])))
                .contains("only one member")
        );
        assert!(message(v20(json!([{"add":"/a"}]))).contains("requires a member named \"value\""));
    }

    #[test]
    fn pointers_are_checked_like_glance() {
        for (pointer, why) in [
            ("a", "does not start with"),
            ("/a/ /b", "adjacent"),
            ("/a/", "end with"),
            ("/a~2", "recognized escape"),
            ("/a~", "recognized escape"),
            ("/a/b", "Invalid JSON pointer for this resource: '/a/b'"),
            ("/locations/0", "Invalid JSON pointer for this resource"),
        ] {
            let m = message(v21(json!([{"op":"replace","path":pointer,"value":"x"}])));
            assert!(m.contains(why), "{pointer}: {m}");
        }
        assert_eq!(
            v21(json!([{"op":"add","path":"/ a~0b ","value":"x"}])).unwrap(),
            vec![ImageChange::Add("a~b".into(), json!("x"))]
        );
        for (op, value, why) in [
            ("add", json!({}), "add locations"),
            ("replace", json!([]), "empty list"),
            ("replace", json!([{"url": "http://x"}]), "update locations"),
        ] {
            let path = if op == "add" {
                "/locations/-"
            } else {
                "/locations"
            };
            assert!(matches!(
                v21(json!([{"op": op, "path": path, "value": value}])),
                Err(Error::Forbidden(m)) if m.contains(why)
            ));
        }
        assert!(matches!(
            v20(json!([{"remove":"/locations/0"}])),
            Err(Error::Forbidden(_))
        ));
    }
}
