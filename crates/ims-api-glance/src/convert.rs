//! Glance JSON shapes for images, members, tasks and version documents.

use ims_domain::image::Image;
use ims_domain::job::{Job, JobKind, JobStatus};
use ims_domain::member::Member;
use ims_domain::outbound::{redact_url, redact_urls_in};
use ims_domain::service::tasks::TASK_INPUT;
use ims_domain::storage::Stores;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// Glance's timestamp format: second precision, `Z`.
pub fn glance_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An image: every base field (null when unset), links, then extra properties, and
/// `stores` when several stores are configured and some hold the data.
pub fn image(img: &Image, stores: &Stores) -> Value {
    let mut m = Map::new();
    for (k, v) in &img.properties {
        m.insert(k.clone(), json!(v));
    }
    let id = img.id.to_string();
    let base = json!({
        "id": id,
        "name": img.name,
        "status": img.status.as_str(),
        "visibility": img.visibility.as_str(),
        "protected": img.protected,
        "os_hidden": img.os_hidden,
        "owner": img.owner,
        "checksum": img.data.checksum,
        "os_hash_algo": img.data.hash_algo,
        "os_hash_value": img.data.hash_value,
        "size": img.data.size,
        "virtual_size": img.data.virtual_size,
        "min_disk": img.min_disk,
        "min_ram": img.min_ram,
        "container_format": img.container_format.map(|f| f.as_str()),
        "disk_format": img.disk_format.map(|f| f.as_str()),
        "created_at": glance_time(img.created_at),
        "updated_at": glance_time(img.updated_at),
        "tags": img.tags.iter().collect::<Vec<_>>(),
        "self": format!("/v2/images/{id}"),
        "file": format!("/v2/images/{id}/file"),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(b) = base {
        m.extend(b);
    }
    if let Some(field) = stores.field(&img.data.stores) {
        m.insert("stores".into(), json!(field));
    }
    Value::Object(m)
}

/// A member.
pub fn member(m: &Member) -> Value {
    json!({
        "member_id": m.member_id,
        "image_id": m.image_id.to_string(),
        "status": m.status.as_str(),
        "created_at": glance_time(m.created_at),
        "updated_at": glance_time(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}

/// The import parameters of `glance-download`, shown in its task's `input` as sent.
const GLANCE_DOWNLOAD_PARAMS: [&str; 3] = [
    "glance_image_id",
    "glance_region",
    "glance_service_interface",
];

/// A job as a Glance task (an import job: `api_image_import` or `import`), every field.
pub fn task(j: &Job) -> Value {
    let mut view = task_stub(j);
    let image_id = j.image_id().map(|i| i.to_string());
    // Source URLs are shown without credentials or query strings (presigned tokens).
    let redacted = |uri: &Value| match uri {
        Value::String(s) => json!(redact_url(s)),
        other => other.clone(),
    };
    let input = match j.kind {
        JobKind::TaskImport => {
            let mut input = j.payload.get(TASK_INPUT).cloned().unwrap_or(Value::Null);
            if let Some(from) = input.get_mut("import_from") {
                *from = redacted(from);
            }
            input
        }
        _ => {
            let mut method = json!({"name": j.payload.get("method")});
            if let Some(uri) = j.payload.get("uri") {
                method["uri"] = redacted(uri);
            }
            for key in GLANCE_DOWNLOAD_PARAMS {
                if let Some(v) = j.payload.get(key) {
                    method[key] = v.clone();
                }
            }
            json!({"image_id": image_id, "import_req": {"method": method}, "backend": [null]})
        }
    };
    view["input"] = input;
    view["result"] = match (j.status, &image_id) {
        (JobStatus::Success, Some(id)) => json!({"image_id": id}),
        _ => Value::Null,
    };
    view["message"] = json!(redact_urls_in(j.fail_reason.as_deref().unwrap_or_default()));
    // Glance records an image id only for the imports of an existing image.
    if j.kind == JobKind::ImageImport
        && let Some(id) = image_id
    {
        view["image_id"] = json!(id);
    }
    for key in ["request_id", "user_id"] {
        if let Some(v) = j.payload.get(key).filter(|v| v.is_string()) {
            view[key] = v.clone();
        }
    }
    view
}

/// A task as `GET /v2/images/{id}/tasks` shows it: Glance returns the task rows there,
/// so every column is present, null when unset.
pub fn task_row(j: &Job) -> Value {
    let mut view = task(j);
    for key in ["image_id", "request_id", "user_id", "expires_at"] {
        if view.get(key).is_none() {
            view[key] = Value::Null;
        }
    }
    view
}

/// A task as Glance lists it: without `input`, `result` and `message`. Absent values
/// are left out, not null, as Glance does (its schema types them as strings).
pub fn task_stub(j: &Job) -> Value {
    let status = match j.status {
        JobStatus::Init => "pending",
        JobStatus::Running => "processing",
        JobStatus::Success => "success",
        JobStatus::Fail => "failure",
    };
    let kind = match j.kind {
        JobKind::TaskImport => "import",
        _ => "api_image_import",
    };
    let updated = j.end_time.or(j.begin_time).unwrap_or(j.created_at);
    let mut view = json!({
        "id": j.id,
        "type": kind,
        "status": status,
        "owner": j.project_id,
        "created_at": glance_time(j.created_at),
        "updated_at": glance_time(updated),
        "self": format!("/v2/tasks/{}", j.id),
        "schema": "/v2/schemas/task",
    });
    if let Some(end) = j.end_time {
        view["expires_at"] = json!(glance_time(end + TASK_TIME_TO_LIVE));
    }
    view
}

/// How long Glance keeps a finished task (`task_time_to_live`, 48 hours).
const TASK_TIME_TO_LIVE: time::Duration = time::Duration::hours(48);

/// The minor versions ims implements, newest first; the first is CURRENT.
pub const VERSIONS: &[&str] = &[
    "v2.12", "v2.11", "v2.10", "v2.9", "v2.8", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2",
    "v2.1", "v2.0",
];

/// The version list served by `GET /` (300) and `GET /versions` (200).
pub fn versions(base: &str) -> Value {
    let list: Vec<Value> = VERSIONS.iter().map(|v| version(base, v)).collect();
    json!({ "versions": list })
}

/// One version document; the newest is `CURRENT`.
pub fn version(base: &str, id: &str) -> Value {
    let status = if id == VERSIONS[0] {
        "CURRENT"
    } else {
        "SUPPORTED"
    };
    json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/v2/")}]})
}
