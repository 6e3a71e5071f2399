//! IMS tag routes: key/value tags, kept on images as Glance `key=value` tags.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ims_domain::image::Image;
use ims_domain::service::tag_search::{ResourceMatch, TagCondition, TagSearch, Window};
use ims_domain::service::tags::KeyValueTag;
use ims_http::{Services, list_query};
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

/// `GET /v1/cloudimages/tags` (ListTags): the distinct tags of the caller's project's
/// images that ListImages' filters select, as `key.value` (`key` alone for an empty
/// value), sorted, paged by `limit` (all by default) and `page` (from 1).
pub async fn tenant(
    State(svc): State<Services>,
    RawQuery(raw): RawQuery,
    caller: Signed,
) -> Res<Json<Value>> {
    let (paging, filters) = list_query::split_off(raw.as_deref().unwrap_or(""), &["limit", "page"]);
    let param = |name: &str| {
        paging
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let window = Window::by_page(
        integer("limit", param("limit"))?,
        integer("page", param("page"))?,
    )?;
    let query = list_query::parse(&filters, &list_query::IMS)?;
    let tags = svc.images.tenant_tags(&caller.who, query, window).await?;
    let dotted: Vec<String> = tags
        .into_iter()
        .map(|t| {
            if t.value.is_empty() {
                t.key
            } else {
                format!("{}.{}", t.key, t.value)
            }
        })
        .collect();
    Ok(Json(json!({"tags": dotted})))
}

/// An optional integer parameter; IMS clients send them as strings.
fn integer(name: &str, value: Option<&str>) -> Res<Option<i64>> {
    value
        .map(|v| v.trim().parse())
        .transpose()
        .map_err(|_| ImsError::bad_request(format!("{name} must be an integer.")))
}

/// `{"key": …, "values": [...]}` of a tag search; no values means any value.
#[derive(Deserialize)]
pub struct ConditionBody {
    key: String,
    #[serde(default)]
    values: Vec<String>,
}

/// `{"key": "resource_name"|"resource_id", "value": …}`.
#[derive(Deserialize)]
pub struct MatchBody {
    key: String,
    value: String,
}

/// A number that clients send as a string (the spec) or as a number.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Loose {
    /// `"10"`.
    Text(String),
    /// `10`.
    Number(i64),
}

impl Loose {
    fn get(name: &str, value: Option<&Loose>) -> Res<Option<i64>> {
        match value {
            Some(Loose::Number(n)) => Ok(Some(*n)),
            Some(Loose::Text(t)) => integer(name, Some(t)),
            None => Ok(None),
        }
    }
}

/// The body of `POST /v2/{project_id}/images/resource_instances/action`.
#[derive(Deserialize)]
pub struct SearchBody {
    action: String,
    #[serde(default)]
    tags: Vec<ConditionBody>,
    #[serde(default)]
    tags_any: Vec<ConditionBody>,
    #[serde(default)]
    not_tags: Vec<ConditionBody>,
    #[serde(default)]
    not_tags_any: Vec<ConditionBody>,
    #[serde(default)]
    without_any_tag: bool,
    #[serde(default)]
    matches: Vec<MatchBody>,
    limit: Option<Loose>,
    offset: Option<Loose>,
}

impl SearchBody {
    fn search(self) -> Res<TagSearch> {
        let conditions = |list: Vec<ConditionBody>| {
            list.into_iter()
                .map(|c| TagCondition {
                    key: c.key,
                    values: c.values,
                })
                .collect()
        };
        let matches = self
            .matches
            .iter()
            .map(|m| ResourceMatch::new(&m.key, &m.value))
            .collect::<Result<_, _>>()?;
        Ok(TagSearch {
            tags: conditions(self.tags),
            tags_any: conditions(self.tags_any),
            not_tags: conditions(self.not_tags),
            not_tags_any: conditions(self.not_tags_any),
            without_any_tag: self.without_any_tag,
            matches,
        })
    }
}

/// `POST /v2/{project_id}/images/resource_instances/action` (ListImageByTags): the
/// caller's project's images found by a TMS-style tag search; `filter` answers a page
/// (`limit` 10 and `offset` 0 by default) and the total, `count` only the total.
pub async fn search(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    check_project(&caller, &project_id)?;
    let body: SearchBody = caller.json()?;
    let window = match body.action.as_str() {
        "filter" => Some(Window::by_offset(
            Loose::get("limit", body.limit.as_ref())?,
            Loose::get("offset", body.offset.as_ref())?,
        )?),
        "count" => None,
        other => return Err(ImsError::bad_request(format!("Unknown action {other}."))),
    };
    let found = svc
        .images
        .search_by_tags(&caller.who, body.search()?, window)
        .await?;
    if window.is_none() {
        return Ok(Json(json!({"total_count": found.total})));
    }
    let resources: Vec<Value> = found.images.iter().map(resource).collect();
    Ok(Json(
        json!({"resources": resources, "total_count": found.total}),
    ))
}

/// An image as a TMS resource.
fn resource(image: &Image) -> Value {
    json!({
        "resource_id": image.id.to_string(),
        "resource_name": image.name.as_deref().unwrap_or(""),
        "resource_detail": {"status": image.status.as_str()},
        "tags": pairs(&KeyValueTag::all_of(image)),
    })
}
