//! The OpenStack Image API v2 dialect (Glance-compatible). Handlers translate requests
//! into one `ImageService` (or `MetadefService`) call each and render results in Glance's
//! shapes; the exception is a download with a bad `Range`, which loads the image first so
//! that the range error is shown only for an image the caller can see.

mod convert;
mod error;
mod handlers;
mod metadefs;
mod schemas;

use axum::Router;
use axum::routing::{get, post, put};
use ims_http::Services;

pub use convert::VERSIONS;
pub use error::{GlanceError, glance_body, negotiate};
pub use handlers::accept_huawei_signatures;

/// The image API routes, plus the version documents at `/` and `/versions`.
pub fn router() -> Router<Services> {
    use handlers::{data, images, info, members, tasks};
    Router::new()
        .route("/", get(info::root_versions))
        .route("/versions", get(info::versions))
        .route("/v2", get(info::version))
        .route("/v2/", get(info::version))
        .route(
            "/v2/images",
            get(images::list_images).post(images::create_image),
        )
        .route(
            "/v2/images/{id}",
            get(images::get_image)
                .patch(images::update_image)
                .delete(images::delete_image),
        )
        .route(
            "/v2/images/{id}/actions/deactivate",
            post(images::deactivate_image),
        )
        .route(
            "/v2/images/{id}/actions/reactivate",
            post(images::reactivate_image),
        )
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(images::add_tag).delete(images::remove_tag),
        )
        .route(
            "/v2/images/{id}/file",
            put(data::upload_image_data).get(data::download_image_data),
        )
        .route("/v2/images/{id}/stage", put(data::stage_image_data))
        .route("/v2/images/{id}/import", post(data::import_image))
        .route("/v2/images/{id}/tasks", get(data::list_image_tasks))
        .route(
            "/v2/images/{id}/members",
            get(members::list_members).post(members::add_member),
        )
        .route(
            "/v2/images/{id}/members/{member}",
            get(members::get_member)
                .put(members::update_member)
                .delete(members::remove_member),
        )
        .route("/v2/tasks", get(tasks::list_tasks).post(tasks::create_task))
        .route(
            "/v2/tasks/{id}",
            get(tasks::get_task).delete(tasks::delete_task),
        )
        .route("/v2/info/import", get(info::import_info))
        .route("/v2/info/stores", get(info::stores_info))
        .route("/v2/info/stores/detail", get(info::stores_detail))
        .route(
            "/v2/stores/{store}/{id}",
            axum::routing::delete(images::delete_from_store),
        )
        .route("/v2/info/usage", get(info::usage_info))
        .route("/v2/schemas/{name}", get(info::schema))
        .merge(metadefs::router())
        .layer(axum::middleware::from_fn(error::negotiate))
}
