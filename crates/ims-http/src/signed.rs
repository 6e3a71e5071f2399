//! Authentication for the Huawei-style dialects: a request signed with an AK/SK
//! (`SDK-HMAC-SHA256`, as the official SDKs sign), or an `X-Auth-Token`.

use axum::body::Body;
use axum::http::Request;
use axum::http::request::Parts;
use ims_domain::principal::Principal;
use ims_domain::{Error, Result};
use sha2::{Digest, Sha256};

use crate::Services;
use crate::guard::{changes_state, is_data_upload};
use crate::sdk_signing::{self, Received};

/// The original request URI, kept before any rewrite so signatures check what the
/// client signed.
#[derive(Debug, Clone)]
pub struct OriginalUri(pub axum::http::Uri);

fn unauthenticated(why: impl std::fmt::Display) -> Error {
    Error::Unauthenticated(format!("Incorrect IAM authentication information: {why}"))
}

/// Resolves the caller of a Huawei-style request and hands the request back with its
/// body intact. A signature is checked against the request as received; without one,
/// `X-Auth-Token` is tried.
///
/// Everything that needs neither the body nor the secret is checked first, then the
/// access key is looked up, and only then is a body read (within [`Guard::buffer`]'s
/// limits): a made-up signature costs the server no body at all.
pub async fn authenticate_huawei(
    svc: &Services,
    req: Request<Body>,
) -> Result<(Principal, Request<Body>)> {
    let Some(value) = req.headers().get(axum::http::header::AUTHORIZATION) else {
        let principal = crate::authenticate(svc, req.headers()).await?;
        return Ok((principal, req));
    };
    let value = value.to_str().map_err(unauthenticated)?;
    let auth = sdk_signing::parse_authorization(value).map_err(unauthenticated)?;
    let (parts, body) = req.into_parts();
    let header = |name: &str| header_text(&parts, name);
    let now = ims_domain::context::now();
    let expires = sdk_signing::precheck(&auth, &header, now).map_err(unauthenticated)?;
    let (credential, secret) = svc.identity.credential_secret(&auth.access).await?;
    let (body, hash) = payload(svc, &parts, &auth, body).await?;
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
    let received = Received {
        method: parts.method.as_str(),
        path: uri.path(),
        query: uri.query(),
        header: &header,
        body_sha256: hash.as_deref(),
    };
    sdk_signing::verify(&received, &auth, &secret, now).map_err(unauthenticated)?;
    if changes_state(&parts.method) && svc.guard.limits.replay_check {
        let grace = svc.guard.limits.replay_grace;
        svc.identity
            .first_signature_use(&auth.access, &auth.signature, expires, grace)
            .await?;
    }
    let project = header("x-project-id");
    let principal = svc
        .identity
        .principal_for_credential(&credential, project.as_deref())
        .await?;
    crate::note_caller(&principal);
    Ok((principal, Request::from_parts(parts, body)))
}

/// The body to hand on and the payload hash the signature must cover: an
/// `UNSIGNED-PAYLOAD` body streams untouched where that is allowed (image data, and
/// Glance's json-patch when configured); any other body is read within the limits and
/// hashed.
async fn payload(
    svc: &Services,
    parts: &Parts,
    auth: &sdk_signing::Authorization,
    body: Body,
) -> Result<(Body, Option<String>)> {
    let header = |name: &str| header_text(parts, name);
    let declared: Option<u64> = match header("content-length") {
        Some(l) => Some(
            l.trim()
                .parse()
                .map_err(|_| Error::invalid("Content-Length is not a number"))?,
        ),
        None if header("transfer-encoding").is_none() => Some(0),
        None => None,
    };
    if declared == Some(0) {
        return Ok((Body::empty(), None));
    }
    if sdk_signing::wants_unsigned_payload(auth, &header) {
        if !unsigned_allowed(svc, parts) {
            return Err(unauthenticated(
                "UNSIGNED-PAYLOAD is accepted only for image data; sign the body's SHA-256",
            ));
        }
        return Ok((body, Some("UNSIGNED-PAYLOAD".to_string())));
    }
    let bytes = svc.guard.buffer(body, declared).await?;
    let hash = (!bytes.is_empty()).then(|| hex::encode(Sha256::digest(&bytes)));
    Ok((Body::from(bytes), hash))
}

/// Image data uploads stream, so their body cannot be hashed first; huaweicloudsdkims
/// also sends Glance's json-patch (`glance_update_image`) as `UNSIGNED-PAYLOAD`, which
/// `[http] unsigned_json_patch` allows.
fn unsigned_allowed(svc: &Services, parts: &Parts) -> bool {
    if is_data_upload(&parts.method, parts.uri.path()) {
        return true;
    }
    let json_patch = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';').next().unwrap_or("").trim()
                == "application/openstack-images-v2.1-json-patch"
        });
    svc.guard.limits.unsigned_json_patch
        && json_patch
        && parts.method == axum::http::Method::PATCH
        && parts.uri.path().starts_with("/v2/images/")
}

/// A request header as text, if present and visible ASCII.
fn header_text(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// [`authenticate_huawei`], then the body (at most `[http] json_body_max` bytes): what
/// every Huawei-style dialect's handlers start from. A body too large or unreadable is
/// `InvalidInput`.
pub async fn authenticate_with_body(
    svc: &Services,
    req: Request<Body>,
) -> Result<(Principal, axum::body::Bytes)> {
    let (who, req) = authenticate_huawei(svc, req).await?;
    let body = axum::body::to_bytes(req.into_body(), svc.guard.limits.json_body_max)
        .await
        .map_err(|_| Error::invalid("The request body is too large or unreadable."))?;
    Ok((who, body))
}
