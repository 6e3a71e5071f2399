//! Workspace's shapes: the request bodies as the SDK sends them, and the ImageServer,
//! job and sub-job objects as it reads them.

use ims_domain::job::{Job, JobKind, JobStatus};
use ims_domain::server::{
    AuthorizedAccount, ImageRef, ImageServer, NewServer, RootVolumeSpec, ServerJob, ServerSettings,
    ServerTag,
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::error::JOB_FAILED;

/// `CreateImageServerReq`. Required fields are not optional here, so a missing one is
/// the body's error (`WKS.00211102`).
#[derive(Debug, Deserialize)]
pub struct CreateReq {
    name: String,
    #[serde(default)]
    description: Option<String>,
    root_volume: RootVolumeSpec,
    image_ref: ImageRef,
    vpc_id: String,
    subnet_id: String,
    product_id: String,
    #[serde(default)]
    flavor_id: Option<String>,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    attach_apps: Option<Vec<String>>,
    authorize_accounts: Vec<AuthorizedAccount>,
    #[serde(default)]
    ou_name: Option<String>,
    #[serde(default)]
    is_vdi: Option<bool>,
    #[serde(default)]
    scheduler_hints: Option<Value>,
    #[serde(default)]
    extra_session_type: Option<String>,
    #[serde(default)]
    extra_session_size: Option<u32>,
    #[serde(default)]
    route_policy: Option<Value>,
    #[serde(default)]
    tags: Option<Vec<ServerTag>>,
    #[serde(default)]
    enterprise_project_id: Option<String>,
}

impl From<CreateReq> for NewServer {
    fn from(r: CreateReq) -> Self {
        NewServer {
            name: r.name,
            description: r.description,
            image_ref: r.image_ref,
            root_volume: r.root_volume,
            authorize_accounts: r.authorize_accounts,
            tags: r.tags.unwrap_or_default(),
            settings: ServerSettings {
                vpc_id: r.vpc_id,
                subnet_id: r.subnet_id,
                product_id: r.product_id,
                flavor_id: r.flavor_id,
                availability_zone: r.availability_zone.unwrap_or_default(),
                attach_apps: r.attach_apps.unwrap_or_default(),
                ou_name: r.ou_name,
                is_vdi: r.is_vdi.unwrap_or(false),
                route_policy: r.route_policy,
                scheduler_hints: r.scheduler_hints,
                extra_session_type: r.extra_session_type,
                extra_session_size: r.extra_session_size,
                enterprise_project_id: r.enterprise_project_id,
            },
        }
    }
}

/// `UpdateImageServerReq`.
#[derive(Debug, Deserialize)]
pub struct UpdateReq {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `BatchDeleteImageServerReq`.
#[derive(Debug, Deserialize)]
pub struct DeleteReq {
    pub items: Vec<String>,
    #[serde(default)]
    pub recursive: bool,
}

/// `CreateServerImageReq` (recreate-image).
#[derive(Debug, Deserialize)]
pub struct CaptureReq {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub execute_sysprep: bool,
    #[serde(default)]
    #[allow(dead_code)]
    pub enterprise_project_id: Option<String>,
}

/// Workspace's times: UTC with milliseconds, `2024-05-07T07:54:21.009Z`.
pub fn time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The `ImageServer` object, with what ims records besides (the root volume, network
/// and session settings, tags, and `status_details`), which the SDK ignores.
pub fn server(s: &ImageServer) -> Value {
    let mut v = json!({
        "id": s.id.to_string(),
        "name": s.name,
        "description": s.description,
        "image_ref": s.image_ref,
        "server_group_id": "",
        "app_group_id": "",
        "server_id": s.id.to_string(),
        "instance_id": s.id.to_string(),
        "image_id": s.image_id.map(|i| i.to_string()).unwrap_or_default(),
        "status": s.status.as_str(),
        "authorize_accounts": s.authorize_accounts,
        "create_time": time(s.created_at),
        "update_time": time(s.updated_at),
        "enterprise_project_id": s.settings.enterprise_project_id.clone().unwrap_or_else(|| "0".into()),
        "root_volume": s.root_volume,
        "volume_id": s.volume_id.map(|v| v.to_string()).unwrap_or_default(),
        "tags": s.tags,
        "status_details": s.status_details,
    });
    if let (Value::Object(map), Ok(Value::Object(settings))) =
        (&mut v, serde_json::to_value(&s.settings))
    {
        for (k, val) in settings {
            map.entry(k).or_insert(val);
        }
    }
    v
}

/// Workspace's name of a server job's kind.
pub fn job_type(kind: JobKind) -> &'static str {
    match kind {
        JobKind::ServerCapture => "CREATE_SERVER_IMAGE",
        JobKind::ServerDelete => "DELETE_SERVER",
        _ => "CREATE_SERVER",
    }
}

/// The kind a `job_type` query names, if it is one of the server kinds.
pub fn kind_of(job_type: &str) -> Option<JobKind> {
    match job_type {
        "CREATE_SERVER" => Some(JobKind::ServerCreate),
        "CREATE_SERVER_IMAGE" => Some(JobKind::ServerCapture),
        "DELETE_SERVER" => Some(JobKind::ServerDelete),
        _ => None,
    }
}

/// Workspace's job status.
pub fn status(job: &Job) -> &'static str {
    match job.status {
        JobStatus::Init => "WAITING",
        JobStatus::Running => "RUNNING",
        JobStatus::Success => "SUCCESS",
        JobStatus::Fail => "FAILED",
    }
}

/// The status a `status` query names.
pub fn status_of(status: &str) -> Option<JobStatus> {
    match status {
        "WAITING" => Some(JobStatus::Init),
        "RUNNING" => Some(JobStatus::Running),
        "SUCCESS" => Some(JobStatus::Success),
        "FAILED" => Some(JobStatus::Fail),
        _ => None,
    }
}

fn times(job: &Job) -> (Value, Value) {
    let t = |t: Option<OffsetDateTime>| t.map_or(Value::Null, |t| Value::String(time(t)));
    (t(job.begin_time.or(Some(job.created_at))), t(job.end_time))
}

/// An `ImageJobInfo` (list item).
pub fn job_info(j: &ServerJob) -> Value {
    let (begin, end) = times(&j.job);
    json!({
        "id": j.job.id,
        "job_type": job_type(j.job.kind),
        "begin_time": begin,
        "end_time": end,
        "status": status(&j.job),
        "sub_jobs_total": j.sub_jobs.len(),
    })
}

/// Every `ImageJobDetailInfo` of a job.
pub fn sub_jobs(j: &ServerJob) -> Vec<Value> {
    let (begin, end) = times(&j.job);
    let failed = j.job.status == JobStatus::Fail;
    j.sub_jobs
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "job_id": j.job.id,
                "job_type": job_type(j.job.kind),
                "project_id": j.job.project_id,
                "status": status(&j.job),
                "begin_time": begin,
                "end_time": end,
                "job_resource_info": {"resource_id": s.resource_id, "resource_name": s.resource_name},
                "job_execute_info": {
                    "error_code": if failed { JOB_FAILED } else { "" },
                    "error_message": if failed { j.job.fail_reason.clone().unwrap_or_default() } else { String::new() },
                },
            })
        })
        .collect()
}

/// `ShowImageJobResponse`.
pub fn job(j: &ServerJob) -> Value {
    let mut v = job_info(j);
    v["sub_jobs"] = Value::Array(sub_jobs(j));
    v
}
