//! A running job's lease, and what stops the job's writes once the lease is lost.
//!
//! A node paused past its lease (a stopped process, a long GC-like stall, a partition)
//! finds on waking that another node has claimed its job. From then on it must write
//! nothing: the runner drops the job's future as soon as a heartbeat is refused, and
//! every write of a job's outcome to its subject first calls [`confirm`], which renews
//! the lease and refuses when it is gone, so a worker that had already finished its
//! transfer when it woke does not overwrite the new owner's work either.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Instant;

use super::JobRepo;
use crate::context::Node;
use crate::error::{Error, Result};

tokio::task_local! {
    /// The lease of the job this task runs.
    static CURRENT: Arc<JobLease>;
}

/// The lease this node holds on one running job.
pub struct JobLease {
    jobs: Arc<dyn JobRepo>,
    id: String,
    node: Node,
    lost: watch::Sender<bool>,
    renewed: Mutex<Instant>,
}

impl JobLease {
    /// The lease `node` just took on job `id` by claiming it.
    pub fn new(jobs: Arc<dyn JobRepo>, id: &str, node: Node) -> Arc<Self> {
        Arc::new(JobLease {
            jobs,
            id: id.to_string(),
            node,
            lost: watch::Sender::new(false),
            renewed: Mutex::new(Instant::now()),
        })
    }

    /// Renews the lease and records `progress`; `false` once the lease is lost: another
    /// node holds it, or no renewal has succeeded for a whole lease length (the catalog
    /// was unreachable), after which another node may have claimed the job.
    pub async fn renew(&self, progress: u8) -> bool {
        if self.is_lost() {
            return false;
        }
        let until = self.node.lease_until();
        match self
            .jobs
            .heartbeat(&self.id, &self.node.id, until, progress)
            .await
        {
            Ok(true) => {
                if let Ok(mut renewed) = self.renewed.lock() {
                    *renewed = Instant::now();
                }
                true
            }
            Ok(false) => {
                self.mark_lost("another node holds the job's lease");
                false
            }
            Err(e) => {
                tracing::warn!(job.id = %self.id, error = %e, "job heartbeat failed");
                let stale = self
                    .renewed
                    .lock()
                    .map_or(true, |r| r.elapsed() >= self.node.lease);
                if stale {
                    self.mark_lost("the lease could not be renewed within its length");
                }
                !stale
            }
        }
    }

    /// Whether the lease was found lost.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves once the lease is found lost.
    pub async fn lost(&self) {
        let mut rx = self.lost.subscribe();
        let _ = rx.wait_for(|lost| *lost).await;
    }

    fn mark_lost(&self, why: &str) {
        if !self.lost.send_replace(true) {
            tracing::warn!(
                job.id = %self.id,
                node = %self.node.id,
                why,
                "lost the job lease; the job's work stops here and this node writes nothing more for it"
            );
        }
    }

    /// Runs `work` as this lease's job, so [`confirm`] inside it checks this lease.
    pub async fn scope<F: Future>(self: Arc<Self>, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

/// Called right before a job writes its outcome to its subject: renews the job's lease,
/// and answers `Gone` (the write must not happen) if this node no longer holds it.
/// Outside a job (a request's own use case) there is no lease to check.
pub async fn confirm() -> Result<()> {
    let Ok(lease) = CURRENT.try_with(Arc::clone) else {
        return Ok(());
    };
    if lease.renew(0).await {
        Ok(())
    } else {
        Err(Error::Gone(
            "This node lost the job's lease; another node runs the job now".into(),
        ))
    }
}
