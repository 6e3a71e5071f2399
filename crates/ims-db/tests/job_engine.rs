//! The job engine on a real catalog (SQLite, or PostgreSQL with `IMS_TEST_DATABASE_URL`):
//! jobs run through the handler registered for their kind, a kind nobody handles fails
//! cleanly, failures and retries are recorded, and a worker that lost its lease writes
//! nothing more.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ims_db::Catalog;
use ims_domain::context::{Node, now};
use ims_domain::image::{Image, ImageId};
use ims_domain::job::{
    Job, JobErrorCode, JobHandler, JobHandlers, JobKind, JobQuery, JobQueue, JobRepo, JobRunner,
    JobStatus, JobSubject,
};
use ims_domain::ports::ImageRepo;
use ims_domain::{Error, Result};
use tokio::sync::watch;

/// A handler for one kind that records what it ran and answers with `outcome`.
struct Probe {
    kind: [JobKind; 1],
    outcome: fn() -> Result<()>,
    runs: std::sync::Mutex<Vec<(serde_json::Value, ImageId)>>,
    failures: AtomicUsize,
}

impl Probe {
    fn new(kind: JobKind, outcome: fn() -> Result<()>) -> Arc<Probe> {
        Arc::new(Probe {
            kind: [kind],
            outcome,
            runs: Default::default(),
            failures: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl JobHandler for Probe {
    fn kinds(&self) -> &[JobKind] {
        &self.kind
    }

    async fn run(&self, job: &Job) -> Result<()> {
        let decoded: (serde_json::Value, ImageId) = job.decode()?;
        self.runs.lock().unwrap().push(decoded);
        (self.outcome)()
    }

    async fn on_failure(&self, _job: &Job) -> Result<()> {
        self.failures.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Queues a job of `kind` on a new image.
async fn queue_job(db: &Catalog, queue: &JobQueue, kind: JobKind) -> (Job, ImageId) {
    let image = Image::new(ImageId::new(), Some("p".into()), now());
    ImageRepo::insert(db, &image, None).await.unwrap();
    let payload = serde_json::json!({"object": "bucket/key"});
    let job = Job::new(kind, "p", Some(JobSubject::image(image.id)), payload, now());
    queue.enqueue(&job).await.unwrap();
    (job, image.id)
}

/// Runs a runner on `handlers` until job `id` satisfies `done` (10 s at most).
async fn run_until(
    queue: &JobQueue,
    handlers: JobHandlers,
    id: &str,
    done: impl Fn(&Job) -> bool,
) -> Job {
    let (stop, stopped) = watch::channel(false);
    let node = Node::new("n1", Duration::from_secs(3));
    let runner = JobRunner::new(queue.clone(), node, handlers, 2, Default::default());
    let task = tokio::spawn(runner.run(stopped));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let job = loop {
        let job = queue.repo().get(id).await.unwrap().unwrap();
        if done(&job) {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job stuck: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    job
}

fn finished(job: &Job) -> bool {
    matches!(job.status, JobStatus::Success | JobStatus::Fail)
}

#[tokio::test]
async fn a_job_runs_through_the_handler_registered_for_its_kind() {
    let catalog = support::TestCatalog::new().await;
    let queue = JobQueue::new(Arc::new(catalog.db.clone()));
    let (job, image) = queue_job(&catalog.db, &queue, JobKind::ImageExport).await;
    let probe = Probe::new(JobKind::ImageExport, || Ok(()));
    let mut handlers = JobHandlers::new();
    handlers.register(probe.clone()).unwrap();

    let done = run_until(&queue, handlers, &job.id, finished).await;
    assert_eq!((done.status, done.progress), (JobStatus::Success, 100));
    assert!(done.error_code.is_none() && done.lease_owner.is_none());
    let runs = probe.runs.lock().unwrap().clone();
    assert_eq!(runs, [(job.payload.clone(), image)], "run once, decoded");
    // The subject reads back, and listings by image find the job through it.
    assert_eq!(done.subject, Some(JobSubject::image(image)));
    assert_eq!(catalog.db.for_image(image).await.unwrap()[0].id, job.id);
    let listed = JobRepo::list(
        &catalog.db,
        &JobQuery {
            kinds: vec![JobKind::ImageExport],
            project_id: None,
            status: None,
            image_id: Some(image),
            sort: ims_domain::job::JobSortKey::CreatedAt,
            ascending: true,
            marker: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn a_kind_without_a_handler_fails_cleanly_and_a_kind_is_registered_once() {
    let catalog = support::TestCatalog::new().await;
    let queue = JobQueue::new(Arc::new(catalog.db.clone()));
    let (job, _) = queue_job(&catalog.db, &queue, JobKind::ImageCopy).await;
    let probe = Probe::new(JobKind::ImageExport, || Ok(()));
    let mut handlers = JobHandlers::new();
    handlers.register(probe.clone()).unwrap();
    assert!(
        handlers.register(probe.clone()).is_err(),
        "a second handler for a kind is a wiring error"
    );

    let done = run_until(&queue, handlers, &job.id, finished).await;
    assert_eq!(done.status, JobStatus::Fail);
    assert_eq!(done.error_code, Some(JobErrorCode::NoHandler));
    let reason = done.fail_reason.unwrap();
    assert!(reason.contains("image_copy"), "{reason}");
    assert!(probe.runs.lock().unwrap().is_empty());
    assert!(done.end_time.is_some() && done.lease_owner.is_none());
}

#[tokio::test]
async fn a_failure_is_cleaned_up_and_recorded_with_its_code() {
    let catalog = support::TestCatalog::new().await;
    let queue = JobQueue::new(Arc::new(catalog.db.clone()));
    let (job, _) = queue_job(&catalog.db, &queue, JobKind::ImageCopy).await;
    let probe = Probe::new(JobKind::ImageCopy, || {
        Err(Error::UnsupportedMedia("not a disk".into()))
    });
    let mut handlers = JobHandlers::new();
    handlers.register(probe.clone()).unwrap();

    let done = run_until(&queue, handlers, &job.id, finished).await;
    assert_eq!(done.status, JobStatus::Fail);
    assert_eq!(done.error_code, Some(JobErrorCode::UnsupportedMedia));
    assert_eq!(done.fail_reason.as_deref(), Some("not a disk"));
    assert_eq!(probe.failures.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_transient_failure_waits_until_not_before_without_a_lease() {
    let catalog = support::TestCatalog::new().await;
    let queue = JobQueue::new(Arc::new(catalog.db.clone()));
    let (job, _) = queue_job(&catalog.db, &queue, JobKind::ImageCopy).await;
    let probe = Probe::new(JobKind::ImageCopy, || {
        Err(Error::Unavailable("try later".into()))
    });
    let mut handlers = JobHandlers::new();
    handlers.register(probe.clone()).unwrap();

    let waiting = run_until(&queue, handlers, &job.id, |j| {
        j.status == JobStatus::Init && j.attempts == 1
    })
    .await;
    let not_before = waiting.not_before.expect("a retry time");
    assert!(not_before > now(), "backoff lies ahead");
    assert!(waiting.lease_owner.is_none() && waiting.lease_until.is_none());
    assert_eq!(probe.failures.load(Ordering::SeqCst), 0, "not failed yet");

    let lease = time::Duration::seconds(30);
    let early = not_before - time::Duration::seconds(1);
    assert!(
        catalog
            .db
            .claim("n2", early, early + lease, &[], early)
            .await
            .unwrap()
            .is_none()
    );
    let late = not_before + time::Duration::seconds(1);
    let again = catalog
        .db
        .claim("n2", late, late + lease, &[], late)
        .await
        .unwrap();
    assert_eq!(again.map(|j| j.attempts), Some(2));
}

/// A job store whose calls hang while the node is "paused", as every call of a stopped
/// process would.
struct Pausable {
    inner: Catalog,
    paused: watch::Receiver<bool>,
}

impl Pausable {
    async fn gate(&self) {
        let mut rx = self.paused.clone();
        let _ = rx.wait_for(|paused| !*paused).await;
    }
}

#[async_trait]
impl JobRepo for Pausable {
    async fn claim(
        &self,
        owner: &str,
        now: time::OffsetDateTime,
        until: time::OffsetDateTime,
        skip: &[JobKind],
        alive_since: time::OffsetDateTime,
    ) -> Result<Option<Job>> {
        self.gate().await;
        self.inner.claim(owner, now, until, skip, alive_since).await
    }
    async fn node_seen(&self, node: &str, at: time::OffsetDateTime) -> Result<()> {
        self.inner.node_seen(node, at).await
    }
    async fn nodes_seen_since(
        &self,
        since: time::OffsetDateTime,
    ) -> Result<std::collections::HashSet<String>> {
        self.inner.nodes_seen_since(since).await
    }
    async fn heartbeat(
        &self,
        id: &str,
        owner: &str,
        until: time::OffsetDateTime,
        progress: u8,
    ) -> Result<bool> {
        self.gate().await;
        self.inner.heartbeat(id, owner, until, progress).await
    }
    async fn record(&self, job: &Job) -> Result<()> {
        self.inner.record(job).await
    }
    async fn finish(&self, job: &Job, owner: &str) -> Result<bool> {
        self.gate().await;
        self.inner.finish(job, owner).await
    }
    async fn expire_leases(&self, owner: &str) -> Result<u64> {
        self.inner.expire_leases(owner).await
    }
    async fn get(&self, id: &str) -> Result<Option<Job>> {
        JobRepo::get(&self.inner, id).await
    }
    async fn for_image(&self, image_id: ImageId) -> Result<Vec<Job>> {
        self.inner.for_image(image_id).await
    }
    async fn in_status(&self, status: JobStatus) -> Result<Vec<Job>> {
        self.inner.in_status(status).await
    }
    async fn list(&self, query: &JobQuery) -> Result<Vec<Job>> {
        JobRepo::list(&self.inner, query).await
    }
    async fn count_active(&self, project_id: Option<&str>) -> Result<u64> {
        self.inner.count_active(project_id).await
    }
}

/// A handler that keeps writing (a counter stands for its writes), each write after
/// confirming the lease as the image jobs do before theirs, and stalls while paused.
struct Writer {
    paused: watch::Receiver<bool>,
    writes: AtomicUsize,
    failures: AtomicUsize,
}

#[async_trait]
impl JobHandler for Writer {
    fn kinds(&self) -> &[JobKind] {
        &[JobKind::ImageExport]
    }

    async fn run(&self, _job: &Job) -> Result<()> {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut rx = self.paused.clone();
            let _ = rx.wait_for(|paused| !*paused).await;
            ims_domain::job::lease::confirm().await?;
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn on_failure(&self, _job: &Job) -> Result<()> {
        self.failures.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A worker paused past its lease finds, when it wakes, that another node claimed its
/// job: from then on it writes nothing, neither through the job nor its outcome.
#[tokio::test]
async fn a_worker_that_lost_its_lease_writes_nothing_more() {
    let catalog = support::TestCatalog::new().await;
    let (pause, paused) = watch::channel(false);
    let store = Pausable {
        inner: catalog.db.clone(),
        paused: paused.clone(),
    };
    let queue = JobQueue::new(Arc::new(store));
    let (job, _) = queue_job(&catalog.db, &queue, JobKind::ImageExport).await;
    let writer = Arc::new(Writer {
        paused,
        writes: AtomicUsize::new(0),
        failures: AtomicUsize::new(0),
    });
    let mut handlers = JobHandlers::new();
    handlers.register(writer.clone()).unwrap();
    let node = Node::new("n1", Duration::from_millis(900));
    let (stop, stopped) = watch::channel(false);
    let runner = JobRunner::new(queue.clone(), node, handlers, 1, Default::default());
    let task = tokio::spawn(runner.run(stopped));
    while writer.writes.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    pause.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = writer.writes.load(Ordering::SeqCst);
    // The lease (0.9 s) lapses while n1 is paused; n2 claims the job.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let t = now();
    let taken = catalog
        .db
        .claim("n2", t, t + time::Duration::seconds(30), &[], t);
    let taken = taken.await.unwrap().expect("n2 takes the job over");
    assert_eq!(taken.id, job.id);
    pause.send(false).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(
        writer.writes.load(Ordering::SeqCst),
        before,
        "no write after the loss"
    );
    assert_eq!(
        writer.failures.load(Ordering::SeqCst),
        0,
        "no failure cleanup"
    );
    let row = JobRepo::get(&catalog.db, &job.id).await.unwrap().unwrap();
    assert_eq!(row.status, JobStatus::Running, "n1 recorded no outcome");
    assert_eq!(row.lease_owner.as_deref(), Some("n2"));
    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
