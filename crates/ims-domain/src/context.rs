//! What every use case may ask of the process it runs in: which node this is, how long
//! its leases last, and the clock.

use std::time::Duration;

use time::OffsetDateTime;

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
}

impl Default for Node {
    fn default() -> Self {
        Node::new("node", Duration::from_secs(30))
    }
}

/// The current time, UTC: the one clock of the domain.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
