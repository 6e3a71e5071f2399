//! Member handlers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use ims_domain::Error;
use ims_http::Services;
use serde_json::{Value, json};

use super::{Caller, json_body};
use crate::convert;
use crate::error::GlanceResult;

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Error> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid(format!("Request body must have a '{name}' string")))
}

/// `POST /v2/images/{id}/members` (200, as Glance).
pub async fn add_member(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Json<Value>> {
    let body = json_body(&headers, &raw, &["application/json"])?;
    let m = svc
        .images
        .add_member(&who, &id, field(&body, "member")?)
        .await?;
    Ok(Json(convert::member(&m)))
}

/// `GET /v2/images/{id}/members`.
pub async fn list_members(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> GlanceResult<Json<Value>> {
    let ms = svc.images.members(&who, &id).await?;
    Ok(Json(
        json!({"members": ms.iter().map(convert::member).collect::<Vec<_>>(), "schema": "/v2/schemas/members"}),
    ))
}

/// `GET /v2/images/{id}/members/{member}`.
pub async fn get_member(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((id, member)): Path<(String, String)>,
) -> GlanceResult<Json<Value>> {
    Ok(Json(convert::member(
        &svc.images.member(&who, &id, &member).await?,
    )))
}

/// `PUT /v2/images/{id}/members/{member}`: the member answers.
pub async fn update_member(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((id, member)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Json<Value>> {
    let body = json_body(&headers, &raw, &["application/json"])?;
    let m = svc
        .images
        .set_member_status(&who, &id, &member, field(&body, "status")?)
        .await?;
    Ok(Json(convert::member(&m)))
}

/// `DELETE /v2/images/{id}/members/{member}`.
pub async fn remove_member(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path((id, member)): Path<(String, String)>,
) -> GlanceResult<StatusCode> {
    svc.images.remove_member(&who, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}
