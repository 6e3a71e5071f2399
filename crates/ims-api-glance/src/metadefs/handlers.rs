//! `/v2/metadefs/…` handlers: decode, one `MetadefService` call, render.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ims_domain::metadefs::ContentKind;
use ims_http::Services;
use serde_json::{Map, Value, json};

use super::{query, render};
use crate::error::GlanceResult;
use crate::handlers::{Caller, json_body};

type Ns = Path<String>;
type NsAnd = Path<(String, String)>;

fn body(headers: &HeaderMap, raw: &[u8]) -> GlanceResult<Value> {
    json_body(headers, raw, &["application/json"])
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

fn resource_type_param(raw: &Option<String>) -> Option<String> {
    let pairs = query::pairs(raw.as_deref());
    pairs
        .into_iter()
        .rev()
        .find(|(k, _)| k == "resource_type")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

// Namespaces.

/// `GET /v2/metadefs/namespaces`.
pub async fn list_namespaces(
    State(svc): State<Services>,
    Caller(who): Caller,
    RawQuery(raw): RawQuery,
) -> GlanceResult<Json<Value>> {
    let pairs = query::pairs(raw.as_deref());
    let page = svc
        .metadefs
        .list_namespaces(&who, query::namespaces(&pairs)?)
        .await?;
    let (first, next) = ims_http::list_query::page_links(
        "/v2/metadefs/namespaces",
        raw.as_deref().unwrap_or(""),
        page.next.as_deref(),
    );
    let mut out = Map::new();
    out.insert(
        "namespaces".into(),
        page.namespaces.iter().map(render::listed).collect(),
    );
    out.insert("first".into(), json!(first));
    out.insert("schema".into(), json!("/v2/schemas/metadefs/namespaces"));
    if let Some(next) = next {
        out.insert("next".into(), json!(next));
    }
    Ok(Json(Value::Object(out)))
}

/// `POST /v2/metadefs/namespaces`: 201 with `Location`.
pub async fn create_namespace(
    State(svc): State<Services>,
    Caller(who): Caller,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Response> {
    let detail = svc
        .metadefs
        .create_namespace(&who, &body(&headers, &raw)?)
        .await?;
    let href = render::namespace_href(&detail.namespace.name);
    let location = format!("{}{}", svc.base_url(&headers), href);
    let encoded = percent_encoding::utf8_percent_encode(&location, percent_encoding::CONTROLS);
    let mut resp = created(render::detail(&detail));
    if let Ok(v) = HeaderValue::from_str(&encoded.to_string()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /v2/metadefs/namespaces/{ns}[?resource_type=…]`.
pub async fn show_namespace(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
    RawQuery(raw): RawQuery,
) -> GlanceResult<Json<Value>> {
    let rt = resource_type_param(&raw);
    let detail = svc
        .metadefs
        .show_namespace(&who, &ns, rt.as_deref())
        .await?;
    Ok(Json(render::detail(&detail)))
}

/// `PUT /v2/metadefs/namespaces/{ns}`.
pub async fn update_namespace(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Json<Value>> {
    let updated = svc
        .metadefs
        .update_namespace(&who, &ns, &body(&headers, &raw)?)
        .await?;
    Ok(Json(Value::Object(render::namespace(&updated))))
}

/// `DELETE /v2/metadefs/namespaces/{ns}`.
pub async fn delete_namespace(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
) -> GlanceResult<StatusCode> {
    svc.metadefs.delete_namespace(&who, &ns).await?;
    Ok(no_content())
}

async fn clear(
    svc: &Services,
    who: &Caller,
    ns: &str,
    kind: ContentKind,
) -> GlanceResult<StatusCode> {
    svc.metadefs.delete_contents(&who.0, ns, kind).await?;
    Ok(no_content())
}

// Objects.

/// `GET …/objects`.
pub async fn list_objects(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
    RawQuery(raw): RawQuery,
) -> GlanceResult<Json<Value>> {
    let paging = query::children(&query::pairs(raw.as_deref()), false)?;
    let objects = svc.metadefs.list_objects(&who, &ns, paging).await?;
    let list: Vec<Value> = objects.iter().map(|o| render::object(&ns, o)).collect();
    Ok(Json(
        json!({"objects": list, "schema": "v2/schemas/metadefs/objects"}),
    ))
}

/// `POST …/objects`.
pub async fn create_object(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Response> {
    let o = svc
        .metadefs
        .create_object(&who, &ns, &body(&headers, &raw)?)
        .await?;
    Ok(created(render::object(&ns, &o)))
}

/// `DELETE …/objects`.
pub async fn delete_objects(
    State(svc): State<Services>,
    who: Caller,
    Path(ns): Ns,
) -> GlanceResult<StatusCode> {
    clear(&svc, &who, &ns, ContentKind::Objects).await
}

/// `GET …/objects/{name}`.
pub async fn show_object(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
) -> GlanceResult<Json<Value>> {
    let o = svc.metadefs.show_object(&who, &ns, &name).await?;
    Ok(Json(render::object(&ns, &o)))
}

/// `PUT …/objects/{name}`.
pub async fn update_object(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Json<Value>> {
    let o = svc
        .metadefs
        .update_object(&who, &ns, &name, &body(&headers, &raw)?)
        .await?;
    Ok(Json(render::object(&ns, &o)))
}

/// `DELETE …/objects/{name}`.
pub async fn delete_object(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
) -> GlanceResult<StatusCode> {
    svc.metadefs.delete_object(&who, &ns, &name).await?;
    Ok(no_content())
}

// Properties.

/// `GET …/properties`.
pub async fn list_properties(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
) -> GlanceResult<Json<Value>> {
    let props = svc.metadefs.list_properties(&who, &ns).await?;
    let map: Map<String, Value> = props
        .into_iter()
        .map(|p| (p.name, Value::Object(p.schema)))
        .collect();
    Ok(Json(json!({"properties": map})))
}

/// `POST …/properties`.
pub async fn create_property(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Response> {
    let p = svc
        .metadefs
        .create_property(&who, &ns, &body(&headers, &raw)?)
        .await?;
    Ok(created(render::property(&p.name, &p.schema)))
}

/// `DELETE …/properties`.
pub async fn delete_properties(
    State(svc): State<Services>,
    who: Caller,
    Path(ns): Ns,
) -> GlanceResult<StatusCode> {
    clear(&svc, &who, &ns, ContentKind::Properties).await
}

/// `GET …/properties/{name}[?resource_type=…]`.
pub async fn show_property(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
    RawQuery(raw): RawQuery,
) -> GlanceResult<Json<Value>> {
    let rt = resource_type_param(&raw);
    let p = svc
        .metadefs
        .show_property(&who, &ns, &name, rt.as_deref())
        .await?;
    Ok(Json(render::property(&p.name, &p.schema)))
}

/// `PUT …/properties/{name}`.
pub async fn update_property(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Json<Value>> {
    let p = svc
        .metadefs
        .update_property(&who, &ns, &name, &body(&headers, &raw)?)
        .await?;
    Ok(Json(render::property(&p.name, &p.schema)))
}

/// `DELETE …/properties/{name}`.
pub async fn delete_property(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
) -> GlanceResult<StatusCode> {
    svc.metadefs.delete_property(&who, &ns, &name).await?;
    Ok(no_content())
}

// Tags.

/// `GET …/tags`.
pub async fn list_tags(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
    RawQuery(raw): RawQuery,
) -> GlanceResult<Json<Value>> {
    let paging = query::children(&query::pairs(raw.as_deref()), true)?;
    let tags = svc.metadefs.list_tags(&who, &ns, paging).await?;
    let list: Vec<Value> = tags.iter().map(render::tag_name).collect();
    Ok(Json(json!({ "tags": list })))
}

/// `POST …/tags`: creates several; `X-Openstack-Append: true` keeps the existing ones.
pub async fn create_tags(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Response> {
    let append = query::truthy(
        headers
            .get("x-openstack-append")
            .and_then(|v| v.to_str().ok()),
    );
    let tags = svc
        .metadefs
        .create_tags(&who, &ns, &body(&headers, &raw)?, append)
        .await?;
    let list: Vec<Value> = tags.iter().map(render::tag_name).collect();
    Ok(created(json!({ "tags": list })))
}

/// `DELETE …/tags`.
pub async fn delete_tags(
    State(svc): State<Services>,
    who: Caller,
    Path(ns): Ns,
) -> GlanceResult<StatusCode> {
    clear(&svc, &who, &ns, ContentKind::Tags).await
}

/// `POST …/tags/{name}` (no body).
pub async fn create_tag(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
) -> GlanceResult<Response> {
    let t = svc.metadefs.create_tag(&who, &ns, &name).await?;
    Ok(created(render::tag(&t)))
}

/// `GET …/tags/{name}`.
pub async fn show_tag(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
) -> GlanceResult<Json<Value>> {
    let t = svc.metadefs.show_tag(&who, &ns, &name).await?;
    Ok(Json(render::tag(&t)))
}

/// `PUT …/tags/{name}`.
pub async fn update_tag(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Json<Value>> {
    let t = svc
        .metadefs
        .update_tag(&who, &ns, &name, &body(&headers, &raw)?)
        .await?;
    Ok(Json(render::tag(&t)))
}

/// `DELETE …/tags/{name}`.
pub async fn delete_tag(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
) -> GlanceResult<StatusCode> {
    svc.metadefs.delete_tag(&who, &ns, &name).await?;
    Ok(no_content())
}

// Resource types.

/// `GET /v2/metadefs/resource_types`.
pub async fn list_resource_types(
    State(svc): State<Services>,
    Caller(who): Caller,
) -> GlanceResult<Json<Value>> {
    let types = svc.metadefs.list_resource_types(&who).await?;
    let list: Vec<Value> = types
        .iter()
        .map(|t| {
            json!({"name": t.name, "created_at": crate::convert::glance_time(t.created_at), "updated_at": crate::convert::glance_time(t.updated_at)})
        })
        .collect();
    Ok(Json(json!({ "resource_types": list })))
}

/// `GET …/namespaces/{ns}/resource_types`.
pub async fn list_associations(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
) -> GlanceResult<Json<Value>> {
    let list = svc.metadefs.list_associations(&who, &ns).await?;
    let list: Vec<Value> = list.iter().map(render::association).collect();
    Ok(Json(json!({ "resource_type_associations": list })))
}

/// `POST …/namespaces/{ns}/resource_types`.
pub async fn create_association(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(ns): Ns,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Response> {
    let a = svc
        .metadefs
        .create_association(&who, &ns, &body(&headers, &raw)?)
        .await?;
    Ok(created(render::association(&a)))
}

/// `DELETE …/namespaces/{ns}/resource_types/{name}`.
pub async fn delete_association(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((ns, name)): NsAnd,
) -> GlanceResult<StatusCode> {
    svc.metadefs.delete_association(&who, &ns, &name).await?;
    Ok(no_content())
}

/// `GET /v2/schemas/metadefs/{name}`.
pub async fn schema(_: Caller, Path(name): Path<String>) -> GlanceResult<Json<Value>> {
    super::schemas::named(&name).map(Json).ok_or_else(|| {
        ims_domain::Error::NotFound {
            kind: ims_domain::Entity::Schema,
            id: format!("metadefs/{name}"),
        }
        .into()
    })
}
