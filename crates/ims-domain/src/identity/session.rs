//! Session logins by digest: the ZStack way of logging in.
//!
//! ZStack clients never send a clear-text password: they send the lower-case hex
//! SHA-512 of it, and then name a *session* (32 hex digits) on every call. ims stores
//! passwords as argon2 hashes, which cannot check a SHA-512 digest. So whenever a
//! password is set (bootstrap, user creation, password change) ims also stores a
//! **verifier**: the argon2 hash of the password's SHA-512 hex. A digest login is
//! checked against that verifier with the same argon2 cost, back-off and constant work
//! for unknown accounts as a password login. Users whose password was set before
//! verifiers existed have none and cannot log in this way until their password is set
//! again (`ims admin user password`). The verifier is exactly as strong as the
//! argon2 password hash: the digest is as good as the password to an attacker who
//! could replay it, which is the ZStack protocol's property, not ims's.
//!
//! Sessions live in the catalog (so any node can validate them), keyed by the SHA-256
//! of the session id like tokens. Every authenticated call slides the expiry to now +
//! the session lifetime, but writes it only when that moves it by a tenth of the
//! lifetime or a minute, whichever is less ([`SessionService::touch`]): a client's stream
//! of calls reads its session and writes it at most once a minute, and a session may
//! lapse up to that much earlier than on ZStack.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::Digest;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::identity::DEFAULT_DOMAIN_ID;
use crate::identity::service::{IdentityService, hash_password};
use crate::image::service::metadata::now;
use crate::principal::Principal;
use crate::text;

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hex SHA-256 of the session id.
    pub digest: String,
    /// The user.
    pub user_id: String,
    /// The project the session acts in (the user's default project).
    pub project_id: String,
    /// When it was opened.
    pub created_at: OffsetDateTime,
    /// When it lapses unless used before.
    pub expires_at: OffsetDateTime,
}

/// A session as its holder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session id: 32 lower-case hex digits (a random version-4 UUID).
    pub id: String,
    /// What is stored.
    pub record: SessionRecord,
}

/// Where digest verifiers and sessions are stored.
#[async_trait]
pub trait SessionRepo: Send + Sync {
    /// Stores (replaces) a user's digest verifier and ends the user's sessions.
    async fn set_verifier(&self, user_id: &str, verifier: &str) -> Result<()>;
    /// A user's digest verifier, if one was stored.
    async fn verifier(&self, user_id: &str) -> Result<Option<String>>;
    /// Stores a new session.
    async fn insert_session(&self, session: &SessionRecord) -> Result<()>;
    /// A session by digest.
    async fn get_session(&self, digest: &str) -> Result<Option<SessionRecord>>;
    /// Moves a session's expiry; `false` if it is gone.
    async fn extend_session(&self, digest: &str, until: OffsetDateTime) -> Result<bool>;
    /// Ends a session; `false` if it was unknown.
    async fn delete_session(&self, digest: &str) -> Result<bool>;
    /// Deletes sessions that lapsed before `now`.
    async fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64>;
    /// A user's sessions that have not lapsed at `now`.
    async fn count_sessions(&self, user_id: &str, now: OffsetDateTime) -> Result<u64>;
}

/// The lower-case hex SHA-512 of a clear-text password: what ZStack clients send.
pub fn sha512_hex(password: &str) -> String {
    hex::encode(sha2::Sha512::digest(password.as_bytes()))
}

fn digest(session: &str) -> String {
    hex::encode(sha2::Sha256::digest(session.as_bytes()))
}

/// A login that failed: unknown account, wrong digest, no verifier, disabled user.
fn wrong_password() -> Error {
    Error::Unauthenticated("wrong account name or password".into())
}

/// An unknown, ended or lapsed session.
fn invalid_session() -> Error {
    Error::Unauthenticated("the session is invalid or has expired".into())
}

impl IdentityService {
    /// Adds the store of digest verifiers and sessions: from then on every password set
    /// also stores its verifier.
    pub fn with_sessions(mut self, repo: Arc<dyn SessionRepo>) -> Self {
        self.sessions = Some(repo);
        self
    }

    /// Stores the digest verifier of `password` for `user_id` (when sessions are
    /// configured); ends the user's sessions, as a password change revokes tokens.
    pub(crate) async fn store_verifier(&self, user_id: &str, password: &str) -> Result<()> {
        let Some(repo) = &self.sessions else {
            return Ok(());
        };
        let verifier = hash_password(sha512_hex(password)).await?;
        repo.set_verifier(user_id, &verifier).await
    }
}

/// Session logins, validation and logout.
#[derive(Clone)]
pub struct SessionService {
    identity: IdentityService,
    repo: Arc<dyn SessionRepo>,
    ttl: Duration,
    max_per_user: u64,
}

/// ZStack's `identity.session.maxConcurrent`.
pub const DEFAULT_MAX_SESSIONS: u64 = 500;

impl SessionService {
    /// Sessions of `identity` (which must have been given the same `repo` through
    /// [`IdentityService::with_sessions`]) lasting `ttl` after their last use.
    pub fn new(identity: IdentityService, repo: Arc<dyn SessionRepo>, ttl: Duration) -> Self {
        SessionService {
            identity,
            repo,
            ttl: ttl.max(Duration::from_secs(1)),
            max_per_user: DEFAULT_MAX_SESSIONS,
        }
    }

    /// Sets how many live sessions one user may hold; a login beyond is refused with
    /// `QuotaExceeded`.
    pub fn with_max_per_user(mut self, max: u64) -> Self {
        self.max_per_user = max.max(1);
        self
    }

    /// The session lifetime after each use.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Logs `account` (a user name in the default domain) in with the hex SHA-512 of
    /// its password; the session acts in the user's default project. A user holding the
    /// maximum number of live sessions is refused (`QuotaExceeded`).
    pub async fn login(&self, account: &str, password_digest: &str) -> Result<Session> {
        text::check("accountName", account)?;
        text::check("password", password_digest)?;
        let account_key = format!("digest:{account}");
        let repo = &*self.identity.repo;
        self.identity
            .checks
            .check_backoff(repo, &account_key)
            .await?;
        let user = self
            .identity
            .repo
            .find_user(DEFAULT_DOMAIN_ID, account)
            .await?;
        let verifier = match &user {
            Some(u) => self.repo.verifier(&u.id).await?,
            None => None,
        };
        let has_verifier = verifier.is_some();
        // Unknown accounts and accounts without a verifier cost one argon2 check too.
        let matched = self
            .identity
            .checks
            .verify(password_digest.to_ascii_lowercase(), verifier)
            .await?;
        let user = user.filter(|u| matched && has_verifier && u.enabled);
        self.identity
            .checks
            .record(repo, &account_key, user.is_some())
            .await?;
        let user = user.ok_or_else(wrong_password)?;
        let project = user.default_project_id.clone().ok_or_else(wrong_password)?;
        self.identity
            .principal_in(&user.id, &project)
            .await
            .map_err(|_| wrong_password())?;
        let t = now();
        self.repo.purge_sessions(t).await?;
        // Check-then-insert: concurrent logins may pass the cap by a few.
        if self.repo.count_sessions(&user.id, t).await? >= self.max_per_user {
            return Err(Error::QuotaExceeded(format!(
                "Max number of active sessions ({}) exceeded",
                self.max_per_user
            )));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let record = SessionRecord {
            digest: digest(&id),
            user_id: user.id,
            project_id: project,
            created_at: t,
            expires_at: t + self.ttl,
        };
        self.repo.insert_session(&record).await?;
        Ok(Session { id, record })
    }

    /// The live session `id`, its expiry slid forward.
    pub async fn touch(&self, id: &str) -> Result<SessionRecord> {
        text::check("session", id)?;
        let key = digest(id);
        let mut record = self
            .repo
            .get_session(&key)
            .await?
            .ok_or_else(invalid_session)?;
        let t = now();
        if record.expires_at <= t {
            return Err(invalid_session());
        }
        // Slide only when a tenth of the lifetime (at most a minute) is gained, so that
        // a client's stream of calls does not write the row on every call; the expiry
        // is then at most that much earlier than ZStack's.
        let until = t + self.ttl;
        let step = (self.ttl / 10).min(Duration::from_secs(60));
        if until - record.expires_at >= step {
            if !self.repo.extend_session(&key, until).await? {
                return Err(invalid_session());
            }
            record.expires_at = until;
        }
        Ok(record)
    }

    /// The caller a session stands for (user and project still enabled, a role still
    /// granted); slides the session.
    pub async fn principal(&self, id: &str) -> Result<Principal> {
        let record = self.touch(id).await?;
        self.identity
            .principal_in(&record.user_id, &record.project_id)
            .await
            .map_err(|_| invalid_session())
    }

    /// Whether `id` is a live session (does not slide it).
    pub async fn is_valid(&self, id: &str) -> Result<bool> {
        text::check("session", id)?;
        Ok(self
            .repo
            .get_session(&digest(id))
            .await?
            .is_some_and(|r| r.expires_at > now()))
    }

    /// Ends a session; unknown ones are ignored (logging out twice is fine).
    pub async fn logout(&self, id: &str) -> Result<()> {
        text::check("session", id)?;
        self.repo.delete_session(&digest(id)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_zstacks_password_hash() {
        assert_eq!(
            sha512_hex("password"),
            "b109f3bbbc244eb82441917ed06d618b9008dd09b3befd1b5e07394c706a8bb980b1d7785e5976ec049b46df5f1326af5a2ea6d103fd07c95385ffab0cacbc86"
        );
    }
}
