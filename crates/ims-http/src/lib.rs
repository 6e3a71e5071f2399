//! Shared HTTP plumbing: the services every dialect calls, request ids, the token
//! header, the public base URL that links and catalogs point at, the OpenStack status of
//! each domain error, Huawei AK/SK signatures, transport limits and the shared image-list
//! query parser.

pub mod drain;
pub mod guard;
pub mod list_query;
pub mod sdk_signing;
pub mod signed;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use ims_domain::metadefs::MetadefService;
use ims_domain::service::ImageService;
use ims_domain::service::identity::IdentityService;
use tower_http::request_id::{MakeRequestId, RequestId};

/// The request-id header every response carries (OpenStack's name).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-openstack-request-id");
/// The token header.
pub const AUTH_TOKEN: &str = "x-auth-token";

/// Everything a dialect needs; cloned into each router as state.
#[derive(Clone)]
pub struct Services {
    /// Image use cases.
    pub images: ImageService,
    /// Identity use cases.
    pub identity: IdentityService,
    /// Volume use cases.
    pub volumes: ims_domain::volume::VolumeService,
    /// Image-server use cases.
    pub servers: ims_domain::server::ServerService,
    /// The key management service.
    pub keys: Arc<ims_domain::key::KeyService>,
    /// Metadata definitions (Glance's metadefs catalog).
    pub metadefs: MetadefService,
    /// The base URL (scheme://host:port) of links, `Location` and the service catalog:
    /// `public_url`, or the loopback address ims listens on. Never taken from the
    /// request, so a client's `Host` or `X-Forwarded-Proto` cannot poison them.
    pub public_url: Arc<str>,
    /// Region name shown in the service catalog.
    pub region: Arc<str>,
    /// Request-body limits and the replay cache.
    pub guard: guard::Guard,
}

impl Services {
    /// The base URL clients should use, without a trailing slash. The request's headers
    /// are deliberately not consulted (see [`Services::public_url`]).
    pub fn base_url(&self, _headers: &HeaderMap) -> String {
        self.public_url.trim_end_matches('/').to_string()
    }
}

/// The token a request carries, if any.
pub fn auth_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTH_TOKEN)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
}

/// Makes `req-<uuid>` ids.
#[derive(Clone, Copy, Default)]
pub struct MakeOpenStackRequestId;

impl MakeRequestId for MakeOpenStackRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = format!("req-{}", uuid::Uuid::new_v4());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// The request id the request-id layer gave a request (for log spans; Glance also
/// records it on tasks).
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Resolves the caller from `X-Auth-Token`; each dialect renders the failure its way.
pub async fn authenticate(
    svc: &Services,
    headers: &HeaderMap,
) -> ims_domain::Result<ims_domain::principal::Principal> {
    let token = auth_token(headers).ok_or_else(|| {
        ims_domain::Error::Unauthenticated(
            "The request you have made requires authentication.".into(),
        )
    })?;
    let who = svc.identity.principal(token).await?;
    note_caller(&who);
    Ok(who)
}

/// Puts the caller's project and user ids (never a credential) on the request's log span,
/// so that the request's log lines say who made it.
pub fn note_caller(who: &ims_domain::principal::Principal) {
    let span = tracing::Span::current();
    span.record("project.id", who.project_id.as_str());
    span.record("user.id", who.user_id.as_str());
}

/// What a caller is told of `e`: its own words, except for an internal error, whose
/// details go to the log only (Huawei-style dialects: Workspace, KMS).
pub fn caller_message(e: &ims_domain::Error) -> String {
    match e {
        ims_domain::Error::Internal(detail) => {
            tracing::error!(error = %detail, "internal error");
            "Internal service error.".to_string()
        }
        other => other.to_string(),
    }
}

/// The HTTP status OpenStack-style APIs (Glance, Keystone) give each domain error.
/// Exhaustive, so a new error kind does not compile until it is mapped.
pub fn openstack_status(e: &ims_domain::Error) -> axum::http::StatusCode {
    use axum::http::StatusCode as S;
    use ims_domain::Error as E;
    match e {
        E::NotFound { .. } => S::NOT_FOUND,
        E::InvalidInput(_) | E::InvalidField { .. } => S::BAD_REQUEST,
        E::Forbidden(_) => S::FORBIDDEN,
        // The image's data is sealed under a key its owner disabled or is deleting.
        E::KeyUnusable { .. } => S::FORBIDDEN,
        E::Unauthenticated(_) => S::UNAUTHORIZED,
        E::Conflict(_) | E::AlreadyExists { .. } => S::CONFLICT,
        E::QuotaExceeded(_) | E::TooLarge(_) => S::PAYLOAD_TOO_LARGE,
        E::UnsupportedMedia(_) => S::UNSUPPORTED_MEDIA_TYPE,
        E::RangeNotSatisfiable { .. } => S::RANGE_NOT_SATISFIABLE,
        E::Gone(_) => S::GONE,
        E::NotSupported(_) => S::NOT_IMPLEMENTED,
        E::Throttled(_) => S::TOO_MANY_REQUESTS,
        E::Unavailable(_) => S::SERVICE_UNAVAILABLE,
        E::Internal(_) => S::INTERNAL_SERVER_ERROR,
    }
}
