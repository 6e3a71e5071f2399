//! What every page shares: the header's session facts, rendering (askama escapes every
//! value it writes into HTML), error pages in the domain's own words, and the formatting
//! of sizes and times.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use ims_domain::principal::Principal;
use time::OffsetDateTime;

use crate::session::Session;

/// The header of a signed-in page.
pub struct Nav {
    /// The user's name.
    pub user: String,
    /// The project id the session acts in.
    pub project: String,
    /// An administrator's session.
    pub admin: bool,
    /// The session's CSRF token (the sign-out form, and scripts through a `<meta>`).
    pub csrf: String,
    /// Which section is open: `images`, `jobs` or `admin`.
    pub section: &'static str,
}

impl Nav {
    /// The header of `session` with `section` open.
    pub fn of(session: &Session, section: &'static str) -> Option<Nav> {
        Some(Nav {
            user: session.who.user_name.clone(),
            project: session.who.project_id.clone(),
            admin: session.who.is_admin(),
            csrf: session.csrf.clone(),
            section,
        })
    }
}

/// A page as HTML, or a plain 500 if its template fails (it cannot, short of a bug).
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    status: String,
    message: String,
}

/// The page for an error a request ended in, with the status the OpenStack dialects
/// give it and the domain's message (internal details stay in the log).
pub fn error_page(e: &ims_domain::Error) -> Response {
    let status = ims_http::openstack_status(e);
    let page = ErrorPage {
        nav: None,
        status: status.to_string(),
        message: ims_http::caller_message(e),
    };
    (status, render(&page)).into_response()
}

/// What a failed action tells its form: the domain's words, as the APIs say them.
pub fn message(e: &ims_domain::Error) -> String {
    ims_http::caller_message(e)
}

/// Bytes in binary units, as glanceclient and Horizon show them (`–` when unknown).
pub fn size(bytes: Option<u64>) -> String {
    let Some(b) = bytes else {
        return "–".to_string();
    };
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = b as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn when(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&f).unwrap_or_default()
}

/// Whether `who` may change things at all (members and admins; readers look only).
pub fn can_write(who: &Principal) -> bool {
    who.can_write()
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_like_the_clients() {
        assert_eq!(size(None), "–");
        assert_eq!(size(Some(512)), "512 B");
        assert_eq!(size(Some(64 << 20)), "64.0 MiB");
        assert_eq!(size(Some(3 << 30)), "3.0 GiB");
    }
}
