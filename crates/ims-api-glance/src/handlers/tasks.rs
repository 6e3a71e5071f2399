//! Glance's task API: `POST /v2/tasks` (type `import`), `GET /v2/tasks`,
//! `GET /v2/tasks/{id}`; `DELETE` is refused as Glance refuses it. Administrators only.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ims_domain::Error;
use ims_domain::image::ImageId;
use ims_domain::job::{JobSortKey, JobStatus};
use ims_domain::listing::SortDir;
use ims_domain::service::tasks::{TaskListing, check_task_access};
use ims_http::Services;
use ims_http::list_query::{self, DEFAULT_LIMIT, parse_limit, parse_sort_dir};
use serde_json::{Value, json};

use super::{Caller, json_body};
use crate::convert;
use crate::error::{GlanceResult, glance_body};

/// The members of Glance's task schema; a create body may hold no others.
const TASK_FIELDS: &[&str] = &[
    "id",
    "type",
    "status",
    "input",
    "result",
    "owner",
    "message",
    "image_id",
    "request_id",
    "user_id",
    "expires_at",
    "created_at",
    "updated_at",
    "self",
    "schema",
];
const TASK_TYPES: [&str; 3] = ["import", "api_image_import", "location_import"];

/// `POST /v2/tasks`: 201 with the task and a `Location`.
pub async fn create_task(
    State(svc): State<Services>,
    Caller(who): Caller,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<Response> {
    check_task_access(&who)?;
    let body = json_body(&headers, &raw, &["application/json"])?;
    let input = decode_create(&body)?;
    let request_id = ims_http::request_id(&headers);
    let job = svc
        .images
        .create_import_task(&who, input, request_id.as_deref())
        .await?;
    let mut resp = (StatusCode::CREATED, Json(convert::task(&job))).into_response();
    let location = format!("/v2/tasks/{}", job.id);
    resp.headers_mut().insert(
        "location",
        HeaderValue::from_str(&location).map_err(Error::internal)?,
    );
    Ok(resp)
}

/// Glance's create checks (required members, then its schema), with its messages;
/// returns the `input`. Only `import` tasks are made here: the other types are what
/// image imports create.
fn decode_create(body: &Value) -> Result<&Value, Error> {
    let schema_error = |why: String| {
        Error::invalid(format!(
            "Provided object does not match schema 'task': {why}"
        ))
    };
    let Value::Object(fields) = body else {
        return Err(schema_error(format!(
            "{} is not of type 'object'",
            py_repr(body)
        )));
    };
    for key in ["type", "input"] {
        if !fields.contains_key(key) {
            return Err(Error::invalid(format!("Task '{key}' is required")));
        }
    }
    if let Some(extra) = fields.keys().find(|k| !TASK_FIELDS.contains(&k.as_str())) {
        return Err(schema_error(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let kind = &fields["type"];
    if !kind.as_str().is_some_and(|k| TASK_TYPES.contains(&k)) {
        return Err(schema_error(format!(
            "{} is not one of ['import', 'api_image_import', 'location_import']",
            py_repr(kind)
        )));
    }
    let input = &fields["input"];
    if !input.is_object() && !input.is_null() {
        return Err(schema_error(format!(
            "{} is not of type 'null', 'object'",
            py_repr(input)
        )));
    }
    if kind != "import" {
        return Err(Error::invalid(format!(
            "Tasks of type {kind} are created by image imports (POST /v2/images/{{id}}/import), not here"
        )));
    }
    Ok(input)
}

/// A value as Python prints it in Glance's schema messages (strings in single quotes).
fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// `GET /v2/tasks/{id}`.
pub async fn get_task(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> GlanceResult<Json<Value>> {
    Ok(Json(convert::task(&svc.images.task(&who, &id).await?)))
}

/// `DELETE /v2/tasks/{id}`: 405, as in Glance (tasks expire on their own).
pub async fn delete_task(Caller(who): Caller, Path(_id): Path<String>) -> GlanceResult<Response> {
    check_task_access(&who)?;
    let mut resp = glance_body(
        StatusCode::METHOD_NOT_ALLOWED,
        "This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property.",
    );
    resp.headers_mut()
        .insert(axum::http::header::ALLOW, HeaderValue::from_static("GET"));
    Ok(resp)
}

/// `GET /v2/tasks`: newest first, paged with `first`/`next` like Glance.
pub async fn list_tasks(
    State(svc): State<Services>,
    Caller(who): Caller,
    RawQuery(raw): RawQuery,
) -> GlanceResult<Json<Value>> {
    check_task_access(&who)?;
    let raw = raw.unwrap_or_default();
    let listing = decode_listing(&raw)?;
    let limit = listing.limit as usize;
    let tasks = svc.images.tasks(&who, listing).await?;
    // A full page may have more after it; the next one starts past its last task.
    let next_marker = (tasks.len() == limit)
        .then(|| tasks.last().map(|last| last.id.to_string()))
        .flatten();
    let (first, next) = list_query::page_links("/v2/tasks", &raw, next_marker.as_deref());
    let mut body = json!({
        "tasks": tasks.iter().map(convert::task_stub).collect::<Vec<_>>(),
        "first": first,
        "schema": "/v2/schemas/tasks",
    });
    if let Some(next) = next {
        body["next"] = json!(next);
    }
    Ok(Json(body))
}

/// Glance's list parameters: `limit`, `marker`, `sort_key`, `sort_dir` and the filters
/// `status`, `type`, `owner`, `image_id`; other parameters are ignored, as there.
fn decode_listing(raw: &str) -> Result<TaskListing, Error> {
    let mut listing = TaskListing {
        import_tasks_only: false,
        status: None,
        owner: None,
        image_id: None,
        sort: JobSortKey::CreatedAt,
        ascending: false,
        marker: None,
        limit: DEFAULT_LIMIT,
    };
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "limit" => listing.limit = parse_limit(&value)?,
            "marker" if ImageId::parse(&value).is_none() => {
                return Err(Error::invalid("Invalid marker format"));
            }
            "marker" => listing.marker = Some(value),
            "sort_dir" => listing.ascending = parse_sort_dir(&value)? == SortDir::Asc,
            "sort_key" => listing.sort = decode_sort_key(&value)?,
            "status" if !value.is_empty() => listing.status = Some(decode_status(&value)?),
            "type" if !value.is_empty() && value != "import" => {
                return Err(Error::invalid(format!("Invalid type value: {value}")));
            }
            "type" => listing.import_tasks_only = !value.is_empty(),
            "owner" => listing.owner = Some(value),
            // An id that cannot be an image's matches no task: a fresh random one (the
            // default) stands in.
            "image_id" => listing.image_id = Some(ImageId::parse(&value).unwrap_or_default()),
            _ => {}
        }
    }
    Ok(listing)
}

fn decode_sort_key(value: &str) -> Result<JobSortKey, Error> {
    Ok(match value {
        "created_at" => JobSortKey::CreatedAt,
        "id" => JobSortKey::Id,
        "status" => JobSortKey::Status,
        "type" => JobSortKey::Kind,
        "owner" => JobSortKey::Project,
        other => {
            return Err(Error::invalid(format!(
                "Sort key supplied is invalid: {other}"
            )));
        }
    })
}

fn decode_status(value: &str) -> Result<JobStatus, Error> {
    Ok(match value {
        "pending" => JobStatus::Init,
        "processing" => JobStatus::Running,
        "success" => JobStatus::Success,
        "failure" => JobStatus::Fail,
        other => return Err(Error::invalid(format!("Invalid status value: {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_http::list_query::MAX_LIMIT;

    fn refusal(body: Value) -> String {
        match decode_create(&body) {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn create_bodies_are_checked_like_glance() {
        let input = json!({"import_from": "http://x/y", "import_from_format": "qcow2", "image_properties": {}});
        let body = json!({"type": "import", "input": input});
        assert_eq!(decode_create(&body).unwrap(), &input);
        assert_eq!(refusal(json!({"input": {}})), "Task 'type' is required");
        assert_eq!(
            refusal(json!({"type": "import"})),
            "Task 'input' is required"
        );
        assert!(refusal(json!({"type": "bogus", "input": {}})).contains("'bogus' is not one of"));
        assert!(
            refusal(json!({"type": "import", "input": 3}))
                .contains("3 is not of type 'null', 'object'")
        );
        assert!(
            refusal(json!({"type": "import", "input": {}, "x": 1}))
                .contains("('x' was unexpected)")
        );
        assert!(refusal(json!([1])).contains("is not of type 'object'"));
        assert!(
            refusal(json!({"type": "api_image_import", "input": {}})).contains("image imports")
        );
        assert!(decode_create(&json!({"type": "import", "input": null})).is_ok());
    }

    #[test]
    fn list_parameters_are_checked_like_glance() {
        let l = decode_listing(
            "limit=5000&sort_dir=asc&sort_key=status&status=failure&type=import&owner=p&foo=bar",
        )
        .unwrap();
        assert_eq!(
            (
                l.limit,
                l.ascending,
                l.sort,
                l.status,
                l.import_tasks_only,
                l.owner.as_deref()
            ),
            (
                MAX_LIMIT,
                true,
                JobSortKey::Status,
                Some(JobStatus::Fail),
                true,
                Some("p")
            )
        );
        for (query, why) in [
            ("limit=x", "must be an integer"),
            ("limit=-1", "must be positive"),
            ("marker=abc", "Invalid marker format"),
            ("sort_dir=up", "Invalid sort direction: up"),
            ("sort_key=size", "Sort key supplied is invalid: size"),
            ("status=done", "Invalid status value: done"),
            (
                "type=api_image_import",
                "Invalid type value: api_image_import",
            ),
        ] {
            match decode_listing(query) {
                Err(Error::InvalidInput(m)) => assert!(m.contains(why), "{query}: {m}"),
                other => panic!("{query}: {other:?}"),
            }
        }
        assert_eq!(decode_listing("").unwrap().limit, DEFAULT_LIMIT);
    }
}
