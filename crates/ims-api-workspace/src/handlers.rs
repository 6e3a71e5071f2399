//! One handler per Workspace image-server operation: read the request, call one
//! `ServerService` use case, render the answer.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use ims_domain::principal::Principal;
use ims_domain::server::{NewCapture, ServerId, ServerJobFilter, ServerPatch, ServerQuery};
use ims_http::Services;
use serde_json::{Value, json};

use crate::error::WksError;
use crate::wire;

type Res<T> = Result<T, WksError>;

/// The authenticated caller (AK/SK signature or `X-Auth-Token`) and the request body.
pub struct Signed {
    who: Principal,
    body: axum::body::Bytes,
}

impl FromRequest<Services> for Signed {
    type Rejection = WksError;

    async fn from_request(req: Request, svc: &Services) -> Result<Self, Self::Rejection> {
        let (who, body) = ims_http::signed::authenticate_with_body(svc, req).await?;
        Ok(Signed { who, body })
    }
}

impl Signed {
    /// The body as `T`; empty or malformed is `WKS.00211102`.
    fn json<T: serde::de::DeserializeOwned>(&self) -> Res<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| WksError::invalid(format!("The request body is invalid: {e}")))
    }

    /// A `{project_id}` path segment must be the caller's project (the SDK's
    /// unsubstituted placeholder stands for it).
    fn check_project(&self, project_id: &str) -> Res<()> {
        if project_id != self.who.project_id && project_id != "{project_id}" {
            return Err(WksError::invalid(
                "The project ID in the path is not the caller's project.",
            ));
        }
        Ok(())
    }
}

/// A query integer within `range`, or `default` when absent.
fn number(
    q: &HashMap<String, String>,
    key: &str,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
) -> Res<u64> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                WksError::invalid(format!(
                    "{key} must be an integer from {} to {}.",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

/// Workspace's paging: `offset` (default 0) and `limit` 1–100 (default 10).
fn page(q: &HashMap<String, String>) -> Res<(u64, u64)> {
    Ok((
        number(q, "offset", 0..=u64::from(u32::MAX), 0)?,
        number(q, "limit", 1..=100, 10)?,
    ))
}

/// `POST /v1/{project_id}/image-servers` → `{"job_id"}`.
pub async fn create(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let req: wire::CreateReq = caller.json()?;
    let (_, job) = svc.servers.create(&caller.who, req.into()).await?;
    Ok(Json(json!({"job_id": job.id})))
}

/// `GET /v1/{project_id}/image-servers` → `{"count", "items"}`.
pub async fn list(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let id = match q.get("server_id") {
        Some(raw) => {
            Some(ServerId::parse(raw).ok_or_else(|| WksError::invalid("server_id is not an id."))?)
        }
        None => None,
    };
    let (offset, limit) = page(&q)?;
    let query = ServerQuery {
        project_id: String::new(),
        name_contains: q.get("server_name").cloned().filter(|n| !n.is_empty()),
        id,
        offset,
        limit,
    };
    let (servers, count) = svc.servers.list(&caller.who, query).await?;
    let items: Vec<Value> = servers.iter().map(wire::server).collect();
    Ok(Json(json!({"count": count, "items": items})))
}

/// `GET /v1/{project_id}/image-servers/{server_id}` → the ImageServer.
pub async fn show(
    State(svc): State<Services>,
    Path((project_id, server_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let server = svc.servers.get(&caller.who, &server_id).await?;
    Ok(Json(wire::server(&server)))
}

/// `PATCH /v1/{project_id}/image-servers/{server_id}` → 200, empty.
pub async fn update(
    State(svc): State<Services>,
    Path((project_id, server_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let req: wire::UpdateReq = caller.json()?;
    let patch = ServerPatch {
        name: req.name,
        description: req.description,
    };
    svc.servers.update(&caller.who, &server_id, patch).await?;
    Ok(Json(json!({})))
}

/// `PATCH /v1/{project_id}/image-servers/actions/batch-delete` → `{"job_id"}` (unknown
/// ids ignored; with none known, no job and an empty id).
pub async fn batch_delete(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let req: wire::DeleteReq = caller.json()?;
    let job = svc
        .servers
        .delete(&caller.who, &req.items, req.recursive)
        .await?;
    Ok(Json(
        json!({"job_id": job.map(|j| j.id).unwrap_or_default()}),
    ))
}

/// `POST /v1/{project_id}/image-servers/{server_id}/actions/recreate-image` →
/// `{"job_id"}`.
pub async fn recreate_image(
    State(svc): State<Services>,
    Path((project_id, server_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let req: wire::CaptureReq = caller.json()?;
    let capture = NewCapture {
        name: req.name,
        description: req.description,
        execute_sysprep: req.execute_sysprep,
        image_id: None,
    };
    let (_, job) = svc
        .servers
        .capture(&caller.who, &server_id, capture)
        .await?;
    Ok(Json(json!({"job_id": job.id})))
}

/// The job filter of a jobs or sub-jobs query (`job_type`, `status`, `job_id`).
fn job_filter(q: &HashMap<String, String>) -> Res<ServerJobFilter> {
    let kinds = match q.get("job_type") {
        Some(t) => vec![
            wire::kind_of(t).ok_or_else(|| WksError::invalid(format!("Unknown job_type {t}.")))?,
        ],
        None => Vec::new(),
    };
    let status = match q.get("status") {
        Some(s) => Some(
            wire::status_of(s).ok_or_else(|| WksError::invalid(format!("Unknown status {s}.")))?,
        ),
        None => None,
    };
    Ok(ServerJobFilter {
        kinds,
        status,
        job_id: q.get("job_id").cloned(),
    })
}

/// `GET /v1/{project_id}/image-server-jobs` → `{"count", "items"}`.
pub async fn list_jobs(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let filter = job_filter(&q)?;
    let (offset, limit) = page(&q)?;
    let (jobs, count) = svc
        .servers
        .jobs(&caller.who, &filter, offset, limit)
        .await?;
    let items: Vec<Value> = jobs.iter().map(wire::job_info).collect();
    Ok(Json(json!({"count": count, "items": items})))
}

/// `GET /v1/{project_id}/image-server-jobs/{job_id}` → the job with its sub-jobs.
pub async fn show_job(
    State(svc): State<Services>,
    Path((project_id, job_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let job = svc.servers.job(&caller.who, &job_id).await?;
    Ok(Json(wire::job(&job)))
}

/// The sub-jobs of the jobs `q` selects (`job_type` is required, as Workspace has it).
async fn sub_jobs(svc: &Services, caller: &Signed, q: &HashMap<String, String>) -> Res<Vec<Value>> {
    if !q.contains_key("job_type") {
        return Err(WksError::invalid("job_type is required."));
    }
    let filter = job_filter(q)?;
    let (jobs, _) = svc.servers.jobs(&caller.who, &filter, 0, u64::MAX).await?;
    Ok(jobs.iter().flat_map(wire::sub_jobs).collect())
}

/// `GET /v1/{project_id}/image-server-sub-jobs` → `{"count", "items"}`.
pub async fn list_sub_jobs(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    let all = sub_jobs(&svc, &caller, &q).await?;
    let (offset, limit) = page(&q)?;
    let items: Vec<Value> = all
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .cloned()
        .collect();
    Ok(Json(json!({"count": all.len(), "items": items})))
}

/// `GET /v1/{project_id}/image-server-sub-jobs/actions/count` → `{"count"}`.
pub async fn count_sub_jobs(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    caller: Signed,
) -> Res<Json<Value>> {
    caller.check_project(&project_id)?;
    Ok(Json(
        json!({"count": sub_jobs(&svc, &caller, &q).await?.len()}),
    ))
}
