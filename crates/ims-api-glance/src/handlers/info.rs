//! Discovery: versions, schemas and `/v2/info/*`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ims_domain::Error;
use ims_http::Services;
use serde_json::{Value, json};

use super::Caller;
use crate::error::GlanceResult;
use crate::{convert, schemas};

/// `GET /`: 300 with the version list (keystoneauth and tempest expect 300).
pub async fn root_versions(State(svc): State<Services>, headers: HeaderMap) -> impl IntoResponse {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(convert::versions(&svc.base_url(&headers))),
    )
}

/// `GET /versions`: 200 with the same list (glanceclient).
pub async fn versions(State(svc): State<Services>, headers: HeaderMap) -> Json<Value> {
    Json(convert::versions(&svc.base_url(&headers)))
}

/// `GET /v2` or `GET /v2.N` (Huawei's `show_version`): `{"versions":[…]}` with the one
/// version asked for, the current one for a bare `/v2`.
pub async fn version(
    State(svc): State<Services>,
    headers: HeaderMap,
    original: Option<axum::Extension<ims_http::signed::OriginalUri>>,
) -> Json<Value> {
    let asked = original
        .as_ref()
        .map(|o| o.0.0.path().trim_matches('/').to_string())
        .filter(|p| convert::VERSIONS.contains(&p.as_str()));
    let id = asked.as_deref().unwrap_or(convert::VERSIONS[0]);
    let doc = convert::version(&svc.base_url(&headers), id);
    Json(serde_json::json!({ "versions": [doc] }))
}

/// `GET /v2/schemas/{name}`.
pub async fn schema(
    State(svc): State<Services>,
    _: Caller,
    Path(name): Path<String>,
) -> GlanceResult<Json<Value>> {
    schemas::named(&name, svc.images.settings())
        .map(Json)
        .ok_or_else(|| {
            Error::NotFound {
                kind: ims_domain::Entity::Schema,
                id: name,
            }
            .into()
        })
}

/// The enabled import methods' names: `/v2/info/import` lists them, and a created image's
/// `OpenStack-image-import-methods` header.
pub(crate) fn import_methods(svc: &Services) -> Vec<&'static str> {
    svc.images
        .settings()
        .import_methods
        .iter()
        .map(|m| m.as_str())
        .collect()
}

/// `GET /v2/info/import`.
pub async fn import_info(State(svc): State<Services>, _: Caller) -> Json<Value> {
    let methods = import_methods(&svc);
    Json(
        json!({"import-methods": {"description": "Import methods available.", "type": "array", "value": methods}}),
    )
}

/// `GET /v2/info/stores`: 404, as Glance answers without `enabled_backends`. ims has one
/// store, and clients take a 200 here to mean that several are enabled (they then send
/// `stores` with imports and wait for an image `stores` field that never comes).
pub async fn stores_info(_: Caller) -> axum::response::Response {
    crate::error::glance_body(
        StatusCode::NOT_FOUND,
        "Multi backend is not supported at this site.",
    )
}

/// `GET /v2/info/usage`: sizes in MiB, limits -1 when unlimited.
pub async fn usage_info(
    State(svc): State<Services>,
    Caller(who): Caller,
) -> GlanceResult<Json<Value>> {
    let (usage, quotas) = svc.images.usage(&who).await?;
    let mib = |b: u64| b.div_ceil(1 << 20);
    let limit =
        |q: Option<u64>, f: &dyn Fn(u64) -> u64| q.map(|v| json!(f(v))).unwrap_or(json!(-1));
    Ok(Json(json!({"usage": {
        "image_size_total": {"limit": limit(quotas.image_size_total, &mib), "usage": mib(usage.image_size)},
        "image_stage_total": {"limit": -1, "usage": 0},
        "image_count_total": {"limit": limit(quotas.image_count, &|v| v), "usage": usage.image_count},
        "image_count_uploading": {"limit": -1, "usage": usage.uploading_count},
    }})))
}
