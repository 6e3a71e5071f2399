//! The queue use cases put jobs on: the job rows (written with the aggregate change that
//! needs them) and the wake-up that tells this node's runner to look at once.

use std::sync::Arc;

use tokio::sync::Notify;

use super::{Job, JobRepo};
use crate::error::Result;

/// Where use cases enqueue jobs and where the runner waits for them.
#[derive(Clone)]
pub struct JobQueue {
    jobs: Arc<dyn JobRepo>,
    wakeup: Arc<Notify>,
}

impl JobQueue {
    /// A queue stored in `jobs`.
    pub fn new(jobs: Arc<dyn JobRepo>) -> Self {
        JobQueue {
            jobs,
            wakeup: Arc::new(Notify::new()),
        }
    }

    /// The job store, for reads (job views, listings, admission counts).
    pub fn repo(&self) -> &Arc<dyn JobRepo> {
        &self.jobs
    }

    /// Enqueues a job that needs no other write, and wakes a worker.
    pub async fn enqueue(&self, job: &Job) -> Result<()> {
        self.jobs.record(job).await?;
        self.wake();
        Ok(())
    }

    /// Enqueues jobs that `write` stores together with the aggregate change that needs
    /// them (one transaction of the aggregate's repository), and wakes a worker once it
    /// has succeeded.
    pub async fn enqueue_with(&self, write: impl Future<Output = Result<()>>) -> Result<()> {
        write.await?;
        self.wake();
        Ok(())
    }

    /// Wakes a worker of this node: jobs were just written.
    pub fn wake(&self) {
        self.wakeup.notify_one();
    }

    /// Resolves when a job was enqueued on this node (or a wake-up was left pending).
    pub async fn woken(&self) {
        self.wakeup.notified().await;
    }
}
