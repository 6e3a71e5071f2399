//! The job queue on a real catalog (SQLite, or PostgreSQL with `IMS_TEST_DATABASE_URL`):
//! claims, per-kind skips, retry times, leases, jobs pinned to a node.

mod support;

use ims_db::Catalog;
use ims_domain::image::{Image, ImageId};
use ims_domain::job::{Job, JobKind, JobStatus, JobSubject};
use ims_domain::ports::{ImageRepo, JobRepo};
use time::{Duration, OffsetDateTime};

/// Claims as `owner` at `now + at` seconds, with a 20 s lease.
async fn claim(
    db: &Catalog,
    owner: &str,
    now: OffsetDateTime,
    at: i64,
    skip: &[JobKind],
) -> Option<Job> {
    let t = now + Duration::seconds(at);
    // Nodes seen in the last minute are alive.
    db.claim(
        owner,
        t,
        t + Duration::seconds(20),
        skip,
        t - Duration::seconds(60),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn claims_honour_kind_limits_retry_times_and_leases() {
    let catalog = support::TestCatalog::new().await;
    let db = &catalog.db;
    let now = OffsetDateTime::now_utc();
    let image = Image::new(ImageId::new(), Some("p".into()), now);
    let job = Job::new(
        JobKind::ImageExport,
        "p",
        Some(JobSubject::image(image.id)),
        serde_json::json!({}),
        now,
    );
    ImageRepo::insert(db, &image, Some(&job)).await.unwrap();

    assert!(
        claim(db, "n1", now, 0, &[JobKind::ImageExport])
            .await
            .is_none(),
        "kind at its limit"
    );
    let mut claimed = claim(db, "n1", now, 0, &[]).await.unwrap();
    assert_eq!((claimed.status, claimed.attempts), (JobStatus::Running, 1));
    assert!(claim(db, "n2", now, 1, &[]).await.is_none(), "leased to n1");

    // A transient failure: waiting again, not before its retry time.
    claimed.status = JobStatus::Init;
    claimed.lease_until = None;
    claimed.not_before = Some(now + Duration::seconds(8));
    assert!(db.finish(&claimed, "n1").await.unwrap());
    assert!(claim(db, "n2", now, 2, &[]).await.is_none());
    let again = claim(db, "n2", now, 9, &[]).await.unwrap();
    assert_eq!((again.id.as_str(), again.attempts), (job.id.as_str(), 2));

    // n2 dies: once its lease (until 29 s) lapses, another node takes the job over.
    assert!(claim(db, "n3", now, 20, &[]).await.is_none());
    let taken = claim(db, "n3", now, 30, &[]).await.unwrap();
    assert_eq!(taken.lease_owner.as_deref(), Some("n3"));
    assert!(
        !db.finish(&again, "n2").await.unwrap(),
        "the old owner can no longer record an outcome"
    );
}

/// Queues one job of `project` created at `now + at` seconds.
async fn queue(db: &Catalog, project: &str, now: OffsetDateTime, at: i64) -> Job {
    let created = now + Duration::seconds(at);
    let image = Image::new(ImageId::new(), Some(project.into()), created);
    let job = Job::new(
        JobKind::ImageImport,
        project,
        Some(JobSubject::image(image.id)),
        serde_json::json!({}),
        created,
    );
    ImageRepo::insert(db, &image, Some(&job)).await.unwrap();
    job
}

/// Claims go round the projects rather than down the queue: a project that queued many
/// jobs first does not keep a later project waiting behind all of them, whether slots
/// are many (fewest running first) or one (longest unserved first). Waiting and running
/// jobs are counted per project.
#[tokio::test]
async fn claims_are_fair_between_projects_and_active_jobs_are_counted() {
    let catalog = support::TestCatalog::new().await;
    let db = &catalog.db;
    let now = OffsetDateTime::now_utc();
    for i in 0..4 {
        queue(db, "a", now, i).await;
    }
    queue(db, "b", now, 10).await;
    queue(db, "c", now, 11).await;
    assert_eq!(db.count_active(Some("a")).await.unwrap(), 4);
    assert_eq!(db.count_active(None).await.unwrap(), 6);

    // Three slots at once: one job of each project, though a's four came first.
    let mut projects = Vec::new();
    let mut held = Vec::new();
    for _ in 0..3 {
        let job = claim(db, "n1", now, 20, &[]).await.unwrap();
        projects.push(job.project_id.clone());
        held.push(job);
    }
    projects.sort();
    assert_eq!(projects, ["a", "b", "c"]);
    assert_eq!(
        db.count_active(Some("a")).await.unwrap(),
        4,
        "running ones count"
    );

    // One slot: b and c finish, a's job finishes last; the next claim is a's, as it
    // is the only project left waiting.
    for (i, mut job) in held.into_iter().enumerate() {
        job.status = JobStatus::Success;
        job.lease_until = None;
        job.end_time = Some(now + Duration::seconds(21 + i as i64));
        assert!(db.finish(&job, "n1").await.unwrap());
    }
    let next = claim(db, "n1", now, 30, &[]).await.unwrap();
    assert_eq!(next.project_id, "a");
    // b queues again while a's job runs: with a single slot, b goes before a's rest.
    queue(db, "b", now, 31).await;
    let mut next = next;
    next.status = JobStatus::Success;
    next.lease_until = None;
    assert!(db.finish(&next, "n1").await.unwrap());
    let after = claim(db, "n1", now, 40, &[]).await.unwrap();
    assert_eq!(after.project_id, "b", "b was served longer ago than a");
    assert_eq!(db.count_active(Some("a")).await.unwrap(), 2);
    assert_eq!(db.count_active(Some("c")).await.unwrap(), 0);
}

#[tokio::test]
async fn a_pinned_job_waits_for_its_node_while_that_node_is_alive() {
    let catalog = support::TestCatalog::new().await;
    let db = &catalog.db;
    let now = OffsetDateTime::now_utc();
    let mut job = Job::new(
        JobKind::ServerCapture,
        "p",
        None,
        serde_json::json!({}),
        now,
    );
    job.pinned_node = Some("n1".into());
    db.record(&Job {
        status: JobStatus::Init,
        ..job.clone()
    })
    .await
    .unwrap();
    db.node_seen("n1", now).await.unwrap();
    db.node_seen("n2", now).await.unwrap();
    assert_eq!(
        db.nodes_seen_since(now - Duration::seconds(1))
            .await
            .unwrap(),
        ["n1".to_string(), "n2".to_string()].into()
    );
    assert!(
        claim(db, "n2", now, 1, &[]).await.is_none(),
        "pinned to n1, which is alive"
    );
    let mine = claim(db, "n1", now, 1, &[]).await.unwrap();
    assert_eq!(mine.pinned_node.as_deref(), Some("n1"));
    // n1 goes silent (last seen more than a minute ago) with the job's lease lapsed:
    // any node takes it.
    db.node_seen("n2", now + Duration::seconds(90))
        .await
        .unwrap();
    assert!(
        db.nodes_seen_since(now + Duration::seconds(30))
            .await
            .unwrap()
            .contains("n2")
    );
    let taken = claim(db, "n2", now, 90, &[]).await.unwrap();
    assert_eq!(
        (taken.id, taken.lease_owner.as_deref()),
        (job.id, Some("n2"))
    );
}
