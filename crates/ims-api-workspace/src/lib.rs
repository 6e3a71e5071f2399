//! The Huawei Workspace (WorkspaceApp v1) dialect for image servers. It only translates:
//! requests signed the way huaweicloudsdkcore signs them (or carrying `X-Auth-Token`)
//! become a `Principal`, Workspace request shapes become `ServerService` calls, and
//! results and errors are rendered in Workspace's shapes
//! (`{"error_code":"WKS.xxxxxxxx","error_msg":…}`).

mod error;
mod handlers;
mod wire;

use axum::Router;
use axum::routing::{get, patch, post};
use ims_http::Services;

pub use error::WksError;

/// The Workspace routes (state: [`Services`]).
pub fn router() -> Router<Services> {
    Router::new()
        .route(
            "/v1/{project_id}/image-servers",
            post(handlers::create).get(handlers::list),
        )
        .route(
            "/v1/{project_id}/image-servers/actions/batch-delete",
            patch(handlers::batch_delete),
        )
        .route(
            "/v1/{project_id}/image-servers/{server_id}",
            get(handlers::show).patch(handlers::update),
        )
        .route(
            "/v1/{project_id}/image-servers/{server_id}/actions/recreate-image",
            post(handlers::recreate_image),
        )
        .route(
            "/v1/{project_id}/image-server-jobs",
            get(handlers::list_jobs),
        )
        .route(
            "/v1/{project_id}/image-server-jobs/{job_id}",
            get(handlers::show_job),
        )
        .route(
            "/v1/{project_id}/image-server-sub-jobs",
            get(handlers::list_sub_jobs),
        )
        .route(
            "/v1/{project_id}/image-server-sub-jobs/actions/count",
            get(handlers::count_sub_jobs),
        )
}
