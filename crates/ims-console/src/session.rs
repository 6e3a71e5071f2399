//! The console's session: Keystone's password flow, its token kept in an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to `/console`, and a CSRF token every form and script
//! call must send back.
//!
//! The cookie holds the token itself, so a session is exactly what the token grants, on
//! every node (tokens live in the catalog), and ends when it does: on expiry, on sign-out
//! (the token is revoked) or when an operator revokes it. The CSRF token is derived from
//! the session token (a hash a cross-site page cannot compute, since it never sees the
//! cookie); unsafe requests must also come from the console's own origin.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ims_domain::principal::Principal;
use ims_http::Services;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "ims_console";

/// A signed-in caller of a console page.
pub struct Session {
    /// Who it is: what the token grants.
    pub who: Principal,
    /// The token (to sign out).
    pub token: String,
    /// What forms and script calls send back as `csrf` / `X-CSRF-Token`.
    pub csrf: String,
}

/// The CSRF token of a session token.
pub fn csrf_of(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"ims-console-csrf\0");
    h.update(token.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The session token the request's cookie carries, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// Where a page that needs a session sends a caller without one: the sign-in page, which
/// brings them back to the same page and query (its filters) afterwards.
pub fn to_sign_in(uri: &axum::http::Uri) -> Response {
    let back = uri.path_and_query().map_or("/console/", |p| p.as_str());
    let next = form_urlencoded_value(back);
    Redirect::to(&format!("/console/signin?next={next}")).into_response()
}

/// `value` percent-encoded for a query string.
pub fn form_urlencoded_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether a page script (not a person following a link) made the request: such calls
/// get a status, not a redirect to a page.
fn from_script(headers: &HeaderMap) -> bool {
    headers.contains_key("x-csrf-token")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| {
                a.starts_with("application/json") || a.starts_with("text/event-stream")
            })
}

impl FromRequestParts<Services> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &Services) -> Result<Self, Response> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(if from_script(&parts.headers) {
                StatusCode::UNAUTHORIZED.into_response()
            } else {
                to_sign_in(&uri)
            });
        };
        match svc.identity.principal(&token).await {
            Ok(who) => {
                ims_http::note_caller(&who);
                Ok(Session {
                    csrf: csrf_of(&token),
                    who,
                    token,
                })
            }
            Err(ims_domain::Error::Unauthenticated(_) | ims_domain::Error::InvalidInput(_)) => {
                Err(if from_script(&parts.headers) {
                    StatusCode::UNAUTHORIZED.into_response()
                } else {
                    with_cookie(to_sign_in(&uri), &clear_cookie())
                })
            }
            Err(e) => Err(crate::pages::error_page(&e)),
        }
    }
}

impl Session {
    /// Refuses an unsafe request whose CSRF token (form field or header) is not this
    /// session's, or that comes from another site.
    pub fn check(&self, headers: &HeaderMap, sent: Option<&str>) -> Result<(), Refused> {
        let sent = sent.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
        if !same_origin(headers) || sent != Some(self.csrf.as_str()) {
            return Err(Refused);
        }
        Ok(())
    }
}

/// A request refused as cross-site or without the session's CSRF token.
#[derive(Debug)]
pub struct Refused;

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        forbidden()
    }
}

/// The answer to a cross-site or token-less unsafe request.
pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "The request did not come from this console (missing or wrong CSRF token).",
    )
        .into_response()
}

/// Whether the request comes from a page of this site: browsers say so in
/// `Sec-Fetch-Site`, or in `Origin`, which must then name the host the request went to.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    origin_host.is_some() && origin_host == host
}

/// The `Set-Cookie` value of a new session that lasts `max_age` seconds.
pub fn session_cookie(token: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.max(0)
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// `resp` with a `Set-Cookie` header added.
pub fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Where to go after signing in: a console path only (never another site).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/console/images".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_stays_in_the_console() {
        assert_eq!(
            safe_next(Some("/console/images?status=active")),
            "/console/images?status=active"
        );
        assert_eq!(
            safe_next(Some("//evil.example/console/")),
            "/console/images"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/console/images");
        assert_eq!(safe_next(Some("/console/\\evil")), "/console/images");
        assert_eq!(safe_next(None), "/console/images");
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9292"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9292"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_csrf_depends_on_it() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ims_console=abc; b=2"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("abc"));
        assert_ne!(csrf_of("abc"), csrf_of("abd"));
        assert_eq!(csrf_of("abc").len(), 32);
    }
}
