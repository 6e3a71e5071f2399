//! The jobs page and the live feed of job progress: Server-Sent Events that a page
//! listens to while it is open. The feed reads the catalog once a second per open page
//! and sends only rows that changed; with no page open, nothing runs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use ims_domain::job::{Job, SubjectKind};
use ims_http::Services;
use serde::{Deserialize, Serialize};

use crate::pages::{self, Nav, render, when};
use crate::session::Session;

/// Jobs a page lists and the feed watches.
const PAGE_JOBS: u32 = 100;

/// How often the feed looks at the catalog.
const FEED_TICK: Duration = Duration::from_secs(1);

/// One job as the pages show it (and the feed sends it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) progress: u8,
    pub(crate) subject: String,
    pub(crate) subject_href: Option<String>,
    pub(crate) created: String,
    pub(crate) reason: String,
}

impl From<&Job> for JobRow {
    fn from(j: &Job) -> Self {
        let (subject, subject_href) = match &j.subject {
            Some(s) if s.kind == SubjectKind::Image => (
                format!("image {}", s.id),
                Some(format!("/console/images/{}", s.id)),
            ),
            Some(s) => (format!("{} {}", s.kind, s.id), None),
            None => (String::new(), None),
        };
        JobRow {
            id: j.id.clone(),
            kind: j.kind.to_string(),
            status: j.status.to_string(),
            progress: j.progress,
            subject,
            subject_href,
            created: when(j.created_at),
            reason: j.fail_reason.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    nav: Option<Nav>,
    admin: bool,
    jobs: Vec<JobRow>,
    live: bool,
}

/// `GET /console/jobs`.
pub async fn list(State(svc): State<Services>, session: Session) -> Response {
    match svc.images.recent_jobs(&session.who, PAGE_JOBS).await {
        Ok(jobs) => render(&JobsPage {
            nav: Nav::of(&session, "jobs"),
            admin: session.who.is_admin(),
            jobs: jobs.iter().map(JobRow::from).collect(),
            live: true,
        }),
        Err(e) => pages::error_page(&e),
    }
}

/// What the feed watches: one image's jobs, or the caller's recent ones.
#[derive(Deserialize)]
pub struct Watch {
    image: Option<String>,
}

/// `GET /console/jobs/events`: `job` events, each a [`JobRow`] as JSON, for every job
/// that appeared or changed since the previous look (all of them on the first).
pub async fn events(
    State(svc): State<Services>,
    session: Session,
    Query(watch): Query<Watch>,
) -> Response {
    Sse::new(feed(svc, session, watch.image))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn feed(
    svc: Services,
    session: Session,
    image: Option<String>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let state = (
        svc,
        session,
        image,
        HashMap::<String, JobRow>::new(),
        Vec::<Event>::new(),
    );
    futures::stream::unfold(
        state,
        |(svc, session, image, mut seen, mut pending)| async move {
            loop {
                if let Some(event) = pending.pop() {
                    return Some((Ok(event), (svc, session, image, seen, pending)));
                }
                if !seen.is_empty() {
                    tokio::time::sleep(FEED_TICK).await;
                }
                // A revoked or lapsed session ends the feed.
                svc.identity.principal(&session.token).await.ok()?;
                let jobs = match &image {
                    Some(id) => svc.images.image_job_history(&session.who, id).await,
                    None => svc.images.recent_jobs(&session.who, PAGE_JOBS).await,
                };
                let Ok(jobs) = jobs else {
                    tokio::time::sleep(FEED_TICK).await;
                    continue;
                };
                for row in jobs.iter().map(JobRow::from) {
                    if seen.get(&row.id) != Some(&row) {
                        if let Ok(event) = Event::default().event("job").json_data(&row) {
                            pending.push(event);
                        }
                        seen.insert(row.id.clone(), row);
                    }
                }
                if seen.is_empty() {
                    tokio::time::sleep(FEED_TICK).await;
                }
            }
        },
    )
}
