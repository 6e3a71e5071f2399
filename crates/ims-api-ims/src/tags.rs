//! IMS tag routes: key/value tags, kept on images as Glance `key=value` tags.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ims_domain::service::tags::KeyValueTag;
use ims_http::Services;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ImsError;
use crate::extract::Signed;
use crate::handlers::check_project;

type Res<T> = Result<T, ImsError>;

/// `{"key":…,"value":…}` as IMS sends tags.
#[derive(Deserialize)]
pub struct TagBody {
    key: String,
    #[serde(default)]
    value: String,
}

impl TagBody {
    fn checked(&self) -> Res<KeyValueTag> {
        Ok(KeyValueTag::new(&self.key, &self.value)?)
    }
}

fn checked_all(tags: &[TagBody]) -> Res<Vec<KeyValueTag>> {
    tags.iter().map(TagBody::checked).collect()
}

fn pairs(tags: &[KeyValueTag]) -> Vec<Value> {
    tags.iter()
        .map(|t| json!({"key": t.key, "value": t.value}))
        .collect()
}

/// `{"tag": {…}}`.
#[derive(Deserialize)]
pub struct AddBody {
    tag: TagBody,
}

/// `POST /v2/{project_id}/images/{image_id}/tags`: add or overwrite one tag.
pub async fn add(
    State(svc): State<Services>,
    Path((project_id, image_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<StatusCode> {
    check_project(&caller, &project_id)?;
    let body: AddBody = caller.json()?;
    let tag = body.tag.checked()?;
    svc.images
        .change_key_value_tags(&caller.who, &image_id, vec![tag], Vec::new(), false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"action": "create"|"delete", "tags": [...]}`.
#[derive(Deserialize)]
pub struct BatchBody {
    action: String,
    tags: Vec<TagBody>,
}

/// `POST /v2/{project_id}/images/{image_id}/tags/action`: add or delete several tags.
pub async fn batch(
    State(svc): State<Services>,
    Path((project_id, image_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<StatusCode> {
    check_project(&caller, &project_id)?;
    let body: BatchBody = caller.json()?;
    let tags = checked_all(&body.tags)?;
    let (set, remove) = match body.action.as_str() {
        "create" => (tags, Vec::new()),
        "delete" => (Vec::new(), tags.into_iter().map(|t| t.key).collect()),
        other => return Err(ImsError::bad_request(format!("Unknown action {other}"))),
    };
    svc.images
        .change_key_value_tags(&caller.who, &image_id, set, remove, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v2/{project_id}/images/{image_id}/tags/{key}`: delete one key.
pub async fn delete(
    State(svc): State<Services>,
    Path((project_id, image_id, key)): Path<(String, String, String)>,
    caller: Signed,
) -> Res<StatusCode> {
    check_project(&caller, &project_id)?;
    svc.images
        .change_key_value_tags(&caller.who, &image_id, Vec::new(), vec![key], true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/{project_id}/images/{image_id}/tags`.
pub async fn list(
    State(svc): State<Services>,
    Path((project_id, image_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<Json<Value>> {
    check_project(&caller, &project_id)?;
    let tags = svc.images.key_value_tags(&caller.who, &image_id).await?;
    Ok(Json(json!({"tags": pairs(&tags)})))
}

/// `GET /v2/{project_id}/images/tags`: every key of the project's images with its values.
pub async fn project(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    check_project(&caller, &project_id)?;
    let all = svc.images.project_key_value_tags(&caller.who).await?;
    let tags: Vec<Value> = all
        .into_iter()
        .map(|(key, values)| json!({"key": key, "values": values}))
        .collect();
    Ok(Json(json!({"tags": tags})))
}

/// `{"image_id": …, "tag": "key.value"}` or `{"image_id": …, "image_tag": {…}}`.
#[derive(Deserialize)]
pub struct PutBody {
    image_id: String,
    tag: Option<String>,
    image_tag: Option<TagBody>,
}

/// `PUT /v1/cloudimages/tags`: add or overwrite one tag, old style.
pub async fn put(State(svc): State<Services>, caller: Signed) -> Res<StatusCode> {
    let body: PutBody = caller.json()?;
    let tag = match (&body.tag, &body.image_tag) {
        (Some(t), None) => {
            let (key, value) = t.split_once('.').unwrap_or((t, ""));
            KeyValueTag::new(key, value)?
        }
        (None, Some(t)) => t.checked()?,
        _ => return Err(ims_domain::Error::field("tags", "Give either tag or image_tag.").into()),
    };
    svc.images
        .change_key_value_tags(&caller.who, &body.image_id, vec![tag], Vec::new(), false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"tags": [...]}`.
#[derive(Deserialize)]
pub struct DeleteBody {
    tags: Vec<TagBody>,
}

/// `DELETE /v1/{project_id}/cloudimages/{image_id}/tags/delete`: delete several keys.
pub async fn delete_many(
    State(svc): State<Services>,
    Path((project_id, image_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<StatusCode> {
    check_project(&caller, &project_id)?;
    let body: DeleteBody = caller.json()?;
    let keys = checked_all(&body.tags)?
        .into_iter()
        .map(|t| t.key)
        .collect();
    svc.images
        .change_key_value_tags(&caller.who, &image_id, Vec::new(), keys, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
