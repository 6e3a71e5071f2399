//! Glance JSON shapes for images, members, tasks and version documents.

use ims_domain::image::Image;
use ims_domain::job::{Job, JobStatus};
use ims_domain::member::Member;
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

/// An image: every base field (null when unset), links, then extra properties.
pub fn image(img: &Image) -> Value {
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

/// A job as a Glance task.
pub fn task(j: &Job) -> Value {
    let status = match j.status {
        JobStatus::Init => "pending",
        JobStatus::Running => "processing",
        JobStatus::Success => "success",
        JobStatus::Fail => "failure",
    };
    let updated = j.end_time.or(j.begin_time).unwrap_or(j.created_at);
    json!({
        "id": j.id,
        "type": "api_image_import",
        "status": status,
        "owner": j.project_id,
        "image_id": j.image_id.map(|i| i.to_string()),
        "input": {"image_id": j.image_id.map(|i| i.to_string()), "import_req": {"method": j.payload.clone()}},
        "result": if j.status == JobStatus::Success { json!({"image_id": j.image_id.map(|i| i.to_string())}) } else { Value::Null },
        "message": j.fail_reason.clone().unwrap_or_default(),
        "created_at": glance_time(j.created_at),
        "updated_at": glance_time(updated),
        "expires_at": j.end_time.map(|t| glance_time(t + time::Duration::hours(48))),
        "request_id": null,
        "user_id": null,
        "schema": "/v2/schemas/task",
    })
}

/// The minor versions ims implements; the last is CURRENT.
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
