//! The caller of an IMS request, from an AK/SK signature or a token.

use axum::extract::{FromRequest, Request};
use ims_domain::principal::Principal;
use ims_http::Services;

use crate::error::ImsError;

/// The authenticated caller. The signature check reads the body (it is covered by the
/// signature); handlers that need a body will take it from here too.
pub struct Signed {
    /// Who is calling.
    pub who: Principal,
}

impl FromRequest<Services> for Signed {
    type Rejection = ImsError;

    async fn from_request(req: Request, svc: &Services) -> Result<Self, Self::Rejection> {
        let (who, _req) = ims_http::signed::authenticate_huawei(svc, req).await?;
        Ok(Signed { who })
    }
}
