//! The legacy RPC front end (`zstack-mcp-server`, `zstack-cli`): `POST /zstack/api/` with
//! `{"<Java message class>": {…params, "session": {"uuid"}}}`, answered with
//! `{"uuid", "state": "Done"|"Processing", "result": "<JSON string>"}` whose result is
//! `{"<reply or event class>": {…, "success": true|false, "error"?}}`; unfinished calls
//! are polled at `GET /zstack/api/result/{uuid}`. The same operations as REST.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::Zs;
use crate::calls::{self, Answer};
use crate::error::{ZsError, ZsResult, plain};
use crate::ops::{self, Api, Params};
use crate::query;
use ims_domain::principal::Principal;

pub(crate) fn routes() -> Router<Zs> {
    Router::new()
        .route("/zstack/api", post(call))
        .route("/zstack/api/", post(call))
        .route("/zstack/api/result/{uuid}", get(result))
}

/// A finished call: its reply (or event) fields plus `success`, or the error.
fn finished(id: &str, class: &str, ok: bool, body: Value) -> Response {
    let inner = match body {
        Value::Object(mut m) if ok => {
            m.insert("success".into(), true.into());
            Value::Object(m)
        }
        other if ok => json!({ "success": true, "value": other }),
        error => json!({ "success": false, "error": error }),
    };
    let text = json!({ class: inner }).to_string();
    axum::Json(json!({ "uuid": id, "state": "Done", "result": text })).into_response()
}

pub(crate) fn render(api: Api, a: Answer) -> Response {
    match a {
        Answer::Finished { id, ok, body } => finished(&id, &api.reply_class(), ok, body),
        Answer::Pending { id } => {
            axum::Json(json!({ "uuid": id, "state": "Processing" })).into_response()
        }
    }
}

fn fresh_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A synchronous API's answer.
pub(crate) fn sync(api: Api, r: ZsResult<Value>) -> Response {
    match r {
        Ok(body) => finished(&fresh_id(), &api.reply_class(), true, body),
        Err(e) => finished(&fresh_id(), &api.reply_class(), false, e.error_code()),
    }
}

/// `POST /zstack/api/`: decodes the envelope and dispatches on the message class.
async fn call(State(zs): State<Zs>, body: Bytes) -> Response {
    let envelope: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) if m.len() == 1 => m,
        _ => {
            return plain(
                StatusCode::BAD_REQUEST,
                "the body must be one JSON object {\"<API message class>\": {…}}",
            );
        }
    };
    let Some((class, Value::Object(msg))) = envelope.into_iter().next() else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the API message must be a JSON object",
        );
    };
    let Some(api) = Api::of_class(&class) else {
        let e = ZsError::api(
            "SYS.1008",
            format!("no service can deal with the message[{class}]"),
        );
        return finished(
            &fresh_id(),
            "org.zstack.header.message.APIReply",
            false,
            e.error_code(),
        );
    };
    let session = msg
        .get("session")
        .and_then(|s| s.get("uuid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match api {
        Api::LogInByAccount | Api::LogOut | Api::ValidateSession => {
            sync(api, session_api(&zs, api, &msg, session).await)
        }
        _ => match crate::auth::principal(&zs, &session).await {
            Ok(who)
                if crate::volumes::is_volume_api(api) || crate::volumes::is_template_api(api) =>
            {
                crate::volumes::rpc(&zs, &who, api, &msg).await
            }
            Ok(who) if api.is_mutation() => mutation(&zs, api, &who, &msg).await,
            Ok(who) => sync(api, read(&zs, api, &who, &msg).await),
            Err(e) => sync(api, Err(e)),
        },
    }
}

/// Login, logout and session validation (no session needed).
async fn session_api(
    zs: &Zs,
    api: Api,
    msg: &Map<String, Value>,
    session: String,
) -> ZsResult<Value> {
    let p = Params::new(api, msg);
    let named = p.text("sessionUuid", 64)?.unwrap_or(session);
    match api {
        Api::LogInByAccount => ops::login(zs, &p).await,
        Api::LogOut => ops::logout(zs, &named).await,
        _ => Ok(json!({ "validSession": ops::validate(zs, &named).await? })),
    }
}

/// The query APIs.
async fn read(zs: &Zs, api: Api, who: &Principal, msg: &Map<String, Value>) -> ZsResult<Value> {
    let req = query::rpc(msg)?;
    match api {
        Api::QueryImage => ops::query_images(zs, who, &req).await,
        _ => ops::query_storage(zs, api == Api::QueryPrimaryStorage, &req),
    }
}

/// The mutating APIs, as api-jobs (`Processing` until done).
async fn mutation(zs: &Zs, api: Api, who: &Principal, msg: &Map<String, Value>) -> Response {
    let p = Params::new(api, msg);
    let uuid = ["uuid", "imageUuid"]
        .iter()
        .find_map(|k| p.text(k, 64).ok().flatten())
        .unwrap_or_default();
    let op = async {
        match api {
            Api::AddImage => ops::add_image(zs, who, &p).await,
            Api::UpdateImage => ops::update_image(zs, who, &uuid, &p).await,
            Api::ChangeImageState => ops::change_image_state(zs, who, &uuid, &p).await,
            Api::DeleteImage => ops::delete_image(zs, who, &uuid).await,
            Api::RecoverImage => ops::recover_image(zs, who, &uuid, &p).await,
            Api::ExpungeImage => ops::expunge_image(zs, who, &uuid, &p).await,
            _ => Err(ZsError::api("SYS.1008", "not a mutation")),
        }
    };
    mutate(zs, who, api, op).await
}

/// Runs a mutating `op` as an api-job (the RPC front end sends no job uuid) and renders
/// its reply: `Processing`, the event, or the error.
pub(crate) async fn mutate(
    zs: &Zs,
    who: &Principal,
    api: Api,
    op: impl Future<Output = ZsResult<ops::Outcome>>,
) -> Response {
    match calls::mutate(zs, who, api, None, op).await {
        Ok(a) => render(api, a),
        Err(e) => sync(api, Err(e)),
    }
}

/// `GET /zstack/api/result/{uuid}`.
async fn result(State(zs): State<Zs>, Path(uuid): Path<String>) -> Response {
    match calls::poll(&zs, &uuid).await {
        Ok(Some((api, a))) => render(api, a),
        Ok(None) => plain(StatusCode::NOT_FOUND, "the job has been expired"),
        Err(e) => e.into_response(),
    }
}
