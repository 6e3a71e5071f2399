//! What every use case may ask of the process it runs in: which node this is, how long
//! its leases last, and the clock.
//!
//! The clock follows the catalog's: leases, token and session expiries and signature
//! windows are compared by every node against times other nodes wrote, so a node whose
//! own clock is off would take over live leases or expire fresh tokens. A server measures
//! the catalog's time at start-up and every [`CLOCK_FOLLOW_EVERY`] ([`follow`]) and
//! [`now`] adds the difference.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;

/// This node, as the leases it takes name it. Every lease (a job's, an image's during a
/// transfer) is owned by `id` and lapses `lease` after its last renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The owner written into every lease this process takes; one per process, so two
    /// processes never mistake each other's leases for their own.
    pub id: String,
    /// How long a lease lasts without a heartbeat; heartbeats renew it every `lease / 3`.
    pub lease: Duration,
}

impl Node {
    /// How long leases last unless configured (`[jobs] lease_secs`).
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

    /// A node named `id` whose leases last `lease`.
    pub fn new(id: impl Into<String>, lease: Duration) -> Self {
        Node {
            id: id.into(),
            lease,
        }
    }

    /// When a lease taken or renewed now lapses.
    pub fn lease_until(&self) -> OffsetDateTime {
        now() + self.lease
    }

    /// The earliest last sighting of a node still taken to be alive: nodes record
    /// themselves every sweep (one lease), so three leases without one mean it stopped.
    pub fn alive_since(&self) -> OffsetDateTime {
        now() - self.lease * 3
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::new("node", Duration::from_secs(30))
    }
}

/// The current time, UTC: the one clock of the domain (this host's clock corrected to
/// the catalog's, once [`follow`] has run).
pub fn now() -> OffsetDateTime {
    local_clock() + time::Duration::microseconds(OFFSET_MICROS.load(Ordering::Relaxed))
}

/// How often a server measures the catalog's clock again.
pub const CLOCK_FOLLOW_EVERY: Duration = Duration::from_secs(30);

/// What this process adds to its host's clock to read the catalog's, in microseconds.
static OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);
/// A deliberate error of this host's clock, in microseconds: a fault injected by tests
/// (`IMS_TEST_CLOCK_SKEW_SECS`) to show that [`follow`] corrects it.
static SKEW_MICROS: AtomicI64 = AtomicI64::new(0);

fn local_clock() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::microseconds(SKEW_MICROS.load(Ordering::Relaxed))
}

/// Makes this host's clock read `secs` seconds off (tests of clock skew between nodes
/// only).
pub fn inject_clock_skew(secs: i64) {
    SKEW_MICROS.store(secs.saturating_mul(1_000_000), Ordering::Relaxed);
}

/// The clock every node agrees on: the catalog's.
#[async_trait]
pub trait ReferenceClock: Send + Sync {
    /// The reference's current time.
    async fn reference_time(&self) -> Result<OffsetDateTime>;
}

/// Measures `clock` against this host's and makes [`now`] follow it: the reference is
/// taken to have been read halfway through the round trip. Returns the correction.
pub async fn follow(clock: &dyn ReferenceClock) -> Result<time::Duration> {
    let before = local_clock();
    let reference = clock.reference_time().await?;
    let after = local_clock();
    let local = before + (after - before) / 2;
    let offset: time::Duration = reference - local;
    OFFSET_MICROS.store(
        i64::try_from(offset.whole_microseconds()).unwrap_or(0),
        Ordering::Relaxed,
    );
    Ok(offset)
}

/// How far off this host's clock may be before each correction is logged as a warning.
const SKEW_WARNING: time::Duration = time::Duration::seconds(2);

/// Follows the catalog's clock at start-up (before recovery looks at any lease) and every
/// sweep after it.
pub struct ClockFollower(pub std::sync::Arc<dyn ReferenceClock>);

impl ClockFollower {
    async fn measure(&self) -> Result<()> {
        let offset = follow(&*self.0).await?;
        if offset.abs() > SKEW_WARNING {
            tracing::warn!(
                offset_ms = offset.whole_milliseconds() as i64,
                "this host's clock is off from the catalog's; ims follows the catalog's, fix NTP"
            );
        }
        Ok(())
    }
}

#[async_trait]
impl crate::job::Sweeper for ClockFollower {
    fn name(&self) -> &'static str {
        "clock"
    }

    async fn recover(&self) -> Result<()> {
        self.measure().await
    }

    async fn sweep(&self) -> Result<()> {
        self.measure().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ahead(time::Duration);

    #[async_trait]
    impl ReferenceClock for Ahead {
        async fn reference_time(&self) -> Result<OffsetDateTime> {
            Ok(OffsetDateTime::now_utc() + self.0)
        }
    }

    #[tokio::test]
    async fn now_follows_the_reference_despite_a_skewed_host_clock() {
        inject_clock_skew(30);
        let offset = follow(&Ahead(time::Duration::seconds(-5))).await.unwrap();
        let off = now() - (OffsetDateTime::now_utc() - time::Duration::seconds(5));
        inject_clock_skew(0);
        follow(&Ahead(time::Duration::ZERO)).await.unwrap();
        assert!((offset + time::Duration::seconds(35)).abs() < time::Duration::milliseconds(50));
        assert!(off.abs() < time::Duration::milliseconds(50), "{off}");
    }
}

tokio::task_local! {
    /// The API (dialect) whose request the current task serves: each dialect's router
    /// runs its handlers inside this scope, so a new image records where it was made.
    pub static CALLER_API: &'static str;
}

/// The API of the request being served, if the current task serves one.
pub fn caller_api() -> Option<&'static str> {
    CALLER_API.try_with(|api| *api).ok()
}
