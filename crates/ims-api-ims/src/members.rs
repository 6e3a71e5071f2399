//! IMS batch sharing routes: `POST`, `DELETE` and `PUT /v1/cloudimages/members`.

use axum::Json;
use axum::extract::{Path, State};
use ims_domain::member::MemberStatus;
use ims_domain::service::SharingChange;
use ims_http::Services;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::convert;
use crate::error::ImsError;
use crate::extract::Signed;
use crate::handlers::check_project;

type Res<T> = Result<T, ImsError>;

/// `{"images": [...], "projects": [...]}` (`domains` and `organizations` are not modelled).
#[derive(Deserialize)]
pub struct ShareBody {
    images: Vec<String>,
    #[serde(default)]
    projects: Vec<String>,
}

/// `POST /v1/cloudimages/members`: share images with projects.
pub async fn add(State(svc): State<Services>, caller: Signed) -> Res<Json<Value>> {
    share(&svc, caller, SharingChange::Add).await
}

/// `DELETE /v1/cloudimages/members`: stop sharing images with projects.
pub async fn remove(State(svc): State<Services>, caller: Signed) -> Res<Json<Value>> {
    share(&svc, caller, SharingChange::Remove).await
}

async fn share(svc: &Services, caller: Signed, change: SharingChange) -> Res<Json<Value>> {
    let body: ShareBody = caller.json()?;
    let job = svc
        .images
        .change_sharing(&caller.who, &body.images, &body.projects, change)
        .await?;
    Ok(convert::job_started(&job))
}

/// `{"images": [...], "project_id": …, "status": "accepted"|"rejected"}`.
#[derive(Deserialize)]
pub struct AnswerBody {
    images: Vec<String>,
    project_id: String,
    status: String,
}

/// `PUT /v1/cloudimages/members`: the caller's project accepts or rejects shares.
pub async fn answer(State(svc): State<Services>, caller: Signed) -> Res<Json<Value>> {
    let body: AnswerBody = caller.json()?;
    check_project(&caller, &body.project_id)?;
    let status = match body.status.as_str() {
        "accepted" => MemberStatus::Accepted,
        "rejected" => MemberStatus::Rejected,
        other => {
            return Err(ImsError::bad_request(format!(
                "status must be accepted or rejected, not {other}"
            )));
        }
    };
    let job = svc
        .images
        .change_sharing(
            &caller.who,
            &body.images,
            &[],
            SharingChange::Answer(status),
        )
        .await?;
    Ok(convert::job_started(&job))
}

/// `GET /v1/{project_id}/cloudimages/{image_id}/members`: all members for the owner, only
/// itself for a member.
pub async fn list(
    State(svc): State<Services>,
    Path((project_id, image_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<Json<Value>> {
    check_project(&caller, &project_id)?;
    let members = svc.images.members(&caller.who, &image_id).await?;
    Ok(Json(json!({
        "members": members.iter().map(convert::member).collect::<Vec<_>>(),
        "page_info": {"current_count": members.len()},
        "schema": "/v2/schemas/members",
    })))
}

/// `GET /v1/{project_id}/cloudimages/{image_id}/members/{member_id}`.
pub async fn show(
    State(svc): State<Services>,
    Path((project_id, image_id, member_id)): Path<(String, String, String)>,
    caller: Signed,
) -> Res<Json<Value>> {
    check_project(&caller, &project_id)?;
    let member = svc
        .images
        .member(&caller.who, &image_id, &member_id)
        .await?;
    Ok(Json(convert::member(&member)))
}
