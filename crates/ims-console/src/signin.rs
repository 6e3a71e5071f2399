//! Signing in (Keystone's password flow, the Default domain) and out.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use ims_domain::identity::service::NamedRef;
use ims_http::Services;
use serde::Deserialize;

use crate::pages::{Nav, render};
use crate::session::{self, Session};

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    nav: Option<Nav>,
    error: Option<String>,
    user: String,
    project: String,
    next: String,
}

/// `?next=` of the sign-in page: where to go afterwards.
#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /console/signin`.
pub async fn form(Query(q): Query<Next>) -> Response {
    render(&SignInPage {
        nav: None,
        error: None,
        user: String::new(),
        project: String::new(),
        next: session::safe_next(q.next.as_deref()),
    })
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct Credentials {
    user: String,
    password: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    next: Option<String>,
}

fn default_domain(name: &str) -> NamedRef {
    NamedRef {
        id: None,
        name: Some(name.to_string()),
        domain_id: None,
        domain_name: Some("Default".to_string()),
    }
}

/// `POST /console/signin`: a token for the user in the project (or their default one),
/// kept in the session cookie until it expires.
pub async fn sign_in(
    State(svc): State<Services>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Response {
    let next = session::safe_next(c.next.as_deref());
    if !session::same_origin(&headers) {
        return session::forbidden();
    }
    let project = c.project.trim();
    let scope = (!project.is_empty()).then(|| default_domain(project));
    let user = default_domain(c.user.trim());
    match svc
        .identity
        .authenticate(&user, &c.password, scope.as_ref())
        .await
    {
        Ok((token, info)) => {
            let lifetime = (info.record.expires_at - ims_domain::context::now()).whole_seconds();
            let secure = svc.public_url.starts_with("https://");
            let cookie = session::session_cookie(&token, lifetime, secure);
            session::with_cookie(Redirect::to(&next).into_response(), &cookie)
        }
        Err(e) => {
            let page = SignInPage {
                nav: None,
                error: Some(crate::pages::message(&e)),
                user: c.user,
                project: c.project,
                next,
            };
            (ims_http::openstack_status(&e), render(&page)).into_response()
        }
    }
}

/// The sign-out form.
#[derive(Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

/// `POST /console/signout`: revokes the token and clears the cookie.
pub async fn sign_out(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<SignOut>,
) -> Response {
    if let Err(refused) = session.check(&headers, f.csrf.as_deref()) {
        return refused.into_response();
    }
    if let Err(e) = svc.identity.revoke_token(&session.token).await {
        tracing::warn!(error = %e, "console sign-out: revoking the token failed");
    }
    session::with_cookie(
        Redirect::to("/console/signin").into_response(),
        &session::clear_cookie(),
    )
}
