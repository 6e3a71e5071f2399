//! The web console at `/console/`, a dialect like the others: server-rendered pages
//! (askama templates, escaped) over the domain's use cases, with no rules of its own.
//! A person signs in with Keystone's password flow; the token lives in an `HttpOnly`,
//! `SameSite=Strict` cookie and every change carries a CSRF token (see [`session`]).
//! Lists and pages read without JavaScript; one small script adds streamed uploads
//! with a progress bar and live job progress over Server-Sent Events.

mod admin;
mod assets;
mod images;
mod jobs;
mod pages;
mod resources;
pub mod session;
mod signin;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post, put};
use ims_http::Services;

/// The console's routes, under `/console`.
pub fn router() -> Router<Services> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/images") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/images") }),
        )
        .route("/console/static/console.css", get(assets::css))
        .route("/console/static/console.js", get(assets::js))
        .route("/console/signin", get(signin::form).post(signin::sign_in))
        .route("/console/signout", post(signin::sign_out))
        .route("/console/inspect", post(assets::inspect))
        .route("/console/images", get(images::list).post(images::create))
        .route("/console/images/new", get(images::new_form))
        .route("/console/images/{id}", get(images::detail))
        .route("/console/images/{id}/file", put(images::upload))
        .route("/console/images/{id}/edit", post(images::edit))
        .route("/console/images/{id}/{action}", post(images::act))
        .route(
            "/console/images/{id}/delete",
            get(images::confirm_delete).post(images::delete),
        )
        .route("/console/jobs", get(jobs::list))
        .route("/console/resources", get(resources::page))
        .route("/console/{kind}/{id}/image", post(resources::make_image))
        .route("/console/admin", get(admin::page))
        .route("/console/admin/{what}", post(admin::create))
        .route("/console/admin/{what}/{id}/delete", post(admin::delete))
        .route("/console/jobs/events", get(jobs::events))
        .layer(axum::middleware::map_response(guard_pages))
}

/// Every console response: only the console's own script and style run, no site may
/// frame it (clickjacking), and nothing is cached (pages show one session's data).
async fn guard_pages(mut resp: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
