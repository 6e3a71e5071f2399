//! Domain values in IMS's JSON shapes.

use std::collections::BTreeMap;

use ims_domain::huawei::OsVersion;
use ims_domain::image::Image;
use ims_domain::job::{Job, JobErrorCode, JobKind};
use ims_domain::member::Member;
use ims_domain::ports::Usage;
use ims_domain::service::{ImageChange, Quotas};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// IMS times: UTC, ISO 8601 with milliseconds and `Z`.
pub fn time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

/// IMS image times: `YYYY-MM-DDTHH:MM:SSZ`.
fn image_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// An image as ListImages shows it: Glance's fields, `self`/`file`/`schema` links, and
/// every extra property (the `__*` attributes among them) as a string.
pub fn image(img: &Image) -> Value {
    let mut v = json!({
        "id": img.id.to_string(),
        "name": img.name,
        "status": img.status.as_str(),
        "visibility": img.visibility.as_str(),
        "owner": img.owner,
        "protected": img.protected,
        "container_format": img.container_format.map(|f| f.as_str()),
        "disk_format": img.disk_format.map(|f| f.as_str()),
        "min_disk": img.min_disk,
        "min_ram": img.min_ram,
        "size": img.data.size.unwrap_or(0),
        "virtual_size": img.data.virtual_size,
        "checksum": img.data.checksum,
        "tags": img.tags,
        "created_at": image_time(img.created_at),
        "updated_at": image_time(img.updated_at),
        "active_at": image_time(img.updated_at),
        "enterprise_project_id": "0",
        "self": format!("/v2/images/{}", img.id),
        "file": format!("/v2/images/{}/file", img.id),
        "schema": "/v2/schemas/image",
    });
    for (key, value) in &img.properties {
        v[key] = json!(value);
    }
    v
}

/// One UpdateImage operation → a domain change. Values may come as strings even for
/// integer attributes (the SDK types them all as strings; Terraform sends numbers).
pub fn patch_op(
    image: &Image,
    op: String,
    path: String,
    value: Option<Value>,
) -> Result<ImageChange, crate::ImsError> {
    let bad = |m: String| crate::ImsError::bad_request(m);
    let name = path
        .strip_prefix('/')
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| bad(format!("Invalid path {path}")))?
        .to_string();
    let value = || -> Result<Value, crate::ImsError> {
        let v = value
            .clone()
            .ok_or_else(|| bad(format!("Operation {op} needs a value")))?;
        Ok(match (&v, name.as_str()) {
            (Value::String(s), "min_ram" | "min_disk") => {
                s.parse::<u64>().map(Value::from).unwrap_or(v)
            }
            _ => v,
        })
    };
    match op.as_str() {
        "add" => {
            let v = value()?;
            Ok(ImageChange::Add(name, v))
        }
        "replace" if !ims_domain::service::attributes::exists(image, &name) => {
            Err(crate::ImsError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "IMG.0035",
                format!("The image has no attribute {name} to replace."),
            ))
        }
        "replace" => {
            let v = value()?;
            Ok(ImageChange::Replace(name, v))
        }
        "remove" => Ok(ImageChange::Remove(name)),
        other => Err(bad(format!("Unsupported operation {other}"))),
    }
}

/// A member of a shared image.
pub fn member(m: &Member) -> Value {
    json!({
        "image_id": m.image_id.to_string(),
        "member_id": m.member_id,
        "member_type": "project",
        "status": m.status.as_str(),
        "created_at": image_time(m.created_at),
        "updated_at": image_time(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}

/// The quota document; an unlimited quota shows as -1.
pub fn quota(usage: &Usage, quotas: &Quotas) -> Value {
    let limit = quotas
        .image_count
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    json!({"quotas": {"resources": [
        {"type": "image", "used": usage.image_count, "quota": limit, "min": 1, "max": limit.max(1)}
    ]}})
}

/// The OS version list grouped by platform, as a top-level array.
pub fn os_versions(list: &[OsVersion]) -> Value {
    let mut by_platform: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for v in list {
        by_platform.entry(&v.platform).or_default().push(json!({
            "platform": v.platform, "os_version": v.os_version, "os_version_key": v.os_version,
            "os_bit": v.os_bit, "os_type": v.os_type,
        }));
    }
    Value::Array(
        by_platform
            .into_iter()
            .map(|(platform, versions)| json!({"platform": platform, "version_list": versions}))
            .collect(),
    )
}

/// `{"key":…,"value":…}` in a request's `image_tags`.
#[derive(serde::Deserialize)]
pub struct ImageTag {
    key: String,
    value: String,
}

/// IMS tags, given either as strings (`key.value`, kept as they are) or as key/value
/// pairs (kept as `key=value`), never both.
pub fn tags(
    strings: Option<Vec<String>>,
    pairs: Option<Vec<ImageTag>>,
) -> Result<Vec<String>, crate::ImsError> {
    match (strings, pairs) {
        (Some(_), Some(_)) => Err(crate::ImsError::from(ims_domain::Error::field(
            "tags",
            "Use either tags or image_tags, not both.",
        ))),
        (Some(t), None) => Ok(t),
        (None, Some(p)) => Ok(p
            .into_iter()
            .map(|t| format!("{}={}", t.key, t.value))
            .collect()),
        (None, None) => Ok(Vec::new()),
    }
}

/// One entry of CreateImage's `data_images`: in the file variant, a data-disk file
/// imported beside the system image.
#[derive(serde::Deserialize)]
pub struct DataImageEntry {
    name: Option<String>,
    description: Option<String>,
    image_url: Option<String>,
    min_disk: Option<u64>,
    tags: Option<Vec<String>>,
    #[serde(default)]
    is_quick_import: bool,
    volume_id: Option<String>,
}

/// CreateImage's `data_images` as domain requests: each needs `name`, `image_url` and
/// `min_disk`; the volume variant needs volumes, which are not served.
pub fn data_images(
    entries: Vec<DataImageEntry>,
) -> Result<Vec<ims_domain::service::DataImageFromFile>, crate::ImsError> {
    entries
        .into_iter()
        .map(|e| {
            if e.volume_id.is_some() {
                return Err(ims_domain::Error::NotSupported(
                    "Data images from volumes are not supported here.".into(),
                )
                .into());
            }
            let (Some(name), Some(image_url), Some(min_disk)) = (e.name, e.image_url, e.min_disk)
            else {
                return Err(crate::ImsError::bad_request(
                    "Each of data_images needs name, image_url and min_disk.",
                ));
            };
            Ok(ims_domain::service::DataImageFromFile {
                name,
                description: e.description,
                os_type: None,
                image_url,
                min_disk,
                tags: e.tags.unwrap_or_default(),
                cmk_id: None,
                quick: e.is_quick_import,
            })
        })
        .collect()
}

/// ImportImageQuick's `license_type`: `platform` or `byol` (recorded nowhere: ims has
/// no licensing).
pub fn check_license_type(license: Option<&str>) -> Result<(), crate::ImsError> {
    match license {
        None | Some("platform") | Some("byol") => Ok(()),
        Some(other) => Err(crate::ImsError::bad_request(format!(
            "license_type {other} is invalid: use platform or byol."
        ))),
    }
}

/// The answer to a request that started (or recorded) a job: `{"job_id": …}`.
pub fn job_started(job: &Job) -> axum::Json<Value> {
    axum::Json(json!({ "job_id": job.id }))
}

/// Adds the sub-jobs of a rendered job: their ids and their full job objects.
pub fn attach_sub_jobs(job: &mut Value, results: Vec<Value>) {
    let ids: Vec<Value> = results.iter().map(|r| r["job_id"].clone()).collect();
    job["entities"]["sub_jobs_list"] = Value::Array(ids);
    job["entities"]["sub_jobs_result"] = Value::Array(results);
}

/// IMS's name for what a job does.
fn job_type(kind: JobKind) -> &'static str {
    match kind {
        JobKind::ImageImport | JobKind::TaskImport => "imsImportImageJob",
        JobKind::DataImageFromFile => "imsImportDataImageJob",
        JobKind::SystemImageFromFile => "imsImportImageJob",
        JobKind::ImageCopy => "imsCopyImageInRegionJob",
        JobKind::ImageExport => "imsNativeExportImageJob",
        JobKind::RegisterImage => "imsNativeImportImageJob",
        JobKind::AddMembers => "imsAddImageMembersJob",
        JobKind::RemoveMembers => "imsDelImageMembersJob",
        JobKind::UpdateMembers => "imsUpdateImageMembersJob",
        JobKind::ImageFromVolume => "imsVolumeCreateImageJob",
        // Workspace's image-server jobs, seen through IMS's job API.
        JobKind::ServerCreate => "workspaceCreateServerJob",
        JobKind::ServerCapture => "workspaceCreateServerImageJob",
        JobKind::ServerDelete => "workspaceDeleteServerJob",
    }
}

/// IMS's code for a job failure.
fn job_error_code(code: JobErrorCode) -> &'static str {
    match code {
        JobErrorCode::UnsupportedMedia => "IMG.0072",
        JobErrorCode::NotFound => "IMG.0057",
        JobErrorCode::TooLarge => "IMG.0059",
        JobErrorCode::InvalidInput => "IMG.0001",
        JobErrorCode::Gone => "IMG.0027",
        JobErrorCode::Unavailable | JobErrorCode::NoHandler | JobErrorCode::Internal => "IMG.0061",
    }
}

/// A job, as both ShowJob and ShowJobProgress render it.
pub fn job(job: &Job, image: Option<&Image>) -> Value {
    let mut entities = json!({"process_percent": f64::from(job.progress)});
    if let Some(id) = job.image_id() {
        entities["image_id"] = json!(id.to_string());
    }
    if let Some(name) = image.and_then(|i| i.name.as_deref()) {
        entities["image_name"] = json!(name);
    }
    if let Some(record) = ims_domain::service::SharingRecord::of(job) {
        let results: Vec<Value> = record
            .pairs
            .iter()
            .map(|p| json!({"image_id": p.image_id, "project_id": p.project_id, "status": "success"}))
            .collect();
        entities["results"] = Value::Array(results);
    }
    json!({
        "job_id": job.id,
        "job_type": job_type(job.kind),
        "status": job.status.as_str(),
        "begin_time": job.begin_time.map(time).unwrap_or_else(|| time(job.created_at)),
        "end_time": job.end_time.map(time),
        "error_code": job.error_code.map(job_error_code),
        "fail_reason": job.fail_reason,
        "entities": entities,
    })
}
