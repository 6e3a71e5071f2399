//! Limits on password checks: argon2 costs about 20 MiB and tens of milliseconds per
//! check, so checks run a few at a time, unknown users cost exactly what known ones do,
//! and an account that keeps failing is made to wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

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
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Accounts (known or not) whose failures are remembered at most.
const TRACKED_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    until: Option<Instant>,
}

/// The shared state behind [`PasswordLimits`].
pub(crate) struct PasswordChecks {
    limits: PasswordLimits,
    slots: Arc<Semaphore>,
    failures: Mutex<HashMap<String, Failures>>,
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
            failures: Mutex::default(),
            dummy: OnceLock::new(),
            scratch: Mutex::default(),
        }
    }

    /// Refuses an account that is backing off, before any argon2 work is spent on it.
    pub(crate) fn check_backoff(&self, account: &str) -> Result<()> {
        let now = Instant::now();
        let failures = self.failures.lock().map_err(Error::internal)?;
        match failures.get(account).and_then(|f| f.until) {
            Some(until) if until > now => Err(Error::Unauthenticated(format!(
                "The request you have made requires authentication. Too many failed attempts: retry in {} s.",
                (until - now).as_secs().max(1)
            ))),
            _ => Ok(()),
        }
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
    pub(crate) fn record(&self, account: &str, ok: bool) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if ok {
            failures.remove(account);
            return;
        }
        let threshold = self.limits.failures_before_backoff;
        if threshold == 0 {
            return;
        }
        let now = Instant::now();
        if failures.len() >= TRACKED_MAX && !failures.contains_key(account) {
            failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if failures.len() >= TRACKED_MAX {
                failures.retain(|_, f| f.until.is_some_and(|u| u > now));
            }
            if failures.len() >= TRACKED_MAX {
                failures.clear();
            }
        }
        let entry = failures.entry(account.to_string()).or_insert(Failures {
            count: 0,
            last: now,
            until: None,
        });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count >= threshold {
            let doublings = (entry.count - threshold).min(16);
            let wait = Duration::from_secs(1u64 << doublings).min(self.limits.backoff_max);
            entry.until = Some(now + wait);
        }
    }
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
    fn backoff_starts_at_the_threshold_and_clears_on_success() {
        let checks = PasswordChecks::new(PasswordLimits {
            failures_before_backoff: 3,
            ..PasswordLimits::default()
        });
        for _ in 0..2 {
            checks.record("u", false);
            assert!(checks.check_backoff("u").is_ok());
        }
        checks.record("u", false);
        assert!(matches!(
            checks.check_backoff("u"),
            Err(Error::Unauthenticated(_))
        ));
        assert!(checks.check_backoff("other").is_ok());
        checks.record("u", true);
        assert!(checks.check_backoff("u").is_ok());
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
