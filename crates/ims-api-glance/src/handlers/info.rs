//! Discovery: versions, schemas and `/v2/info/*`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ims_domain::Error;
use ims_http::Services;
use serde_json::{Map, Value, json};

use super::Caller;
use crate::error::{GlanceError, GlanceResult};
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

/// `GET /v2/info/stores`: the stores, in configuration order; 404 with one store, as
/// Glance answers without `enabled_backends` (clients take a 200 to mean several).
pub async fn stores_info(State(svc): State<Services>, _: Caller) -> Response {
    stores_body(&svc, |_| Map::new())
}

/// `GET /v2/info/stores/detail`: with each store's type, weight and settings; for
/// administrators (and services), after the 404 of a single store.
pub async fn stores_detail(State(svc): State<Services>, Caller(who): Caller) -> Response {
    if svc.images.stores().is_multi() && !who.is_admin() && !who.has_role("service") {
        return GlanceError::from(Error::Forbidden(String::new())).into_response();
    }
    stores_body(&svc, |store| {
        let mut m = Map::new();
        m.insert("type".into(), json!(store.kind));
        m.insert("weight".into(), json!(store.weight));
        m.insert("properties".into(), json!(store.properties));
        m
    })
}

fn stores_body(
    svc: &Services,
    detail: impl Fn(&ims_domain::storage::ImageStore) -> Map<String, Value>,
) -> Response {
    let stores = svc.images.stores();
    if !stores.is_multi() {
        return crate::error::glance_body(
            StatusCode::NOT_FOUND,
            "Multi backend is not supported at this site.",
        );
    }
    let list: Vec<Value> = stores
        .all()
        .iter()
        .map(|store| {
            let mut m = Map::new();
            m.insert("id".into(), json!(store.id));
            if let Some(d) = &store.description {
                m.insert("description".into(), json!(d));
            }
            if store.id == stores.default_store().id {
                m.insert("default".into(), json!("true"));
            }
            m.extend(detail(store));
            Value::Object(m)
        })
        .collect();
    Json(json!({ "stores": list })).into_response()
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
