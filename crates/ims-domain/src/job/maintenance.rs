//! Start-up recovery and the periodic sweep, through a list of sweepers: each aggregate
//! registers what it must put right after a crash and check now and then (the job
//! engine its own leases, images their abandoned transfers and orphaned blobs, identity
//! its expired tokens), and the loop here knows none of them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::context::now;
use tokio::sync::watch;

use super::JobQueue;
use crate::context::Node;
use crate::error::Result;

/// One aggregate's upkeep.
#[async_trait]
pub trait Sweeper: Send + Sync {
    /// A name for logs.
    fn name(&self) -> &'static str;
    /// Once at start-up, before any job runs or request is served: puts right what a
    /// previous incarnation of this node left half done.
    async fn recover(&self) -> Result<()> {
        Ok(())
    }
    /// Every sweep period: puts right what other nodes that died left half done.
    async fn sweep(&self) -> Result<()> {
        Ok(())
    }
}

/// Runs the sweepers: all of them at start-up, then every `period`.
pub struct Maintenance {
    sweepers: Vec<Arc<dyn Sweeper>>,
    period: Duration,
}

impl Maintenance {
    /// Sweeps every `period` (the lease length: a dead node's work is then taken over
    /// within about two lease lengths).
    pub fn new(period: Duration) -> Self {
        Maintenance {
            sweepers: Vec::new(),
            period,
        }
    }

    /// Adds a sweeper; they run in the order they were added.
    pub fn with(mut self, sweeper: Arc<dyn Sweeper>) -> Self {
        self.sweepers.push(sweeper);
        self
    }

    /// Start-up recovery: every sweeper's `recover`, stopping at the first failure.
    pub async fn recover(&self) -> Result<()> {
        for sweeper in &self.sweepers {
            sweeper.recover().await?;
        }
        tracing::info!("recovery done");
        Ok(())
    }

    /// Sweeps until `shutdown` changes. A sweeper's failure is logged; the others and
    /// the next round still run.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.period) => {}
                _ = shutdown.changed() => return,
            }
            for sweeper in &self.sweepers {
                if let Err(e) = sweeper.sweep().await {
                    tracing::warn!(sweeper = sweeper.name(), error = %e, "sweep failed");
                }
            }
        }
    }
}

/// The job engine's own recovery: the jobs a previous incarnation of this node held are
/// released at once, rather than when their leases lapse.
pub struct JobLeases {
    queue: JobQueue,
    node: Node,
}

impl JobLeases {
    /// Recovery of `node`'s jobs in `queue`.
    pub fn new(queue: JobQueue, node: Node) -> Self {
        JobLeases { queue, node }
    }
}

#[async_trait]
impl Sweeper for JobLeases {
    fn name(&self) -> &'static str {
        "job leases"
    }

    async fn recover(&self) -> Result<()> {
        self.sweep().await?;
        let expired = self.queue.repo().expire_leases(&self.node.id).await?;
        tracing::info!(
            jobs.expired = expired,
            "released the jobs of this node's previous run"
        );
        Ok(())
    }

    /// Records that this node runs (jobs pinned to it wait for it while it does).
    async fn sweep(&self) -> Result<()> {
        self.queue.repo().node_seen(&self.node.id, now()).await
    }
}
