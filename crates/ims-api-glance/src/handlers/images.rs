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
use crate::error::GlanceResult;
use ims_http::list_query as query;

const PATCH_TYPES: &[&str] = &[
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
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
    let mut resp = (StatusCode::CREATED, Json(convert::image(&image))).into_response();
    let h = resp.headers_mut();
    let location = format!("{}/v2/images/{}", svc.base_url(&headers), image.id);
    h.insert(
        "location",
        HeaderValue::from_str(&location).map_err(Error::internal)?,
    );
    let methods: Vec<&str> = svc
        .images
        .settings()
        .import_methods
        .iter()
        .map(|m| m.as_str())
        .collect();
    if !methods.is_empty() {
        h.insert(
            "openstack-image-import-methods",
            HeaderValue::from_str(&methods.join(",")).map_err(Error::internal)?,
        );
    }
    Ok(resp)
}

/// `GET /v2/images/{id}`; non-UUID ids are 404 (clients look names up this way).
pub async fn get_image(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> GlanceResult<Json<Value>> {
    Ok(Json(convert::image(&svc.images.get(&who, &id).await?)))
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
    let rest = query::without_marker(&raw);
    let first = if rest.is_empty() {
        "/v2/images".to_string()
    } else {
        format!("/v2/images?{rest}")
    };
    let mut body = json!({
        "images": images.iter().map(convert::image).collect::<Vec<_>>(),
        "first": first,
        "schema": "/v2/schemas/images",
    });
    if images.len() == q.limit as usize
        && let Some(last) = images.last()
    {
        let sep = if rest.is_empty() { "" } else { "&" };
        body["next"] = json!(format!("/v2/images?{rest}{sep}marker={}", last.id));
    }
    Ok(Json(body))
}

/// `PATCH /v2/images/{id}` with a JSON-patch document.
pub async fn update_image(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Json<Value>> {
    let body = json_body(&headers, &raw, PATCH_TYPES)
        .map_err(|e| e.with_header("accept-patch", PATCH_TYPES.join(", ")))?;
    let changes = decode_patch(body)?;
    Ok(Json(convert::image(
        &svc.images.update(&who, &id, changes).await?,
    )))
}

/// JSON patch → domain changes: only `add`, `replace` and `remove` on one-level paths.
fn decode_patch(body: Value) -> Result<Vec<ImageChange>, Error> {
    let Value::Array(ops) = body else {
        return Err(Error::invalid(
            "A JSON-patch body must be an array of operations",
        ));
    };
    ops.into_iter()
        .map(|op| {
            let op_name = op
                .get("op")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("Each operation needs an 'op'"))?;
            let path = op
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("Each operation needs a 'path'"))?;
            let name = pointer_name(path)?;
            let value = || {
                op.get("value")
                    .cloned()
                    .ok_or_else(|| Error::invalid(format!("Operation '{op_name}' needs a 'value'")))
            };
            match op_name {
                "add" => Ok(ImageChange::Add(name, value()?)),
                "replace" => Ok(ImageChange::Replace(name, value()?)),
                "remove" => Ok(ImageChange::Remove(name)),
                other => Err(Error::invalid(format!(
                    "Operation '{other}' is not supported"
                ))),
            }
        })
        .collect()
}

/// A one-level JSON pointer (`/name`), with `~0`/`~1` escapes.
fn pointer_name(path: &str) -> Result<String, Error> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| Error::invalid(format!("Pointer `{path}` does not start with \"/\".")))?;
    if rest.is_empty() || rest.contains('/') {
        if rest.starts_with("locations") {
            return Err(Error::Forbidden(
                "It's not allowed to update locations if locations are invisible.".into(),
            ));
        }
        return Err(Error::invalid(format!("Invalid JSON pointer: {path}")));
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
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

    #[test]
    fn patch_decoding() {
        let ch = decode_patch(
            json!([{"op":"add","path":"/a~1b","value":"x"},{"op":"remove","path":"/c"}]),
        )
        .unwrap();
        assert_eq!(
            ch,
            vec![
                ImageChange::Add("a/b".into(), json!("x")),
                ImageChange::Remove("c".into())
            ]
        );
        assert!(decode_patch(json!({"op":"add"})).is_err());
        assert!(decode_patch(json!([{"op":"move","path":"/a","from":"/b"}])).is_err());
        assert!(decode_patch(json!([{"op":"add","path":"a","value":"x"}])).is_err());
        assert!(matches!(
            decode_patch(json!([{"op":"add","path":"/locations/-","value":{}}])),
            Err(Error::Forbidden(_))
        ));
    }
}
