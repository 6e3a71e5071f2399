//! The job queue on a real SQLite catalog: claims, leases and retry times.

use ims_db::Catalog;
use ims_domain::image::{Image, ImageId};
use ims_domain::job::{Job, JobKind, JobStatus};
use ims_domain::ports::{ImageRepo, JobRepo};
use time::{Duration, OffsetDateTime};

async fn catalog() -> (Catalog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = ims_db::sqlite_url(&dir.path().join("c.sqlite"));
    (Catalog::connect(&url).await.unwrap(), dir)
}

#[tokio::test]
async fn a_retried_job_waits_for_its_time_and_a_lapsed_lease_is_reclaimed() {
    let (db, _dir) = catalog().await;
    let now = OffsetDateTime::now_utc();
    let image = Image::new(ImageId::new(), Some("p".into()), now);
    let job = Job::new(
        JobKind::ImageExport,
        "p",
        Some(image.id),
        serde_json::json!({}),
        now,
    );
    ImageRepo::insert(&db, &image, Some(&job)).await.unwrap();

    let mut claimed = db
        .claim("n1", now, now + Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.status, claimed.attempts), (JobStatus::Running, 1));
    assert!(
        db.claim("n2", now, now + Duration::seconds(30))
            .await
            .unwrap()
            .is_none(),
        "leased"
    );

    // A transient failure: back to waiting until its retry time.
    claimed.status = JobStatus::Init;
    claimed.lease_until = Some(now + Duration::seconds(8));
    assert!(db.finish(&claimed, "n1").await.unwrap());
    assert!(
        db.claim(
            "n2",
            now + Duration::seconds(2),
            now + Duration::seconds(40)
        )
        .await
        .unwrap()
        .is_none()
    );
    let again = db
        .claim(
            "n2",
            now + Duration::seconds(9),
            now + Duration::seconds(40),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id.as_str(), again.attempts), (job.id.as_str(), 2));

    // n2 dies: once its lease lapses, another node takes the job over.
    assert!(
        db.claim(
            "n3",
            now + Duration::seconds(20),
            now + Duration::seconds(60)
        )
        .await
        .unwrap()
        .is_none()
    );
    let taken = db
        .claim(
            "n3",
            now + Duration::seconds(41),
            now + Duration::seconds(80),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.lease_owner.as_deref(), Some("n3"));
    assert!(
        !db.finish(&again, "n2").await.unwrap(),
        "the old owner can no longer record an outcome"
    );
}
