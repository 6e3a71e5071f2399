//! The administrators' page: projects with their image usage against the quotas, users
//! and their roles, and AK/SK credentials (a new secret is shown once, on the answer to
//! its creation, and never again). The identity use cases refuse anyone but an admin;
//! this page only shows what they answer.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ims_domain::principal::Principal;
use ims_http::Services;
use serde::Deserialize;

use crate::pages::{self, Nav, render, size, when};
use crate::session::Session;

/// A project's row: who it is and what its images use.
pub struct ProjectRow {
    id: String,
    name: String,
    description: String,
    images: String,
    bytes: String,
}

/// A user's row.
pub struct UserRow {
    id: String,
    name: String,
    default_project: String,
    /// Its roles in its default project.
    roles: String,
    credentials: Vec<(String, String, String)>,
}

/// A credential just made: its secret, shown this once.
pub struct NewSecret {
    access: String,
    secret: String,
    project: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Option<Nav>,
    csrf: String,
    error: Option<String>,
    created: Option<NewSecret>,
    quota_images: String,
    quota_bytes: String,
    projects: Vec<ProjectRow>,
    users: Vec<UserRow>,
    roles: Vec<String>,
}

/// `GET /console/admin`.
pub async fn page(State(svc): State<Services>, session: Session) -> Response {
    admin_page(&svc, &session, None, None).await
}

async fn admin_page(
    svc: &Services,
    session: &Session,
    error: Option<String>,
    created: Option<NewSecret>,
) -> Response {
    let who = &session.who;
    match gather(svc, who).await {
        Ok((quotas, projects, users, roles)) => {
            let status = if error.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let page = AdminPage {
                nav: Nav::of(session, "admin"),
                csrf: session.csrf.clone(),
                error,
                created,
                quota_images: quotas
                    .image_count
                    .map_or("unlimited".into(), |n| n.to_string()),
                quota_bytes: quotas
                    .image_size_total
                    .map_or("unlimited".into(), |b| size(Some(b))),
                projects,
                users,
                roles,
            };
            (status, render(&page)).into_response()
        }
        Err(e) => pages::error_page(&e),
    }
}

type Gathered = (
    ims_domain::service::Quotas,
    Vec<ProjectRow>,
    Vec<UserRow>,
    Vec<String>,
);

/// Everything the page lists, through the use cases (each refuses a non-admin).
async fn gather(svc: &Services, who: &Principal) -> ims_domain::Result<Gathered> {
    let id = &svc.identity;
    let users = id.list_users(Some(who), None).await?;
    let mut quotas = None;
    let mut projects = Vec::new();
    for p in id.list_projects(Some(who), None).await? {
        let (usage, q) = svc.images.project_usage(who, &p.id).await?;
        quotas = Some(q);
        projects.push(ProjectRow {
            images: usage.image_count.to_string(),
            bytes: size(Some(usage.image_size)),
            id: p.id,
            name: p.name,
            description: p.description,
        });
    }
    let mut rows = Vec::new();
    for u in users {
        let credentials = id
            .list_credentials(Some(who), &u.id)
            .await?
            .into_iter()
            .map(|c| (c.access, c.project_id, when(c.created_at)))
            .collect();
        let roles = match &u.default_project_id {
            Some(project) => id.roles_of(project, &u.id).await?,
            None => Vec::new(),
        };
        rows.push(UserRow {
            roles: roles
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
                .join(", "),
            id: u.id,
            name: u.name,
            default_project: u.default_project_id.unwrap_or_default(),
            credentials,
        });
    }
    let roles = id
        .list_roles(None)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let quotas = match quotas {
        Some(q) => q,
        None => svc.images.usage(who).await?.1,
    };
    Ok((quotas, projects, rows, roles))
}

/// The page's forms; each uses the fields it needs.
#[derive(Deserialize)]
pub struct AdminForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    user: String,
}

/// `POST /console/admin/{what}`: `projects` (create), `users` (create, with a role in a
/// project) and `credentials` (create: the answer shows the secret once).
pub async fn create(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Path(what): Path<String>,
    Form(f): Form<AdminForm>,
) -> Response {
    if let Err(refused) = session.check(&headers, f.csrf.as_deref()) {
        return refused.into_response();
    }
    let (id, who) = (&svc.identity, Some(&session.who));
    let done = match what.as_str() {
        "projects" => id
            .create_project(who, f.name.trim(), None, &f.description)
            .await
            .map(|_| None),
        "users" => create_user(&svc, &session.who, &f).await.map(|()| None),
        "grants" => grant(&svc, &session.who, &f).await.map(|()| None),
        "credentials" => {
            let project = Some(f.project.trim()).filter(|p| !p.is_empty());
            id.create_credential(who, f.user.trim(), project)
                .await
                .map(|(c, secret)| {
                    Some(NewSecret {
                        access: c.access,
                        secret,
                        project: c.project_id,
                    })
                })
        }
        _ => Err(ims_domain::Error::not_found(
            ims_domain::Entity::Project,
            &what,
        )),
    };
    match done {
        Ok(None) => Redirect::to("/console/admin").into_response(),
        Ok(Some(secret)) => admin_page(&svc, &session, None, Some(secret)).await,
        Err(e) => admin_page(&svc, &session, Some(pages::message(&e)), None).await,
    }
}

/// A user whose default project is `project`, with `role` in it.
async fn create_user(svc: &Services, who: &Principal, f: &AdminForm) -> ims_domain::Result<()> {
    let id = &svc.identity;
    let project = id.project_id(f.project.trim()).await?;
    let user = id
        .create_user(Some(who), f.name.trim(), &f.password, None, Some(&project))
        .await?;
    let role = id.role_id(f.role.trim()).await?;
    id.grant(Some(who), &project, &user.id, &role).await
}

/// Gives a user (id or name) a role (id or name) in a project (id or name).
async fn grant(svc: &Services, who: &Principal, f: &AdminForm) -> ims_domain::Result<()> {
    let id = &svc.identity;
    let project = id.project_id(f.project.trim()).await?;
    let user = id.user_id(f.user.trim()).await?;
    let role = id.role_id(f.role.trim()).await?;
    id.grant(Some(who), &project, &user, &role).await
}

/// `POST /console/admin/{what}/{id}/delete`: a project, a user, or a credential.
pub async fn delete(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Path((what, target)): Path<(String, String)>,
    Form(f): Form<AdminForm>,
) -> Response {
    if let Err(refused) = session.check(&headers, f.csrf.as_deref()) {
        return refused.into_response();
    }
    let (id, who) = (&svc.identity, Some(&session.who));
    let done = match what.as_str() {
        "projects" => id.delete_project(who, &target).await,
        "users" => id.delete_user(who, &target).await,
        "credentials" => id.delete_credential(who, &target).await,
        _ => Err(ims_domain::Error::not_found(
            ims_domain::Entity::Project,
            &what,
        )),
    };
    match done {
        Ok(()) => Redirect::to("/console/admin").into_response(),
        Err(e) => admin_page(&svc, &session, Some(pages::message(&e)), None).await,
    }
}
