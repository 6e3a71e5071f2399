//! Request handlers, grouped by resource.

pub mod data;
pub mod images;
pub mod info;
pub mod members;
pub mod tasks;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ims_domain::Error;
use ims_domain::principal::Principal;
use ims_http::Services;

use crate::error::GlanceError;

/// The authenticated caller of an image API request.
pub struct Caller(pub Principal);

impl FromRequestParts<Services> for Caller {
    type Rejection = GlanceError;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Services,
    ) -> Result<Self, Self::Rejection> {
        if let Some(SignedPrincipal(who)) = parts.extensions.get::<SignedPrincipal>() {
            return Ok(Caller(who.clone()));
        }
        match ims_http::authenticate(svc, &parts.headers).await {
            Ok(p) => Ok(Caller(p)),
            Err(e @ Error::Unauthenticated(_)) => {
                let uri = format!("Keystone uri=\"{}/v3\"", svc.base_url(&parts.headers));
                Err(GlanceError::from(e).with_header("www-authenticate", uri))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A caller already authenticated by an AK/SK signature (see [`accept_huawei_signatures`]).
#[derive(Clone)]
struct SignedPrincipal(Principal);

/// Lets Huawei's SDKs call every image route (their `glance_*` methods) with an AK/SK
/// signature: a request whose `Authorization` is `SDK-HMAC-SHA256 …` is verified here,
/// before routing reads its body, and [`Caller`] then takes the principal from it. JSON
/// bodies come back intact (they are covered by the signature); `UNSIGNED-PAYLOAD`
/// uploads still stream. Other requests pass untouched to the token check.
pub async fn accept_huawei_signatures(
    axum::extract::State(svc): axum::extract::State<Services>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let signed = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(ims_http::sdk_signing::ALGORITHM));
    if !signed {
        return next.run(req).await;
    }
    match ims_http::signed::authenticate_huawei(&svc, req).await {
        Ok((who, mut req)) => {
            req.extensions_mut().insert(SignedPrincipal(who));
            next.run(req).await
        }
        Err(e) => GlanceError::from(e).into_response(),
    }
}

/// Parses a JSON body after checking its content type; syntax errors are 400s.
pub fn json_body(
    headers: &axum::http::HeaderMap,
    raw: &[u8],
    expected: &[&str],
) -> Result<serde_json::Value, GlanceError> {
    if let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !expected.contains(&mime) {
            return Err(Error::UnsupportedMedia(format!("Unsupported Content-Type {mime}")).into());
        }
    }
    if raw.is_empty() {
        return Err(Error::invalid("Body expected in request.").into());
    }
    serde_json::from_slice(raw)
        .map_err(|e| Error::invalid(format!("Malformed JSON in request body: {e}")).into())
}
