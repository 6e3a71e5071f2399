//! The image aggregate's part in the job engine: the handler of the kinds that work on
//! images, and the sweeper of abandoned transfers and orphaned blobs. Registered where
//! the process is wired.

use async_trait::async_trait;

use super::images::ImageService;
use crate::error::{Error, Result};
use crate::job::{Job, JobHandler, JobKind, Sweeper};

/// Runs the image jobs.
pub struct ImageJobs(pub ImageService);

/// The kinds [`ImageJobs`] runs. Sharing batches are recorded complete, never queued.
const IMAGE_KINDS: &[JobKind] = &[
    JobKind::ImageImport,
    JobKind::TaskImport,
    JobKind::DataImageFromFile,
    JobKind::SystemImageFromFile,
    JobKind::ImageCopy,
    JobKind::ImageExport,
    JobKind::RegisterImage,
];

#[async_trait]
impl JobHandler for ImageJobs {
    fn kinds(&self) -> &[JobKind] {
        IMAGE_KINDS
    }

    async fn run(&self, job: &Job) -> Result<()> {
        let svc = &self.0;
        match job.kind {
            JobKind::ImageImport => svc.run_import(job).await,
            JobKind::TaskImport => svc.run_import_task(job).await,
            JobKind::DataImageFromFile | JobKind::SystemImageFromFile => {
                svc.run_file_image(job).await
            }
            JobKind::ImageCopy => svc.run_copy(job).await,
            JobKind::ImageExport => svc.run_export(job).await,
            JobKind::RegisterImage => svc.run_register(job).await,
            other => Err(Error::internal(format!("not an image job kind: {other}"))),
        }
    }

    async fn on_failure(&self, job: &Job) -> Result<()> {
        let svc = &self.0;
        if let Some(id) = job.image_id().filter(|_| job.discards_image_on_failure()) {
            return svc.discard_unfilled(id).await;
        }
        match (job.kind, job.image_id()) {
            (JobKind::ImageImport, Some(_)) => svc.fail_import_job(job).await,
            (JobKind::RegisterImage, Some(id)) => svc.fail_import(id, &Default::default()).await,
            (JobKind::TaskImport, Some(id)) => svc.fail_import_task(id).await,
            (
                JobKind::DataImageFromFile | JobKind::SystemImageFromFile | JobKind::ImageCopy,
                Some(id),
            ) => svc.kill_importing(id).await,
            _ => Ok(()),
        }
    }
}

/// Puts right the image transfers and blobs a crash or a dead node left behind.
pub struct ImageSweeper {
    svc: ImageService,
    /// When orphans were last collected: a listing of the whole store is too costly for
    /// every sweep.
    orphans_collected: std::sync::Mutex<std::time::Instant>,
}

/// How often the sweep collects orphaned blobs (start-up always does).
const ORPHAN_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

impl ImageSweeper {
    /// The sweeper of `svc`'s images.
    pub fn new(svc: ImageService) -> Self {
        ImageSweeper {
            svc,
            orphans_collected: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// Whether an hour passed since orphans were last collected (and if so, that they
    /// are being collected now).
    fn orphans_due(&self) -> bool {
        let mut last = self
            .orphans_collected
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.elapsed() < ORPHAN_SWEEP {
            return false;
        }
        *last = std::time::Instant::now();
        true
    }
}

#[async_trait]
impl Sweeper for ImageSweeper {
    fn name(&self) -> &'static str {
        "image transfers"
    }

    /// Resets this node's abandoned transfers, removes partial writes, and collects
    /// blobs no image references.
    async fn recover(&self) -> Result<()> {
        let svc = &self.svc;
        let reset = svc.recover_transfers(true).await?;
        let mut partial = 0;
        for store in svc.stores().all() {
            partial += store.blobs.recover().await?;
        }
        svc.place_unplaced().await?;
        let orphans = svc.collect_orphans().await?;
        tracing::info!(
            images.reset = reset,
            blobs.partial = partial,
            blobs.orphaned = orphans,
            "image recovery done"
        );
        Ok(())
    }

    /// Resets transfers whose node died; hourly, collects orphaned blobs (those a
    /// crash left after start-up, and those too young to collect then).
    async fn sweep(&self) -> Result<()> {
        self.svc.recover_transfers(false).await?;
        if self.orphans_due() {
            let orphans = self.svc.collect_orphans().await?;
            if orphans > 0 {
                tracing::info!(blobs.orphaned = orphans, "orphaned blobs collected");
            }
        }
        Ok(())
    }
}
