//! Who calls: `Authorization: OAuth <session uuid>` turned into a [`Principal`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ims_domain::principal::Principal;

use crate::Zs;
use crate::error::{ZsError, ZsResult};

/// The caller of an authenticated API.
pub(crate) struct Caller(pub(crate) Principal);

/// The session id an `Authorization` header names (REST-layer errors are plain 400s).
pub(crate) fn session_of(headers: &axum::http::HeaderMap) -> ZsResult<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ZsError::bad_request("missing header 'Authorization'"))?
        .to_str()
        .map_err(|_| ZsError::bad_request("invalid header 'Authorization'"))?;
    match value.split_once(' ') {
        Some(("OAuth", id)) if !id.is_empty() => Ok(id.to_string()),
        Some(("ZStack", _)) => Err(ZsError::api(
            "SYS.1014",
            "access-key authentication is not supported; log in for a session",
        )),
        _ => Err(ZsError::bad_request(format!(
            "Authorization type must be 'OAuth' or 'ZStack', but got [{value}]"
        ))),
    }
}

/// The principal a session stands for; an unknown or lapsed session is `ID.1001`.
pub(crate) async fn principal(zs: &Zs, session: &str) -> ZsResult<Principal> {
    let who = zs.sessions.principal(session).await;
    if let Ok(who) = &who {
        ims_http::note_caller(who);
    }
    who.map_err(|e| match e {
        ims_domain::Error::Unauthenticated(_) | ims_domain::Error::InvalidInput(_) => ZsError::api(
            "ID.1001",
            format!("Session expired or invalid: session[uuid:{session}]"),
        ),
        other => other.into(),
    })
}

impl FromRequestParts<Zs> for Caller {
    type Rejection = ZsError;

    async fn from_request_parts(parts: &mut Parts, zs: &Zs) -> ZsResult<Self> {
        let session = session_of(&parts.headers)?;
        Ok(Caller(principal(zs, &session).await?))
    }
}
