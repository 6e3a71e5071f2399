//! The caller of an IMS request, from an AK/SK signature or a token.

use axum::extract::{FromRequest, Request};
use ims_domain::principal::Principal;
use ims_http::Services;

use crate::error::ImsError;

/// The authenticated caller, and the request body. Despite the name, a request without
/// an `Authorization` header is authenticated by its `X-Auth-Token` instead of a
/// signature; with a signature, the body is the one it covered.
pub struct Signed {
    /// Who is calling.
    pub who: Principal,
    /// The request body (at most `[http] json_body_max` bytes).
    pub body: axum::body::Bytes,
}

impl FromRequest<Services> for Signed {
    type Rejection = ImsError;

    async fn from_request(req: Request, svc: &Services) -> Result<Self, Self::Rejection> {
        let (who, body) = ims_http::signed::authenticate_with_body(svc, req).await?;
        Ok(Signed { who, body })
    }
}

impl Signed {
    /// The body as JSON of type `T`: empty is `IMG.0007`, malformed is `IMG.0001`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ImsError> {
        if self.body.is_empty() {
            return Err(ImsError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "IMG.0007",
                "The request body is empty.",
            ));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ImsError::bad_request(format!("The request body is invalid: {e}")))
    }
}
