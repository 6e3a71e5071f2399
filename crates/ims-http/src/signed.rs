//! Authentication for the Huawei-style dialects: a request signed with an AK/SK
//! (`SDK-HMAC-SHA256`, as the official SDKs sign), or an `X-Auth-Token`.

use axum::body::{Body, Bytes};
use axum::http::Request;
use ims_domain::principal::Principal;
use ims_domain::{Error, Result};
use sha2::{Digest, Sha256};

use crate::Services;
use crate::sdk_signing::{self, Received};

/// The largest body an AK/SK-signed request may carry (Huawei's gateway: 12 MB); bigger
/// uploads use a token or an unsigned payload.
pub const MAX_SIGNED_BODY: usize = 12 << 20;

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
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let unsigned = auth
        .signed_headers
        .iter()
        .any(|h| h == "x-sdk-content-sha256")
        && header("x-sdk-content-sha256").is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD");
    let declared_empty = header("content-length").is_some_and(|l| l.trim() == "0")
        || (header("content-length").is_none() && header("transfer-encoding").is_none());
    let (body, hash) = if unsigned {
        (
            body,
            (!declared_empty).then(|| "UNSIGNED-PAYLOAD".to_string()),
        )
    } else {
        let bytes: Bytes = axum::body::to_bytes(body, MAX_SIGNED_BODY)
            .await
            .map_err(|_| {
                Error::TooLarge(format!(
                    "A signed request body may not exceed {MAX_SIGNED_BODY} bytes"
                ))
            })?;
        let hash = (!bytes.is_empty()).then(|| hex::encode(Sha256::digest(&bytes)));
        (Body::from(bytes), hash)
    };
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
    let (credential, secret) = svc.identity.credential_secret(&auth.access).await?;
    sdk_signing::verify(&received, &auth, &secret, time::OffsetDateTime::now_utc())
        .map_err(unauthenticated)?;
    let project = header("x-project-id");
    let principal = svc
        .identity
        .principal_for_credential(&credential, project.as_deref())
        .await?;
    Ok((principal, Request::from_parts(parts, body)))
}
