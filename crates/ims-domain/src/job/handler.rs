//! What runs a job: each aggregate registers a handler for the kinds it owns, and the
//! runner looks the handler up by kind. A new kind needs a handler and one `register`
//! call where the process is wired; the runner does not change.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Job, JobKind};
use crate::error::Result;

/// Runs the jobs of some kinds, and cleans up after those that fail for good.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// The kinds this handler runs.
    fn kinds(&self) -> &[JobKind];
    /// Does the job's work (under its lease). `Unavailable` is retried with backoff; any
    /// other error fails the job. Must be idempotent: a job whose node died runs again.
    async fn run(&self, job: &Job) -> Result<()>;
    /// Called once when the job has failed for good, before its outcome is recorded, to
    /// leave its subject in a consistent state (an image killed or queued again).
    async fn on_failure(&self, job: &Job) -> Result<()>;
}

/// The handlers a runner dispatches through, by kind.
#[derive(Clone, Default)]
pub struct JobHandlers {
    by_kind: HashMap<JobKind, Arc<dyn JobHandler>>,
}

impl JobHandlers {
    /// No handlers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for each of its kinds; a kind registered twice is a wiring
    /// bug, refused with the kind's name.
    pub fn register(&mut self, handler: Arc<dyn JobHandler>) -> Result<&mut Self> {
        for kind in handler.kinds() {
            if self.by_kind.contains_key(kind) {
                return Err(crate::error::Error::internal(format!(
                    "two job handlers for kind {kind}"
                )));
            }
            self.by_kind.insert(*kind, Arc::clone(&handler));
        }
        Ok(self)
    }

    /// The handler of `kind`, if one is registered.
    pub fn get(&self, kind: JobKind) -> Option<&Arc<dyn JobHandler>> {
        self.by_kind.get(&kind)
    }
}
