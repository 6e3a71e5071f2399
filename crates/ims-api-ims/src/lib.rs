//! The Huawei Cloud IMS dialect. It only translates: requests signed the way
//! huaweicloudsdkcore signs them (or carrying `X-Auth-Token`) become a `Principal`, IMS
//! request shapes become domain calls (one per request, except `update_image`, which
//! checks the image's status first, and the job views, which load each job's image),
//! and results and errors are rendered in IMS's
//! shapes (`{"error":{"code":"IMG.xxxx","message":…}}`, gateway `APIGW.0301` for
//! authentication).

mod convert;
mod error;
mod extract;
mod handlers;
mod members;
mod tags;

use axum::Router;
use axum::routing::{delete, get, patch, post, put};
use ims_http::Services;

pub use error::ImsError;

/// The IMS routes (state: [`Services`]).
pub fn router() -> Router<Services> {
    let mut router = Router::new()
        .route("/v1/cloudimages/quota", get(handlers::quota))
        .route("/v1/cloudimages/os_version", get(handlers::os_versions))
        .route("/v2/cloudimages", get(handlers::list_images))
        .route("/v2/cloudimages/action", post(handlers::create_image))
        .route("/v2.1/cloudimages/action", post(handlers::create_image))
        .route(
            "/v1/cloudimages/wholeimages/action",
            post(handlers::whole_image),
        )
        .route(
            "/v2/cloudimages/quickimport/action",
            post(handlers::quick_import),
        )
        .route(
            "/v2.1/cloudimages/quickimport/action",
            post(handlers::quick_import),
        )
        .route("/v2/cloudimages/{image_id}", patch(handlers::update_image))
        .route(
            "/v1/cloudimages/{image_id}/cross_region_copy",
            post(handlers::cross_region_copy),
        )
        .route(
            "/v1/cloudimages/{image_id}/upload",
            put(handlers::register_image),
        )
        .route("/v1/cloudimages/job/{job_id}", get(handlers::job_progress))
        .route("/v1/cloudimages/tags", get(tags::tenant).put(tags::put))
        .route(
            "/v1/{project_id}/cloudimages/{image_id}/members",
            get(members::list),
        )
        .route(
            "/v1/{project_id}/cloudimages/{image_id}/members/{member_id}",
            get(members::show),
        )
        .route(
            "/v1/cloudimages/members",
            post(members::add)
                .delete(members::remove)
                .put(members::answer),
        )
        .route(
            "/v1/{project_id}/cloudimages/{image_id}/tags/delete",
            delete(tags::delete_many),
        )
        .route("/v2/{project_id}/images/tags", get(tags::project))
        .route(
            "/v2/{project_id}/images/resource_instances/action",
            post(tags::search),
        )
        .route(
            "/v2/{project_id}/images/{image_id}/tags",
            get(tags::list).post(tags::add),
        )
        .route(
            "/v2/{project_id}/images/{image_id}/tags/action",
            post(tags::batch),
        )
        .route(
            "/v2/{project_id}/images/{image_id}/tags/{key}",
            delete(tags::delete),
        )
        .route("/v1/{project_id}/jobs/{job_id}", get(handlers::show_job));
    // The "safe mode" operations under /v2.1/ take the same requests as their /v1 twins.
    for version in ["v1", "v2.1"] {
        router = router
            .route(
                &format!("/{version}/cloudimages/dataimages/action"),
                post(handlers::create_data_image),
            )
            .route(
                &format!("/{version}/cloudimages/{{image_id}}/copy"),
                post(handlers::copy_image),
            )
            .route(
                &format!("/{version}/cloudimages/{{image_id}}/file"),
                post(handlers::export_image),
            );
    }
    router
}
