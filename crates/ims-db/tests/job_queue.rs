//! The job queue on a real catalog (SQLite, or PostgreSQL with `IMS_TEST_DATABASE_URL`):
//! claims, per-kind skips, retry times, leases.

mod support;

use ims_db::Catalog;
use ims_domain::image::{Image, ImageId};
use ims_domain::job::{Job, JobKind, JobStatus};
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
    db.claim(owner, t, t + Duration::seconds(20), skip)
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
        Some(image.id),
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
    claimed.lease_until = Some(now + Duration::seconds(8));
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
