//! Volume searches in the catalog (SQLite, or PostgreSQL with `IMS_TEST_DATABASE_URL`):
//! conditions, order, page and count in SQL, scoped to a project, expunged volumes never.

mod support;

use ims_domain::query::{Condition, Op, Page, Query, Sort, SortDir, Value};
use ims_domain::volume::repo::VolumeQuotas;
use ims_domain::volume::{Volume, VolumeRepo, VolumeStatus};

const MIB: u64 = 1 << 20;

async fn add(db: &impl VolumeRepo, project: &str, name: &str, size: u64, at: i64) -> Volume {
    let mut v = support::volume(project, name, size, at);
    db.insert_within_quota(&v, VolumeQuotas::default())
        .await
        .unwrap();
    v.status = VolumeStatus::Ready;
    db.save(&v, VolumeStatus::Creating).await.unwrap();
    v.version += 1;
    v
}

fn query(conditions: Vec<Condition>, sort: Option<Sort>, start: u64, limit: u64) -> Query {
    Query {
        conditions,
        sort,
        page: Page { start, limit },
        count_only: false,
        with_total: true,
    }
}

fn names(found: &[Volume]) -> Vec<&str> {
    found.iter().map(|v| v.name.as_str()).collect()
}

#[tokio::test]
async fn searches_push_conditions_order_and_page_to_sql() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    add(db, "p", "a-1", MIB, 0).await;
    let b = add(db, "p", "a-2", 3 * MIB, 1).await;
    add(db, "p", "a-3", 5 * MIB, 2).await;
    add(db, "q", "a-4", 7 * MIB, 3).await;
    let gone = add(db, "p", "a-5", 9 * MIB, 4).await;
    let mut deleted = gone.clone();
    deleted.status = VolumeStatus::Deleted;
    db.save(&deleted, VolumeStatus::Ready).await.unwrap();
    deleted.version += 1;
    let mut expunged = deleted.clone();
    expunged.status = VolumeStatus::Expunged;
    db.save(&expunged, VolumeStatus::Deleted).await.unwrap();

    let like = Condition::new("name", Op::Like, vec![Value::Text("a-%".into())]).unwrap();
    let big = Condition::new("size", Op::Ge, vec![Value::Int(2 * MIB as i64)]).unwrap();
    let by_size = Some(Sort {
        field: "size".into(),
        dir: SortDir::Desc,
    });
    // Project p's, expunged left out, biggest first.
    let found = db
        .search(
            Some("p"),
            &query(vec![like.clone(), big], by_size.clone(), 0, 10),
        )
        .await
        .unwrap();
    assert_eq!(names(&found.items), ["a-3", "a-2"]);
    assert_eq!(found.total, Some(2));
    // Every project's, in creation order, one page.
    let found = db
        .search(None, &query(vec![like.clone()], None, 1, 2))
        .await
        .unwrap();
    assert_eq!(names(&found.items), ["a-2", "a-3"]);
    assert_eq!(found.total, Some(4));
    // Ids, statuses, counting only.
    let by_id = Condition::new("id", Op::Eq, vec![Value::Text(b.id.to_string())]).unwrap();
    let found = db
        .search(Some("p"), &query(vec![by_id], None, 0, 10))
        .await
        .unwrap();
    assert_eq!(found.items, vec![b.clone()]);
    let not_ready = Condition::new("status", Op::Ne, vec![Value::Text("ready".into())]).unwrap();
    let mut count = query(vec![not_ready], None, 0, 10);
    count.count_only = true;
    let found = db.search(None, &count).await.unwrap();
    assert_eq!((found.items.len(), found.total), (0, Some(0)));
    // Another project's volumes are not found in yours.
    let found = db
        .search(Some("q"), &query(vec![like], by_size, 0, 10))
        .await
        .unwrap();
    assert_eq!(names(&found.items), ["a-4"]);
    // An unknown field is invalid input, not SQL.
    let bad = Condition::new("nosuch", Op::Eq, vec![Value::Int(1)]).unwrap();
    assert!(matches!(
        db.search(None, &query(vec![bad], None, 0, 10)).await,
        Err(ims_domain::Error::InvalidInput(_))
    ));
}
