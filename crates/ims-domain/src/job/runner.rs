//! The job runner: claims jobs under a lease, runs each through the handler registered
//! for its kind, heartbeats, and records the outcome. It knows no aggregate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::lease::JobLease;
use super::{Job, JobErrorCode, JobHandlers, JobKind, JobQueue, JobStatus};
use crate::context::{Node, now};
use crate::error::{Error, Result};

/// Attempts before a job that keeps failing transiently (or keeps crashing its node) fails.
pub const MAX_ATTEMPTS: u32 = 3;

/// Runs jobs from the catalog queue until shutdown.
pub struct JobRunner {
    work: Arc<Work>,
    slots: Arc<Semaphore>,
    per_kind: Arc<HashMap<JobKind, usize>>,
    running: Arc<Mutex<HashMap<JobKind, usize>>>,
}

/// What every job task shares: where jobs are, who this node is, who runs which kind.
struct Work {
    queue: JobQueue,
    node: Node,
    handlers: JobHandlers,
}

/// Counts a running job of its kind until dropped.
struct KindSlot {
    kind: JobKind,
    running: Arc<Mutex<HashMap<JobKind, usize>>>,
}

impl Drop for KindSlot {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock()
            && let Some(n) = running.get_mut(&self.kind)
        {
            *n = n.saturating_sub(1);
        }
    }
}

impl JobRunner {
    /// A runner of `queue`'s jobs on `node`, through `handlers`, with at most
    /// `concurrency` jobs at once on this node and at most `per_kind[k]` of kind `k`.
    pub fn new(
        queue: JobQueue,
        node: Node,
        handlers: JobHandlers,
        concurrency: usize,
        per_kind: HashMap<JobKind, usize>,
    ) -> Self {
        JobRunner {
            work: Arc::new(Work {
                queue,
                node,
                handlers,
            }),
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            per_kind: Arc::new(per_kind),
            running: Arc::default(),
        }
    }

    /// Kinds whose per-kind limit is reached on this node.
    fn saturated(&self) -> Vec<JobKind> {
        let running = self.running.lock().map(|r| r.clone()).unwrap_or_default();
        self.per_kind
            .iter()
            .filter(|(kind, limit)| running.get(kind).copied().unwrap_or(0) >= **limit)
            .map(|(kind, _)| *kind)
            .collect()
    }

    fn occupy(&self, kind: JobKind) -> KindSlot {
        if let Ok(mut running) = self.running.lock() {
            *running.entry(kind).or_default() += 1;
        }
        KindSlot {
            kind,
            running: Arc::clone(&self.running),
        }
    }

    /// Claims and runs jobs until `shutdown` turns true. Running jobs are left to finish
    /// or, if the process dies, to be reclaimed when their lease lapses.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
                return;
            };
            match self.claim().await {
                Ok(Some(job)) => {
                    let work = Arc::clone(&self.work);
                    let kind_slot = self.occupy(job.kind);
                    tokio::spawn(async move {
                        work.run_one(job).await;
                        drop((permit, kind_slot));
                    });
                    continue;
                }
                Ok(None) => drop(permit),
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "job claim failed");
                }
            }
            tokio::select! {
                _ = self.work.queue.woken() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn claim(&self) -> Result<Option<Job>> {
        let node = &self.work.node;
        let skip = self.saturated();
        let repo = self.work.queue.repo();
        let at = now();
        let claimed = repo
            .claim(&node.id, at, node.lease_until(), &skip, node.alive_since())
            .await?;
        if let Some(job) = &claimed {
            crate::telemetry::job_claimed(job, at);
        }
        Ok(claimed)
    }
}

impl Work {
    /// Runs one claimed job and records its outcome, unless the lease is lost first:
    /// then nothing more is written for it (see [`super::lease`]).
    async fn run_one(&self, mut job: Job) {
        tracing::info!(job.id = %job.id, job.kind = %job.kind, attempt = job.attempts, taken_from = ?job.taken_from, "job started");
        let lease = JobLease::new(Arc::clone(self.queue.repo()), &job.id, self.node.clone());
        let Some(handler) = self.handlers.get(job.kind).cloned() else {
            let reason = format!("No handler on this node runs jobs of kind {}", job.kind);
            tracing::error!(job.id = %job.id, reason, "job failed");
            fail(&mut job, JobErrorCode::NoHandler, reason);
            return self.finish(&lease, &job).await;
        };
        let result = if job.attempts > MAX_ATTEMPTS {
            Err(Error::Unavailable(
                "the job was interrupted too many times".into(),
            ))
        } else {
            let progress = Arc::new(crate::pipeline::Progress::default());
            let _hb = heartbeat(Arc::clone(&lease), Arc::clone(&progress), self.node.lease);
            let work = crate::pipeline::JOB_PROGRESS
                .scope(progress, Arc::clone(&lease).scope(handler.run(&job)));
            // Dropping the job's future is what stops its writes at once: a blob being
            // written is discarded with its writer, and no later step runs.
            tokio::select! {
                result = work => result,
                () = lease.lost() => return,
            }
        };
        // Whatever happened, the outcome (and a failure's cleanup of the subject) is
        // written only under a lease this node still holds.
        if !lease.renew(job.progress).await {
            return;
        }
        settle(&mut job, result);
        if job.status == JobStatus::Fail
            && let Err(e) = handler.on_failure(&job).await
        {
            tracing::error!(job.id = %job.id, error = %e, "job failure cleanup failed");
        }
        self.finish(&lease, &job).await;
    }

    /// Records the job's outcome while this node still holds its lease.
    async fn finish(&self, lease: &JobLease, job: &Job) {
        if lease.is_lost() {
            return;
        }
        match self.queue.repo().finish(job, &self.node.id).await {
            Ok(true) => {
                crate::telemetry::job_finished(job);
                tracing::info!(job.id = %job.id, status = %job.status, "job finished")
            }
            Ok(false) => tracing::warn!(job.id = %job.id, "lost the job lease before finishing"),
            Err(e) => {
                tracing::error!(job.id = %job.id, error = %e, "could not record the job outcome")
            }
        }
    }
}

/// Turns a run's result into the job's next state: done, waiting to retry, or failed.
fn settle(job: &mut Job, result: Result<()>) {
    job.lease_owner = None;
    job.lease_until = None;
    job.not_before = None;
    match result {
        Ok(()) => {
            job.status = JobStatus::Success;
            job.progress = 100;
            job.end_time = Some(now());
        }
        Err(Error::Unavailable(reason)) if job.attempts < MAX_ATTEMPTS => {
            let delay = retry_delay(job.attempts);
            let reason = crate::outbound::redact_urls_in(&reason);
            tracing::warn!(job.id = %job.id, reason, retry_in_secs = delay.as_secs(), "job will be retried");
            job.status = JobStatus::Init;
            job.not_before = Some(now() + delay);
        }
        Err(e) => {
            // Neither the log nor the stored reason may carry a URL's credentials or
            // query string (presigned tokens).
            let reason = crate::outbound::redact_urls_in(&user_reason(&e));
            tracing::warn!(job.id = %job.id, error = %crate::outbound::redact_urls_in(&e.to_string()), "job failed");
            fail(job, JobErrorCode::of(&e), reason);
        }
    }
}

/// Marks a job failed for good with `code` and a reason safe to show users.
fn fail(job: &mut Job, code: JobErrorCode, reason: String) {
    job.lease_owner = None;
    job.lease_until = None;
    job.status = JobStatus::Fail;
    job.error_code = Some(code);
    job.fail_reason = Some(reason);
    job.end_time = Some(now());
}

/// Exponential backoff between attempts after a transient failure: 2 s, 4 s, 8 s….
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::from_secs(1 << attempts.clamp(1, 8))
}

/// How often a running job's progress is looked at; a change is written at once, so
/// callers polling the job see it move within about this long.
const PROGRESS_TICK: Duration = Duration::from_millis(500);

/// Renews the job's lease every `lease / 3`, and writes its progress whenever it moved
/// (each write renews the lease too). Stops when the lease is lost, which also ends the
/// job's work (the runner waits on [`JobLease::lost`]).
fn heartbeat(
    lease: Arc<JobLease>,
    progress: Arc<crate::pipeline::Progress>,
    length: Duration,
) -> crate::service::data::AbortOnDrop {
    crate::service::data::AbortOnDrop(tokio::spawn(async move {
        let (mut written, mut renewed) = (0u8, tokio::time::Instant::now());
        loop {
            tokio::time::sleep(PROGRESS_TICK.min(length / 3)).await;
            let percent = progress.percent();
            if percent == written && renewed.elapsed() < length / 3 {
                continue;
            }
            if !lease.renew(percent).await {
                return;
            }
            (written, renewed) = (percent, tokio::time::Instant::now());
        }
    }))
}

fn user_reason(e: &Error) -> String {
    match e {
        Error::Internal(_) => "Internal error while running the job".into(),
        other => other.to_string(),
    }
}
