//! `[http]` and `[auth]`: what one client may cost the server before it is authenticated.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[http]`: connections and request bodies.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Open connections at most; further ones are accepted and closed at once.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and the longest a kept-alive
    /// connection may sit idle between requests.
    pub header_read_timeout_secs: u64,
    /// The largest request body read into memory (JSON, or a signed body), bytes.
    /// Image data streams and is limited by `images.size_cap` instead.
    pub json_body_max: usize,
    /// Bytes of not-yet-verified signed bodies held at once, across all connections.
    pub buffered_body_total: usize,
    /// The longest a JSON (non-data) request body may take to arrive, seconds.
    pub body_timeout_secs: u64,
    /// Accept `UNSIGNED-PAYLOAD` on Glance's json-patch `PATCH /v2/images/{id}`, as
    /// huaweicloudsdkims' `glance_update_image` signs it. Off: that body must be hashed.
    pub unsigned_json_patch: bool,
    /// Whether signatures of state-changing signed requests are recorded in the catalog
    /// (for every node) to refuse replays within the 15-minute window.
    pub replay_check: bool,
    /// Seconds after its first use during which the same signature is still accepted
    /// (SDK signatures are dated to the second, so a client repeating a request within
    /// one second repeats its signature); later repeats are refused as replays.
    pub replay_grace_secs: u64,
}

/// The defaults of `[http]`: the guard's own request limits ([`HttpLimits::default`]),
/// and the listener's connection cap and header timeout, which live here only.
///
/// [`HttpLimits::default`]: ims_http::guard::HttpLimits
impl Default for HttpConfig {
    fn default() -> Self {
        let d = ims_http::guard::HttpLimits::default();
        HttpConfig {
            max_connections: 512,
            header_read_timeout_secs: 10,
            json_body_max: d.json_body_max,
            buffered_body_total: d.buffered_body_total,
            body_timeout_secs: d.body_timeout.as_secs(),
            unsigned_json_patch: d.unsigned_json_patch,
            replay_check: d.replay_check,
            replay_grace_secs: d.replay_grace.as_secs(),
        }
    }
}

impl HttpConfig {
    /// The request limits these keys describe.
    pub fn limits(&self) -> ims_http::guard::HttpLimits {
        ims_http::guard::HttpLimits {
            json_body_max: self.json_body_max.max(1),
            buffered_body_total: self.buffered_body_total,
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            unsigned_json_patch: self.unsigned_json_patch,
            replay_check: self.replay_check,
            replay_grace: Duration::from_secs(self.replay_grace_secs),
        }
    }

    /// The header-read (and idle) timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }
}

/// `[auth]`: password checks.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// argon2 password checks running at once; 0 = twice the number of CPUs.
    pub password_checks: usize,
    /// Milliseconds a login waits for a free check before it is answered 503.
    pub password_check_wait_ms: u64,
    /// Consecutive failed logins of one account (known or not) before it backs off;
    /// 0 turns back-off off.
    pub failures_before_backoff: u32,
    /// The longest back-off, seconds (it starts at 1 s and doubles).
    pub backoff_max_secs: u64,
}

/// The defaults of `[auth]` are the domain's ([`PasswordLimits::default`]).
///
/// [`PasswordLimits::default`]: ims_domain::service::identity::PasswordLimits
impl Default for AuthConfig {
    fn default() -> Self {
        let d = ims_domain::service::identity::PasswordLimits::default();
        AuthConfig {
            password_checks: d.concurrent,
            password_check_wait_ms: u64::try_from(d.wait.as_millis()).unwrap_or(u64::MAX),
            failures_before_backoff: d.failures_before_backoff,
            backoff_max_secs: d.backoff_max.as_secs(),
        }
    }
}

impl AuthConfig {
    /// The password-check limits these keys describe.
    pub fn password_limits(&self) -> ims_domain::service::identity::PasswordLimits {
        ims_domain::service::identity::PasswordLimits {
            concurrent: self.password_checks,
            wait: Duration::from_millis(self.password_check_wait_ms),
            failures_before_backoff: self.failures_before_backoff,
            backoff_max: Duration::from_secs(self.backoff_max_secs.max(1)),
        }
    }
}
