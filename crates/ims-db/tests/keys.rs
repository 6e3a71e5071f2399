//! The KMS key catalog (SQLite, or PostgreSQL with `IMS_TEST_DATABASE_URL`): aliases are
//! unique per project, the per-project count is enforced inside the insert, saves are
//! compare-and-set on the revision, listings page and filter by state, and only keys
//! still pending deletion at their revision are removed. The master-key check value is
//! recorded once.

mod support;

use ims_domain::key::{Key, KeyQuery, KeyRepo, KeyState};
use ims_domain::{Entity, Error};
use time::{Duration, OffsetDateTime};

fn key(project: &str, alias: &str, minute: i64) -> Key {
    let at = OffsetDateTime::UNIX_EPOCH + Duration::minutes(minute);
    Key {
        description: "d".into(),
        material: "v1:00".into(),
        ..Key::new(project, alias, "builtin", at)
    }
}

fn page(project: &str, state: Option<KeyState>, offset: u64, limit: u64) -> KeyQuery {
    KeyQuery {
        project_id: project.into(),
        state,
        offset,
        limit,
    }
}

#[tokio::test]
async fn aliases_are_unique_per_project_and_the_count_is_capped() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let a = key("p1", "one", 0);
    db.insert(&a, 2).await.unwrap();
    assert_eq!(KeyRepo::get(db, a.id).await.unwrap().as_ref(), Some(&a));
    // The alias again in the same project; in another project it is free.
    let err = db.insert(&key("p1", "one", 1), 2).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadyExists {
                kind: Entity::Key,
                ..
            }
        ),
        "{err:?}"
    );
    db.insert(&key("p2", "one", 1), 2).await.unwrap();
    db.insert(&key("p1", "two", 2), 2).await.unwrap();
    let err = db.insert(&key("p1", "three", 3), 2).await.unwrap_err();
    assert!(matches!(err, Error::QuotaExceeded(_)), "{err:?}");
    assert_eq!(db.list(&page("p1", None, 0, 10)).await.unwrap().total, 2);
}

#[tokio::test]
async fn saves_compare_and_set_and_listings_page_and_filter() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let keys: Vec<Key> = (0..5).map(|i| key("p", &format!("k{i}"), i)).collect();
    for k in &keys {
        db.insert(k, 100).await.unwrap();
    }
    db.insert(&key("other", "k0", 0), 100).await.unwrap();

    let mut disabled = keys[1].clone();
    disabled.state = KeyState::Disabled;
    db.save(&disabled).await.unwrap();
    // The same revision again is stale.
    assert!(matches!(db.save(&disabled).await, Err(Error::Conflict(_))));
    let stored = KeyRepo::get(db, keys[1].id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.version), (KeyState::Disabled, 1));

    let first = db.list(&page("p", None, 0, 2)).await.unwrap();
    let ids = |p: &ims_domain::key::KeyPage| p.keys.iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(ids(&first), vec![keys[0].id, keys[1].id]);
    assert_eq!(first.total, 5);
    let rest = db.list(&page("p", None, 2, 10)).await.unwrap();
    assert_eq!(ids(&rest), vec![keys[2].id, keys[3].id, keys[4].id]);
    let only = db
        .list(&page("p", Some(KeyState::Disabled), 0, 10))
        .await
        .unwrap();
    assert_eq!((ids(&only), only.total), (vec![keys[1].id], 1));
}

#[tokio::test]
async fn only_keys_still_pending_deletion_when_due_are_removed() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let now = OffsetDateTime::now_utc();
    let mut due = key("p", "due", 0);
    due.state = KeyState::PendingDeletion;
    due.deletion_at = Some(now - Duration::minutes(1));
    let mut later = key("p", "later", 1);
    later.state = KeyState::PendingDeletion;
    later.deletion_at = Some(now + Duration::days(7));
    let enabled = key("p", "enabled", 2);
    for k in [&due, &later, &enabled] {
        db.insert(k, 100).await.unwrap();
    }
    let found = db.due_for_deletion(now).await.unwrap();
    assert_eq!(found.iter().map(|k| k.id).collect::<Vec<_>>(), vec![due.id]);
    // Cancelled meanwhile (its revision moved on): not removed.
    let mut cancelled = due.clone();
    cancelled.state = KeyState::Disabled;
    cancelled.deletion_at = None;
    db.save(&cancelled).await.unwrap();
    assert!(matches!(
        db.remove(&found[0]).await,
        Err(Error::Conflict(_))
    ));
    assert!(KeyRepo::get(db, due.id).await.unwrap().is_some());
    // Scheduled again and due: removed.
    let mut again = KeyRepo::get(db, due.id).await.unwrap().unwrap();
    again.state = KeyState::PendingDeletion;
    again.deletion_at = Some(now - Duration::minutes(1));
    db.save(&again).await.unwrap();
    let found = db.due_for_deletion(now).await.unwrap();
    db.remove(&found[0]).await.unwrap();
    assert!(KeyRepo::get(db, due.id).await.unwrap().is_none());
    assert!(KeyRepo::get(db, later.id).await.unwrap().is_some());
}

#[tokio::test]
async fn the_master_check_is_recorded_once() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    assert_eq!(db.master_check().await.unwrap(), None);
    assert_eq!(db.record_master_check("first").await.unwrap(), "first");
    // A second node starting with another value keeps the first.
    assert_eq!(db.record_master_check("second").await.unwrap(), "first");
    assert_eq!(db.master_check().await.unwrap().as_deref(), Some("first"));
}
