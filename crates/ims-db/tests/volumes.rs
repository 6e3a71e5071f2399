//! The volume catalog (SQLite, or PostgreSQL with `IMS_TEST_DATABASE_URL`): saves are
//! compare-and-set on status and revision, quotas are counted inside the writing
//! transaction, listings page newest first, and volumes holding data pin the blobs
//! they are overlays on.

mod support;

use support::volume;

use ims_domain::Error;
use ims_domain::image::ImageId;
use ims_domain::volume::repo::VolumeQuotas;
use ims_domain::volume::{
    Admission, Backing, BlobPins, Volume, VolumeFormat, VolumeId, VolumeQuery, VolumeRepo,
    VolumeStatus,
};
use time::OffsetDateTime;

const MIB: u64 = 1 << 20;

fn no_quota() -> VolumeQuotas {
    VolumeQuotas::default()
}

#[tokio::test]
async fn a_volume_round_trips_and_saves_compare_and_set() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let mut v = volume("p", "disk", 10 * MIB, 0);
    v.description = "d".into();
    v.source_image = Some(ImageId::new());
    v.backing = Some(Backing {
        image_id: v.source_image.unwrap(),
        blob_key: "img.data.1".into(),
        format: VolumeFormat::Raw,
    });
    assert_eq!(
        db.insert_within_quota(&v, no_quota()).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(db.get(v.id).await.unwrap().as_ref(), Some(&v));
    assert!(matches!(
        db.insert_within_quota(&v, no_quota()).await,
        Err(Error::AlreadyExists { .. })
    ));

    let mut ready = v.clone();
    ready.status = VolumeStatus::Ready;
    ready.location = Some(format!("{}.qcow2", v.id));
    db.save(&ready, VolumeStatus::Creating).await.unwrap();
    let stored = db.get(v.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.location, ready.location);
    // The same revision again, or the wrong status: a conflict, nothing written.
    let mut stale = ready.clone();
    stale.name = "lost".into();
    assert!(matches!(
        db.save(&stale, VolumeStatus::Creating).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        db.save(&stale, VolumeStatus::Ready).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(db.get(v.id).await.unwrap().unwrap().name, "disk");
    stale.version = 1;
    db.save(&stale, VolumeStatus::Ready).await.unwrap();
    assert_eq!(db.get(v.id).await.unwrap().unwrap().name, "lost");
    assert_eq!(db.get(VolumeId::new()).await.unwrap(), None);

    // Only volumes still creating, and only those unchanged since before the time.
    let old = volume("p", "old", MIB, -100);
    let young = volume("p", "young", MIB, 100);
    for v in [&old, &young] {
        db.insert_within_quota(v, no_quota()).await.unwrap();
    }
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let stale: Vec<_> = db
        .creating_since(at)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(stale, ["old"]);
}

#[tokio::test]
async fn quotas_count_volumes_holding_data_per_project() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let quotas = VolumeQuotas {
        count: Some(2),
        size_total: Some(30 * MIB),
    };
    let a = volume("p", "a", 10 * MIB, 0);
    assert_eq!(
        db.insert_within_quota(&a, quotas).await.unwrap(),
        Admission::Admitted
    );
    let big = volume("p", "big", 21 * MIB, 1);
    assert_eq!(
        db.insert_within_quota(&big, quotas).await.unwrap(),
        Admission::OverSize
    );
    let b = volume("p", "b", 10 * MIB, 2);
    assert_eq!(
        db.insert_within_quota(&b, quotas).await.unwrap(),
        Admission::Admitted
    );
    let c = volume("p", "c", MIB, 3);
    assert_eq!(
        db.insert_within_quota(&c, quotas).await.unwrap(),
        Admission::OverCount
    );
    assert_eq!(
        db.get(c.id).await.unwrap(),
        None,
        "a refused volume was written"
    );
    // Another project is counted on its own.
    let other = volume("q", "o", 30 * MIB, 4);
    assert_eq!(
        db.insert_within_quota(&other, quotas).await.unwrap(),
        Admission::Admitted
    );
    let usage = db.usage("p").await.unwrap();
    assert_eq!((usage.count, usage.size_total), (2, 20 * MIB));

    // Growing counts the others and the new size, not the old one.
    let mut grown = a.clone();
    grown.size = 21 * MIB;
    assert_eq!(
        db.save_within_quota(&grown, VolumeStatus::Creating, quotas.size_total)
            .await
            .unwrap(),
        Admission::OverSize
    );
    grown.size = 20 * MIB;
    assert_eq!(
        db.save_within_quota(&grown, VolumeStatus::Creating, quotas.size_total)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(db.get(a.id).await.unwrap().unwrap().size, 20 * MIB);

    // A failed volume no longer counts; an expunged one neither.
    let mut failed = b.clone();
    failed.status = VolumeStatus::Error;
    db.save(&failed, VolumeStatus::Creating).await.unwrap();
    assert_eq!(db.usage("p").await.unwrap().count, 1);
    assert_eq!(
        db.insert_within_quota(&c, quotas).await.unwrap(),
        Admission::Admitted
    );
}

#[tokio::test]
async fn listings_page_newest_first_and_filter() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let mut all = Vec::new();
    for n in 0..5 {
        let v = volume(if n % 2 == 0 { "p" } else { "q" }, &format!("v{n}"), MIB, n);
        db.insert_within_quota(&v, no_quota()).await.unwrap();
        all.push(v);
    }
    let mut gone = all[4].clone();
    gone.status = VolumeStatus::Expunged;
    db.save(&gone, VolumeStatus::Creating).await.unwrap();

    let names = |vs: Vec<Volume>| vs.into_iter().map(|v| v.name).collect::<Vec<_>>();
    let q = VolumeQuery {
        limit: 2,
        ..Default::default()
    };
    let page = db.list(&q).await.unwrap();
    assert_eq!(
        names(page.clone()),
        ["v3", "v2"],
        "expunged volumes are not listed"
    );
    let next = VolumeQuery {
        marker: Some(page[1].id),
        ..q.clone()
    };
    assert_eq!(names(db.list(&next).await.unwrap()), ["v1", "v0"]);
    let mine = VolumeQuery {
        project_id: Some("p".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(names(db.list(&mine).await.unwrap()), ["v2", "v0"]);
    let expunged = VolumeQuery {
        status: Some(VolumeStatus::Expunged),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(names(db.list(&expunged).await.unwrap()), ["v4"]);
    let named = VolumeQuery {
        name: Some("v1".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(names(db.list(&named).await.unwrap()), ["v1"]);
    let bad = VolumeQuery {
        marker: Some(VolumeId::new()),
        limit: 10,
        ..Default::default()
    };
    assert!(matches!(db.list(&bad).await, Err(Error::InvalidInput(_))));
}

#[tokio::test]
async fn volumes_holding_data_pin_their_backing_blob() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let image = ImageId::new();
    let backed = |at| {
        let mut v = volume("p", "o", MIB, at);
        v.backing = Some(Backing {
            image_id: image,
            blob_key: "k1".into(),
            format: VolumeFormat::Qcow2,
        });
        v
    };
    assert!(!db.pinned("k1").await.unwrap());
    let (a, b) = (backed(0), backed(1));
    for v in [&a, &b] {
        db.insert_within_quota(v, no_quota()).await.unwrap();
    }
    assert!(db.pinned("k1").await.unwrap());
    assert!(!db.pinned("k2").await.unwrap());
    assert_eq!(db.pinned_keys().await.unwrap(), ["k1".to_string()].into());
    // Deleted (recoverable) still pins; expunged or failed no longer does.
    let mut a2 = a.clone();
    a2.status = VolumeStatus::Expunged;
    db.save(&a2, VolumeStatus::Creating).await.unwrap();
    assert!(db.pinned("k1").await.unwrap());
    let mut b2 = b.clone();
    b2.status = VolumeStatus::Ready;
    db.save(&b2, VolumeStatus::Creating).await.unwrap();
    b2.version += 1;
    b2.status = VolumeStatus::Deleted;
    db.save(&b2, VolumeStatus::Ready).await.unwrap();
    assert!(db.pinned("k1").await.unwrap());
    b2.version += 1;
    b2.status = VolumeStatus::Expunged;
    db.save(&b2, VolumeStatus::Deleted).await.unwrap();
    assert!(!db.pinned("k1").await.unwrap());
    assert!(db.pinned_keys().await.unwrap().is_empty());
}
