//! Keystone handlers: each decodes, calls one identity use case, and encodes. Two still
//! hold logic of their own: `check_role` decides "admin or the user itself", and
//! `get_role` lists every role and picks one.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ims_domain::Error;
use ims_domain::principal::Principal;
use ims_domain::service::identity::{NamedRef, principal_of};
use ims_http::Services;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::convert;
use crate::error::KeystoneError;

type Res<T> = Result<T, KeystoneError>;

async fn caller(svc: &Services, headers: &HeaderMap) -> Res<Principal> {
    Ok(ims_http::authenticate(svc, headers).await?)
}

fn subject(headers: &HeaderMap) -> Res<&str> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::invalid("X-Subject-Token header is required").into())
}

/// Parses a JSON body, turning syntax and shape errors into 400s.
fn body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Res<T> {
    serde_json::from_slice(raw)
        .map_err(|e| Error::invalid(format!("Invalid request body: {e}")).into())
}

/// `GET /v3`.
pub async fn discovery(State(svc): State<Services>, headers: HeaderMap) -> Json<Value> {
    Json(convert::version(&svc.base_url(&headers)))
}

#[derive(Deserialize)]
struct AuthBody {
    auth: Auth,
}

#[derive(Deserialize)]
struct Auth {
    identity: Identity,
    scope: Option<Scope>,
}

#[derive(Deserialize)]
struct Identity {
    methods: Vec<String>,
    password: Option<PasswordMethod>,
}

#[derive(Deserialize)]
struct PasswordMethod {
    user: RefWithDomain,
}

#[derive(Deserialize, Default)]
struct DomainRef {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RefWithDomain {
    id: Option<String>,
    name: Option<String>,
    #[serde(default)]
    domain: Option<DomainRef>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
struct Scope {
    project: Option<RefWithDomain>,
}

fn named(r: &RefWithDomain) -> NamedRef {
    let d = r.domain.as_ref();
    NamedRef {
        id: r.id.clone(),
        name: r.name.clone(),
        domain_id: d.and_then(|d| d.id.clone()),
        domain_name: d.and_then(|d| d.name.clone()),
    }
}

/// `POST /v3/auth/tokens`: password method, project scope.
pub async fn issue_token(
    State(svc): State<Services>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Res<Response> {
    let req: AuthBody = body(&raw)?;
    let pw = match (
        &req.auth.identity.password,
        req.auth.identity.methods.iter().any(|m| m == "password"),
    ) {
        (Some(pw), true) => pw,
        _ => return Err(Error::invalid("Only the password method is supported").into()),
    };
    let password = pw
        .user
        .password
        .as_deref()
        .ok_or_else(|| Error::invalid("password is required"))?;
    let scope = req
        .auth
        .scope
        .as_ref()
        .and_then(|s| s.project.as_ref())
        .map(named);
    let (secret, info) = svc
        .identity
        .authenticate(&named(&pw.user), password, scope.as_ref())
        .await?;
    let mut resp = (
        StatusCode::CREATED,
        Json(convert::token(&svc.base_url(&headers), &svc.region, &info)),
    )
        .into_response();
    let value = HeaderValue::from_str(&secret).map_err(Error::internal)?;
    resp.headers_mut().insert("x-subject-token", value);
    Ok(resp)
}

/// `GET /v3/auth/tokens`: validates `X-Subject-Token`.
pub async fn validate_token(State(svc): State<Services>, headers: HeaderMap) -> Res<Response> {
    caller(&svc, &headers).await?;
    let secret = subject(&headers)?;
    let info = svc
        .identity
        .validate(secret)
        .await
        .map_err(|_| Error::NotFound {
            kind: ims_domain::Entity::Token,
            id: "subject".into(),
        })?;
    let mut resp =
        Json(convert::token(&svc.base_url(&headers), &svc.region, &info)).into_response();
    resp.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_str(secret).map_err(Error::internal)?,
    );
    Ok(resp)
}

/// `HEAD /v3/auth/tokens`.
pub async fn check_token(State(svc): State<Services>, headers: HeaderMap) -> Res<StatusCode> {
    caller(&svc, &headers).await?;
    let p = svc
        .identity
        .validate(subject(&headers)?)
        .await
        .map_err(|_| Error::NotFound {
            kind: ims_domain::Entity::Token,
            id: "subject".into(),
        })?;
    let _ = principal_of(&p);
    Ok(StatusCode::OK)
}

/// `DELETE /v3/auth/tokens`: revokes `X-Subject-Token`.
pub async fn revoke_token(State(svc): State<Services>, headers: HeaderMap) -> Res<StatusCode> {
    caller(&svc, &headers).await?;
    svc.identity.revoke_token(subject(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?name=` on list calls.
#[derive(Deserialize)]
pub struct NameFilter {
    name: Option<String>,
}

fn list(base: &str, key: &str, items: Vec<Value>) -> Json<Value> {
    Json(
        json!({key: items, "links": {"self": format!("{base}/v3/{key}"), "next": null, "previous": null}}),
    )
}

/// `GET /v3/projects`.
pub async fn list_projects(
    State(svc): State<Services>,
    Query(q): Query<NameFilter>,
    req: axum::extract::Request,
) -> Res<Json<Value>> {
    let headers = req.headers().clone();
    let base = svc.base_url(&headers);
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        let (who, _) = ims_http::signed::authenticate_huawei(&svc, req).await?;
        return Ok(list(
            &base,
            "projects",
            signed_projects(&svc, &who, q.name.as_deref(), &base).await?,
        ));
    }
    let who = caller(&svc, &headers).await?;
    let items = svc
        .identity
        .list_projects(Some(&who), q.name.as_deref())
        .await?;
    Ok(list(
        &base,
        "projects",
        items.iter().map(|p| convert::project(&base, p)).collect(),
    ))
}

/// The IAM look-up Huawei's SDKs make with an AK/SK and a region but no project id
/// (`GET /v3/projects?name=<region>`): the key's project stands for this region.
async fn signed_projects(
    svc: &Services,
    who: &Principal,
    name: Option<&str>,
    base: &str,
) -> Res<Vec<Value>> {
    let mut project = svc.identity.get_project(Some(who), &who.project_id).await?;
    match name {
        Some(n) if n == &*svc.region => project.name = n.to_string(),
        Some(n) if n != project.name => return Ok(Vec::new()),
        _ => {}
    }
    Ok(vec![convert::project(base, &project)])
}

#[derive(Deserialize)]
struct ProjectBody {
    project: NewProject,
}

#[derive(Deserialize)]
struct NewProject {
    name: String,
    domain_id: Option<String>,
    #[serde(default)]
    description: String,
}

/// `POST /v3/projects`.
pub async fn create_project(
    State(svc): State<Services>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Res<impl IntoResponse> {
    let who = caller(&svc, &headers).await?;
    let req: ProjectBody = body(&raw)?;
    let p = req.project;
    let created = svc
        .identity
        .create_project(Some(&who), &p.name, p.domain_id.as_deref(), &p.description)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"project": convert::project(&svc.base_url(&headers), &created)})),
    ))
}

/// `GET /v3/projects/{id}`.
pub async fn get_project(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    let who = caller(&svc, &headers).await?;
    let p = svc.identity.get_project(Some(&who), &id).await?;
    Ok(Json(
        json!({"project": convert::project(&svc.base_url(&headers), &p)}),
    ))
}

/// `DELETE /v3/projects/{id}`.
pub async fn delete_project(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    let who = caller(&svc, &headers).await?;
    svc.identity.delete_project(Some(&who), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/users`.
pub async fn list_users(
    State(svc): State<Services>,
    headers: HeaderMap,
    Query(q): Query<NameFilter>,
) -> Res<Json<Value>> {
    let who = caller(&svc, &headers).await?;
    let base = svc.base_url(&headers);
    let items = svc
        .identity
        .list_users(Some(&who), q.name.as_deref())
        .await?;
    Ok(list(
        &base,
        "users",
        items.iter().map(|u| convert::user(&base, u)).collect(),
    ))
}

#[derive(Deserialize)]
struct UserBody {
    user: NewUser,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
    domain_id: Option<String>,
    default_project_id: Option<String>,
}

/// `POST /v3/users`.
pub async fn create_user(
    State(svc): State<Services>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Res<impl IntoResponse> {
    let who = caller(&svc, &headers).await?;
    let req: UserBody = body(&raw)?;
    let u = req.user;
    let created = svc
        .identity
        .create_user(
            Some(&who),
            &u.name,
            &u.password,
            u.domain_id.as_deref(),
            u.default_project_id.as_deref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": convert::user(&svc.base_url(&headers), &created)})),
    ))
}

/// `GET /v3/users/{id}`.
pub async fn get_user(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    let who = caller(&svc, &headers).await?;
    let u = svc.identity.get_user(Some(&who), &id).await?;
    Ok(Json(
        json!({"user": convert::user(&svc.base_url(&headers), &u)}),
    ))
}

/// `DELETE /v3/users/{id}`.
pub async fn delete_user(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    let who = caller(&svc, &headers).await?;
    svc.identity.delete_user(Some(&who), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/roles`.
pub async fn list_roles(
    State(svc): State<Services>,
    headers: HeaderMap,
    Query(q): Query<NameFilter>,
) -> Res<Json<Value>> {
    caller(&svc, &headers).await?;
    let base = svc.base_url(&headers);
    let items = svc.identity.list_roles(q.name.as_deref()).await?;
    Ok(list(
        &base,
        "roles",
        items.iter().map(|r| convert::role(&base, r)).collect(),
    ))
}

#[derive(Deserialize)]
struct RoleBody {
    role: NewRole,
}

#[derive(Deserialize)]
struct NewRole {
    name: String,
}

/// `POST /v3/roles`.
pub async fn create_role(
    State(svc): State<Services>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Res<impl IntoResponse> {
    let who = caller(&svc, &headers).await?;
    let req: RoleBody = body(&raw)?;
    let r = svc.identity.create_role(Some(&who), &req.role.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"role": convert::role(&svc.base_url(&headers), &r)})),
    ))
}

/// `GET /v3/roles/{id}`.
pub async fn get_role(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    caller(&svc, &headers).await?;
    let r = svc
        .identity
        .list_roles(None)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(Error::NotFound {
            kind: ims_domain::Entity::Role,
            id,
        })?;
    Ok(Json(
        json!({"role": convert::role(&svc.base_url(&headers), &r)}),
    ))
}

/// `DELETE /v3/roles/{id}`.
pub async fn delete_role(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    let who = caller(&svc, &headers).await?;
    svc.identity.delete_role(Some(&who), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v3/projects/{p}/users/{u}/roles/{r}`.
pub async fn grant_role(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path((p, u, r)): Path<(String, String, String)>,
) -> Res<StatusCode> {
    let who = caller(&svc, &headers).await?;
    svc.identity.grant(Some(&who), &p, &u, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v3/projects/{p}/users/{u}/roles/{r}`.
pub async fn revoke_role(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path((p, u, r)): Path<(String, String, String)>,
) -> Res<StatusCode> {
    let who = caller(&svc, &headers).await?;
    svc.identity.revoke(Some(&who), &p, &u, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `HEAD`/`GET /v3/projects/{p}/users/{u}/roles/{r}`: 204 when granted.
pub async fn check_role(
    State(svc): State<Services>,
    headers: HeaderMap,
    Path((p, u, r)): Path<(String, String, String)>,
) -> Res<StatusCode> {
    let who = caller(&svc, &headers).await?;
    if !who.is_admin() && who.user_id != u {
        return Err(Error::Forbidden(
            "You are not authorized to perform the requested action.".into(),
        )
        .into());
    }
    let granted = svc.identity.roles_of(&p, &u).await?;
    if granted.iter().any(|x| x.id == r) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound {
            kind: ims_domain::Entity::RoleAssignment,
            id: r,
        }
        .into())
    }
}
