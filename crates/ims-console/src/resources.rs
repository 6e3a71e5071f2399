//! The volumes and image servers of the caller's project: their status, and an image
//! made from a ready volume or captured from a running (or built) server, each a job
//! whose progress the jobs page shows.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use ims_domain::server::{NewCapture, ServerQuery, ServerStatus};
use ims_domain::volume::{NewImageFromVolume, VolumeQuery, VolumeStatus};
use ims_http::Services;
use serde::Deserialize;

use crate::pages::{self, Nav, render, size, when};
use crate::session::Session;

/// A volume or a server, as the page lists it.
pub struct ResourceRow {
    id: String,
    name: String,
    status: String,
    detail: String,
    created: String,
    /// Whether an image can be made from it now.
    ready: bool,
}

#[derive(Template)]
#[template(path = "resources.html")]
struct ResourcesPage {
    nav: Option<Nav>,
    csrf: String,
    volumes: Vec<ResourceRow>,
    servers: Vec<ResourceRow>,
    error: Option<String>,
}

/// `GET /console/resources`.
pub async fn page(State(svc): State<Services>, session: Session) -> Response {
    resources_page(&svc, &session, None).await
}

async fn resources_page(svc: &Services, session: &Session, error: Option<String>) -> Response {
    let who = &session.who;
    let volumes = svc.volumes.list(who, VolumeQuery::default()).await;
    let servers = svc
        .servers
        .list(
            who,
            ServerQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await;
    let (volumes, servers) = match (volumes, servers) {
        (Ok(v), Ok((s, _))) => (v, s),
        (Err(e), _) | (_, Err(e)) => return pages::error_page(&e),
    };
    let volumes = volumes
        .iter()
        .map(|v| ResourceRow {
            id: v.id.to_string(),
            name: v.name.clone(),
            status: v.status.to_string(),
            detail: format!("{} {}", size(Some(v.size)), v.format),
            created: when(v.created_at),
            ready: v.status == VolumeStatus::Ready,
        })
        .collect();
    let servers = servers
        .iter()
        .map(|s| ResourceRow {
            id: s.id.to_string(),
            name: s.name.clone(),
            status: s.status.to_string(),
            detail: s.status_details.clone(),
            created: when(s.created_at),
            ready: matches!(s.status, ServerStatus::Active | ServerStatus::Built),
        })
        .collect();
    let status = if error.is_some() {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    let page = ResourcesPage {
        nav: Nav::of(session, "resources"),
        csrf: session.csrf.clone(),
        volumes,
        servers,
        error,
    };
    (status, render(&page)).into_response()
}

/// The "make an image" forms.
#[derive(Deserialize)]
pub struct ImageFrom {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
}

/// `POST /console/{kind}/{id}/image`: an image from a volume (`volumes`) or a capture of
/// a server (`servers`); the browser goes to the jobs page to watch it.
pub async fn make_image(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<ImageFrom>,
) -> Response {
    if let Err(refused) = session.check(&headers, f.csrf.as_deref()) {
        return refused.into_response();
    }
    let who = &session.who;
    let name = f.name.trim().to_string();
    let done = match kind.as_str() {
        "volumes" => {
            let req = NewImageFromVolume {
                name,
                ..Default::default()
            };
            svc.volumes.create_image(who, &id, req).await.map(|_| ())
        }
        "servers" => {
            let req = NewCapture {
                name,
                ..Default::default()
            };
            svc.servers.capture(who, &id, req).await.map(|_| ())
        }
        _ => Err(ims_domain::Error::not_found(
            ims_domain::Entity::Volume,
            &id,
        )),
    };
    match done {
        Ok(()) => Redirect::to("/console/jobs").into_response(),
        Err(e) => resources_page(&svc, &session, Some(pages::message(&e))).await,
    }
}
