//! Limits on password checks: argon2 costs about 20 MiB and tens of milliseconds per
//! check, so checks run a few at a time, unknown users cost exactly what known ones do,
//! and an account that keeps failing is made to wait. Failures are counted in the catalog
//! (by the SHA-256 of the account), so every node sees the same count and back-off.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::Digest;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::context::now;
use crate::error::{Error, Result};
use crate::identity::repo::IdentityRepo;

/// How password checks are limited (see `[auth]` in docs/CONFIG.md).
#[derive(Debug, Clone)]
pub struct PasswordLimits {
    /// Checks running at once; 0 means twice the number of CPUs.
    pub concurrent: usize,
    /// How long a login waits for a free slot before it fails with `Unavailable`.
    pub wait: Duration,
    /// Consecutive failures of one account before it must wait; 0 turns back-off off.
    pub failures_before_backoff: u32,
    /// The longest back-off (it doubles from one second with each further failure).
    pub backoff_max: Duration,
}

impl Default for PasswordLimits {
    fn default() -> Self {
        PasswordLimits {
            concurrent: 0,
            wait: Duration::from_secs(5),
            failures_before_backoff: 5,
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Failures are forgotten this long after the last one.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// The shared state behind [`PasswordLimits`].
pub(crate) struct PasswordChecks {
    limits: PasswordLimits,
    slots: Arc<Semaphore>,
    dummy: OnceLock<String>,
    /// argon2's working memory, one block array per slot, reused: allocating it per
    /// check left freed 20 MiB chunks cached in every thread's malloc arena.
    scratch: Mutex<Vec<Vec<Block>>>,
}

impl PasswordChecks {
    pub(crate) fn new(limits: PasswordLimits) -> Self {
        let slots = match limits.concurrent {
            0 => 2 * std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        PasswordChecks {
            limits,
            slots: Arc::new(Semaphore::new(slots)),
            dummy: OnceLock::new(),
            scratch: Mutex::default(),
        }
    }

    /// Refuses an account that is backing off, before any argon2 work is spent on it.
    pub(crate) async fn check_backoff(&self, repo: &dyn IdentityRepo, account: &str) -> Result<()> {
        let threshold = self.limits.failures_before_backoff;
        if threshold == 0 {
            return Ok(());
        }
        let Some((count, last)) = repo.login_failures(&account_digest(account)).await? else {
            return Ok(());
        };
        let t = now();
        if count < threshold || t - last >= FORGET_AFTER {
            return Ok(());
        }
        let until = last + self.backoff(count, threshold);
        if until <= t {
            return Ok(());
        }
        Err(Error::Unauthenticated(format!(
            "The request you have made requires authentication. Too many failed attempts: retry in {} s.",
            (until - t).whole_seconds().max(1)
        )))
    }

    /// How long an account with `count` consecutive failures waits: from one second at
    /// the threshold, doubling with each further failure, up to `backoff_max`.
    fn backoff(&self, count: u32, threshold: u32) -> Duration {
        let doublings = (count - threshold).min(16);
        Duration::from_secs(1u64 << doublings).min(self.limits.backoff_max)
    }

    /// Whether `password` matches `phc`. Without a hash (unknown user) the password is
    /// checked against a hash of a random password, so the answer takes as long.
    /// Waits at most `wait` for a free slot, then fails with `Unavailable`.
    pub(crate) async fn verify(&self, password: String, phc: Option<String>) -> Result<bool> {
        let _slot = tokio::time::timeout(self.limits.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Error::Unavailable("too many password checks at once; retry".into()))?
            .map_err(Error::internal)?;
        let dummy = self.dummy.get().cloned();
        let mut blocks = self
            .scratch
            .lock()
            .map_err(Error::internal)?
            .pop()
            .unwrap_or_default();
        let (matched, dummy, blocks) = tokio::task::spawn_blocking(move || {
            let real = phc.is_some();
            let phc = phc.or(dummy).unwrap_or_else(dummy_hash);
            let ok = matches(&password, &phc, &mut blocks);
            (real && ok, (!real).then_some(phc), blocks)
        })
        .await
        .map_err(Error::internal)?;
        if let Ok(mut scratch) = self.scratch.lock() {
            scratch.push(blocks);
        }
        if let Some(d) = dummy {
            let _ = self.dummy.set(d);
        }
        Ok(matched)
    }

    /// Counts a failure (starting or lengthening the back-off) or clears the account.
    pub(crate) async fn record(
        &self,
        repo: &dyn IdentityRepo,
        account: &str,
        ok: bool,
    ) -> Result<()> {
        let digest = account_digest(account);
        if ok {
            return repo.clear_login_failures(&digest).await;
        }
        if self.limits.failures_before_backoff == 0 {
            return Ok(());
        }
        let t = now();
        repo.add_login_failure(&digest, t, t - FORGET_AFTER).await
    }
}

/// What the catalog keys an account's failures by: its SHA-256, so names typed into a
/// login form (sometimes a password by mistake) are not stored.
fn account_digest(account: &str) -> String {
    hex::encode(sha2::Sha256::digest(account.as_bytes()))
}

/// Whether `password` hashes to the PHC string `phc`, computed in `blocks` (grown to the
/// hash's memory cost on first use) and compared in constant time.
fn matches(password: &str, phc: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) =
        (Algorithm::try_from(hash.algorithm), Params::try_from(&hash))
    else {
        return false;
    };
    let version = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let Ok(version) = version else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    if blocks.len() < params.block_count() {
        blocks.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..])
        .is_ok()
        && Output::new(&out).is_ok_and(|o| o == expected)
}

/// An argon2 hash of a random password, with the default parameters real hashes use.
fn dummy_hash() -> String {
    let salt = SaltString::encode_b64(super::random_hex(16).as_bytes())
        .expect("hex is valid salt material");
    Argon2::default()
        .hash_password(super::random_hex(16).as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_the_maximum() {
        let checks = PasswordChecks::new(PasswordLimits {
            failures_before_backoff: 3,
            backoff_max: Duration::from_secs(60),
            ..PasswordLimits::default()
        });
        let waits: Vec<u64> = (3..11).map(|n| checks.backoff(n, 3).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(checks.backoff(u32::MAX, 3).as_secs(), 60);
    }

    #[tokio::test]
    async fn unknown_users_are_checked_against_a_real_hash() {
        let checks = PasswordChecks::new(PasswordLimits::default());
        assert!(!checks.verify("pw".into(), None).await.unwrap());
        assert!(
            checks
                .dummy
                .get()
                .is_some_and(|d| d.starts_with("$argon2id$"))
        );
        let real = dummy_hash();
        assert!(!checks.verify("pw".into(), Some(real)).await.unwrap());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let known = Argon2::default()
            .hash_password(b"right", &salt)
            .unwrap()
            .to_string();
        assert!(
            checks
                .verify("right".into(), Some(known.clone()))
                .await
                .unwrap()
        );
        assert!(!checks.verify("wrong".into(), Some(known)).await.unwrap());
    }
}
