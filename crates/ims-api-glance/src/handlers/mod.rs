//! Request handlers, grouped by resource.

pub mod data;
pub mod images;
pub mod info;
pub mod members;

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

/// The caller of a route Huawei's SDKs also use (`glance_delete_image`): an AK/SK
/// signature (the body is read to check it, then dropped) or a token.
pub struct SignedOrTokenCaller(pub Principal);

impl axum::extract::FromRequest<Services> for SignedOrTokenCaller {
    type Rejection = GlanceError;

    async fn from_request(
        req: axum::extract::Request,
        svc: &Services,
    ) -> Result<Self, Self::Rejection> {
        if req
            .headers()
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            let (who, _) = ims_http::signed::authenticate_huawei(svc, req).await?;
            return Ok(SignedOrTokenCaller(who));
        }
        let (mut parts, _) = req.into_parts();
        let Caller(who) = Caller::from_request_parts(&mut parts, svc).await?;
        Ok(SignedOrTokenCaller(who))
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
