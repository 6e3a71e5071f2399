//! The REST front end, `/zstack/v1/…`: routes, body and header decoding, the api-job
//! answers. Each handler decodes, calls one operation of `ops`, and renders.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, delete, get, put};
use serde_json::{Map, Value, json};

use crate::Zs;
use crate::auth::Caller;
use crate::calls::{self, Answer};
use crate::error::{ZsError, ZsResult, plain};
use crate::ops::{self, Api, Params};
use crate::query;

/// ZStack's api timeout for AddImage and template creation (72 h), in ms.
pub(crate) const API_TIMEOUT_MS: u64 = 72 * 3600 * 1000;

pub(crate) fn routes() -> Router<Zs> {
    let m = |r: MethodRouter<Zs>| r.fallback(method_not_allowed);
    Router::new()
        .route("/zstack/v1/accounts/login", m(put(login)))
        .route("/zstack/v1/accounts/sessions/{uuid}", m(delete(logout)))
        .route("/zstack/v1/accounts/sessions/{uuid}/valid", m(get(valid)))
        .route("/zstack/v1/images", m(get(query_images).post(add_image)))
        .route(
            "/zstack/v1/images/{uuid}",
            m(get(get_image).delete(delete_image)),
        )
        .route("/zstack/v1/images/{uuid}/actions", m(put(image_actions)))
        .route("/zstack/v1/backup-storage", m(get(query_backup_storage)))
        .route("/zstack/v1/primary-storage", m(get(query_primary_storage)))
        .route("/zstack/v1/api-jobs/{uuid}", m(get(poll_job)))
        .route("/zstack", any(no_mapping))
        .route("/zstack/", any(no_mapping))
        .route("/zstack/{*rest}", any(no_mapping))
}

async fn no_mapping(OriginalUri(uri): OriginalUri) -> Response {
    plain(
        StatusCode::NOT_FOUND,
        format!("no api mapping to {}", uri.path()),
    )
}

pub(crate) async fn method_not_allowed(
    method: axum::http::Method,
    OriginalUri(uri): OriginalUri,
) -> Response {
    plain(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("the method[{method}] is not supported on {}", uri.path()),
    )
}

/// The API of a `PUT …/actions` body: the first of `actions` whose key the body has,
/// else ZStack's 400 for a body that maps to no action of the URL.
pub(crate) fn action(
    body: &Map<String, Value>,
    uri: &axum::http::Uri,
    actions: &[(Api, &'static str)],
) -> ZsResult<(Api, &'static str)> {
    actions
        .iter()
        .copied()
        .find(|(_, k)| body.contains_key(*k))
        .ok_or_else(|| {
            ZsError::bad_request(format!(
                "the body doesn't contain action mapping to the URL[{}]",
                uri.path()
            ))
        })
}

/// The JSON object of a request body (empty bodies are an empty object).
pub(crate) fn body_object(body: &Bytes) -> ZsResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ZsError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ZsError::bad_request(format!("malformed JSON body: {e}"))),
    }
}

/// The object under `key` of a body (`params`, or an action name); absent is empty.
pub(crate) fn section(body: &Map<String, Value>, key: &str) -> ZsResult<Map<String, Value>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ZsError::bad_request(format!(
            "malformed body: '{key}' must be a JSON object"
        ))),
    }
}

pub(crate) fn job_header(headers: &HeaderMap) -> ZsResult<Option<&str>> {
    headers
        .get("x-job-uuid")
        .map(|v| {
            v.to_str()
                .map_err(|_| ZsError::bad_request("Invalid header[X-Job-UUID]"))
        })
        .transpose()
}

/// An api-job answer: 200 / 503 when finished, 202 with the job's location otherwise.
pub(crate) fn answer(zs: &Zs, headers: &HeaderMap, a: Answer) -> Response {
    match a {
        Answer::Finished { ok: true, body, .. } => {
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Answer::Finished { body, .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "error": body })),
        )
            .into_response(),
        Answer::Pending { id } => (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "location": format!("{}/zstack/v1/api-jobs/{id}", zs.services.base_url(headers)),
                "apiTimeout": API_TIMEOUT_MS,
            })),
        )
            .into_response(),
    }
}

pub(crate) fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn login(State(zs): State<Zs>, body: Bytes) -> ZsResult<Response> {
    let params = section(&body_object(&body)?, "logInByAccount")?;
    Ok(ok(ops::login(
        &zs,
        &Params::new(Api::LogInByAccount, &params),
    )
    .await?))
}

async fn logout(State(zs): State<Zs>, Path(uuid): Path<String>) -> ZsResult<Response> {
    Ok(ok(ops::logout(&zs, &uuid).await?))
}

async fn valid(State(zs): State<Zs>, Path(uuid): Path<String>) -> ZsResult<Response> {
    Ok(ok(json!({ "valid": ops::validate(&zs, &uuid).await? })))
}

async fn query_images(
    State(zs): State<Zs>,
    Caller(who): Caller,
    RawQuery(raw): RawQuery,
) -> ZsResult<Response> {
    let req = query::rest(raw.as_deref())?;
    Ok(ok(ops::query_images(&zs, &who, &req).await?))
}

async fn get_image(
    State(zs): State<Zs>,
    Caller(who): Caller,
    Path(uuid): Path<String>,
    RawQuery(raw): RawQuery,
) -> ZsResult<Response> {
    let req = query::rest_one(raw.as_deref(), uuid)?;
    Ok(ok(ops::query_images(&zs, &who, &req).await?))
}

async fn query_backup_storage(
    State(zs): State<Zs>,
    Caller(_): Caller,
    RawQuery(raw): RawQuery,
) -> ZsResult<Response> {
    let req = query::rest(raw.as_deref())?;
    Ok(ok(ops::query_storage(&zs, false, &req)?))
}

async fn query_primary_storage(
    State(zs): State<Zs>,
    Caller(_): Caller,
    RawQuery(raw): RawQuery,
) -> ZsResult<Response> {
    let req = query::rest(raw.as_deref())?;
    Ok(ok(ops::query_storage(&zs, true, &req)?))
}

async fn add_image(
    State(zs): State<Zs>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ZsResult<Response> {
    let params = section(&body_object(&body)?, "params")?;
    let p = Params::new(Api::AddImage, &params);
    let a = calls::mutate(
        &zs,
        &who,
        Api::AddImage,
        job_header(&headers)?,
        ops::add_image(&zs, &who, &p),
    )
    .await?;
    Ok(answer(&zs, &headers, a))
}

async fn delete_image(
    State(zs): State<Zs>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> ZsResult<Response> {
    let a = calls::mutate(
        &zs,
        &who,
        Api::DeleteImage,
        job_header(&headers)?,
        ops::delete_image(&zs, &who, &uuid),
    )
    .await?;
    Ok(answer(&zs, &headers, a))
}

/// `PUT /images/{uuid}/actions`: the API is the body's action key.
async fn image_actions(
    State(zs): State<Zs>,
    Caller(who): Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(uuid): Path<String>,
    body: Bytes,
) -> ZsResult<Response> {
    let body = body_object(&body)?;
    let (api, key) = action(
        &body,
        &uri,
        &[
            (Api::UpdateImage, "updateImage"),
            (Api::ChangeImageState, "changeImageState"),
            (Api::RecoverImage, "recoverImage"),
            (Api::ExpungeImage, "expungeImage"),
        ],
    )?;
    let params = section(&body, key)?;
    let p = Params::new(api, &params);
    let op = async {
        match api {
            Api::UpdateImage => ops::update_image(&zs, &who, &uuid, &p).await,
            Api::ChangeImageState => ops::change_image_state(&zs, &who, &uuid, &p).await,
            Api::RecoverImage => ops::recover_image(&zs, &who, &uuid, &p).await,
            _ => ops::expunge_image(&zs, &who, &uuid, &p).await,
        }
    };
    let a = calls::mutate(&zs, &who, api, job_header(&headers)?, op).await?;
    Ok(answer(&zs, &headers, a))
}

/// `GET /api-jobs/{uuid}`: 202 `{}` running, 200 result, 503 error, 404 expired.
async fn poll_job(State(zs): State<Zs>, Path(uuid): Path<String>) -> ZsResult<Response> {
    Ok(match calls::poll(&zs, &uuid).await? {
        None => plain(StatusCode::NOT_FOUND, "the job has been expired"),
        Some((_, Answer::Pending { .. })) => {
            (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response()
        }
        Some((_, Answer::Finished { ok: true, body, .. })) => ok(body),
        Some((_, Answer::Finished { body, .. })) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "error": body })),
        )
            .into_response(),
    })
}
