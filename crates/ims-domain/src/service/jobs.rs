//! The job runner: claims jobs under a lease, heartbeats, records outcomes. Also the
//! node's maintenance (start-up `recover`, the periodic `sweep`, which also purges
//! expired tokens) and the job reads dialects show (`job_report`, `job`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::images::{ImageService, now};
use crate::error::{Error, Result};
use crate::job::{Job, JobKind, JobStatus};

/// Attempts before a job that keeps failing transiently (or keeps crashing its node) fails.
pub const MAX_ATTEMPTS: u32 = 3;

/// Runs jobs from the catalog queue until shutdown.
pub struct JobRunner {
    svc: ImageService,
    slots: Arc<Semaphore>,
    per_kind: Arc<std::collections::HashMap<JobKind, usize>>,
    running: Arc<std::sync::Mutex<std::collections::HashMap<JobKind, usize>>>,
}

/// Counts a running job of its kind until dropped.
struct KindSlot {
    kind: JobKind,
    running: Arc<std::sync::Mutex<std::collections::HashMap<JobKind, usize>>>,
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
    /// A runner with at most `concurrency` jobs at once on this node, and at most
    /// `per_kind[k]` of kind `k`.
    pub fn new(
        svc: ImageService,
        concurrency: usize,
        per_kind: std::collections::HashMap<JobKind, usize>,
    ) -> Self {
        JobRunner {
            svc,
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
        let node = self.svc.settings.node_id.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
                return;
            };
            let lease = self.svc.settings.lease;
            let skip = self.saturated();
            match self
                .svc
                .jobs
                .claim(&node, now(), now() + lease, &skip)
                .await
            {
                Ok(Some(job)) => {
                    let svc = self.svc.clone();
                    let kind_slot = self.occupy(job.kind);
                    tokio::spawn(async move {
                        run_one(&svc, job).await;
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
                _ = self.svc.job_wakeup.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

async fn run_one(svc: &ImageService, mut job: Job) {
    let node = svc.settings.node_id.clone();
    tracing::info!(job.id = %job.id, job.kind = %job.kind, attempt = job.attempts, "job started");
    let result = if job.attempts > MAX_ATTEMPTS {
        Err(Error::Unavailable(
            "the job was interrupted too many times".into(),
        ))
    } else {
        let progress = Arc::new(crate::pipeline::Progress::default());
        let _hb = heartbeat(svc, &job.id, Arc::clone(&progress));
        crate::pipeline::JOB_PROGRESS
            .scope(progress, dispatch(svc, &job))
            .await
    };
    job.lease_owner = None;
    job.lease_until = None;
    match result {
        Ok(()) => {
            job.status = JobStatus::Success;
            job.progress = 100;
        }
        Err(Error::Unavailable(reason)) if job.attempts < MAX_ATTEMPTS => {
            let delay = retry_delay(job.attempts);
            let reason = crate::outbound::redact_urls_in(&reason);
            tracing::warn!(job.id = %job.id, reason, retry_in_secs = delay.as_secs(), "job will be retried");
            job.status = JobStatus::Init;
            // For a waiting job the lease column holds the earliest time to claim it again.
            job.lease_until = Some(now() + delay);
        }
        Err(e) => {
            // Neither the log nor the stored reason may carry a URL's credentials or
            // query string (presigned tokens).
            let reason = crate::outbound::redact_urls_in(&user_reason(&e));
            tracing::warn!(job.id = %job.id, error = %crate::outbound::redact_urls_in(&e.to_string()), "job failed");
            job.status = JobStatus::Fail;
            job.error_code = Some(error_code(&e).into());
            job.fail_reason = Some(reason);
            if let Err(e) = on_failure(svc, &job).await {
                tracing::error!(job.id = %job.id, error = %e, "job failure cleanup failed");
            }
        }
    }
    if job.status != JobStatus::Init {
        job.end_time = Some(now());
    }
    match svc.jobs.finish(&job, &node).await {
        Ok(true) => tracing::info!(job.id = %job.id, status = %job.status, "job finished"),
        Ok(false) => tracing::warn!(job.id = %job.id, "lost the job lease before finishing"),
        Err(e) => tracing::error!(job.id = %job.id, error = %e, "could not record the job outcome"),
    }
}

/// Exponential backoff between attempts after a transient failure: 2 s, 4 s, 8 s….
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::from_secs(1 << attempts.clamp(1, 8))
}

async fn dispatch(svc: &ImageService, job: &Job) -> Result<()> {
    match job.kind {
        JobKind::ImageImport => svc.run_import(job).await,
        JobKind::TaskImport => svc.run_import_task(job).await,
        JobKind::DataImageFromFile | JobKind::SystemImageFromFile => svc.run_file_image(job).await,
        JobKind::ImageCopy => svc.run_copy(job).await,
        JobKind::ImageExport => svc.run_export(job).await,
        JobKind::RegisterImage => svc.run_register(job).await,
        JobKind::AddMembers | JobKind::RemoveMembers | JobKind::UpdateMembers => Err(
            Error::internal("sharing batches are recorded complete and never queued"),
        ),
    }
}

async fn on_failure(svc: &ImageService, job: &Job) -> Result<()> {
    match (job.kind, job.image_id) {
        (JobKind::ImageImport | JobKind::RegisterImage, Some(id)) => svc.fail_import(id).await,
        (JobKind::TaskImport, Some(id)) => svc.fail_import_task(id).await,
        (
            JobKind::DataImageFromFile | JobKind::SystemImageFromFile | JobKind::ImageCopy,
            Some(id),
        ) => svc.kill_importing(id).await,
        _ => Ok(()),
    }
}

/// How often a running job's progress is looked at; a change is written at once, so
/// callers polling the job see it move within about this long.
const PROGRESS_TICK: Duration = Duration::from_millis(500);

/// Renews the job's lease every `lease / 3`, and writes its progress whenever it moved
/// (each write renews the lease too).
fn heartbeat(
    svc: &ImageService,
    id: &str,
    progress: Arc<crate::pipeline::Progress>,
) -> super::data::AbortOnDrop {
    let (jobs, node, lease, id) = (
        Arc::clone(&svc.jobs),
        svc.settings.node_id.clone(),
        svc.settings.lease,
        id.to_string(),
    );
    super::data::AbortOnDrop(tokio::spawn(async move {
        let (mut written, mut renewed) = (0u8, tokio::time::Instant::now());
        loop {
            tokio::time::sleep(PROGRESS_TICK.min(lease / 3)).await;
            let percent = progress.percent();
            if percent == written && renewed.elapsed() < lease / 3 {
                continue;
            }
            match jobs.heartbeat(&id, &node, now() + lease, percent).await {
                Ok(_) => (written, renewed) = (percent, tokio::time::Instant::now()),
                Err(e) => tracing::warn!(job.id = %id, error = %e, "job heartbeat failed"),
            }
        }
    }))
}

/// A stable code for a failure, for dialects to map.
pub fn error_code(e: &Error) -> &'static str {
    match e {
        Error::NotFound { .. } => "NotFound",
        Error::InvalidInput(_) | Error::InvalidField { .. } => "InvalidInput",
        Error::TooLarge(_) | Error::QuotaExceeded(_) => "TooLarge",
        Error::UnsupportedMedia(_) => "UnsupportedMedia",
        Error::Gone(_) => "Gone",
        Error::Unavailable(_) => "Unavailable",
        _ => "Internal",
    }
}

fn user_reason(e: &Error) -> String {
    match e {
        Error::Internal(_) => "Internal error while running the job".into(),
        other => other.to_string(),
    }
}

impl ImageService {
    /// Start-up recovery: expire this node's old leases, reset abandoned transfers, and
    /// collect orphaned blobs.
    pub async fn recover(&self) -> Result<()> {
        let expired = self.jobs.expire_leases(&self.settings.node_id).await?;
        let reset = self.recover_transfers(true).await?;
        let stale = self.blobs.recover().await?;
        let orphans = self.collect_orphans().await?;
        tracing::info!(
            jobs.expired = expired,
            images.reset = reset,
            blobs.partial = stale,
            blobs.orphaned = orphans,
            "recovery done"
        );
        Ok(())
    }

    /// Periodic sweep, every lease length: resets transfers whose node died and, given
    /// the identity service, purges expired tokens.
    pub async fn sweep(
        self,
        identity: Option<super::identity::IdentityService>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.settings.lease) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = self.recover_transfers(false).await {
                tracing::warn!(error = %e, "transfer sweep failed");
            }
            if let Some(identity) = &identity
                && let Err(e) = identity.purge_expired_tokens().await
            {
                tracing::warn!(error = %e, "token purge failed");
            }
        }
    }

    /// A job and the jobs it spawned, their outcome folded into its status (see
    /// [`Job::fold_sub_jobs`]).
    pub async fn job_report(
        &self,
        who: &crate::principal::Principal,
        id: &str,
    ) -> Result<(Job, Vec<Job>)> {
        let mut job = self.job(who, id).await?;
        let mut subs = Vec::new();
        for sub in job.sub_job_ids() {
            subs.extend(self.jobs.get(&sub).await?);
        }
        job.fold_sub_jobs(&subs);
        Ok((job, subs))
    }

    /// Loads a job the caller's project owns (or any job, for an admin).
    pub async fn job(&self, who: &crate::principal::Principal, id: &str) -> Result<Job> {
        let job = self.jobs.get(id).await?;
        crate::policy::visible(who, job, crate::Entity::Job, id)
    }
}
