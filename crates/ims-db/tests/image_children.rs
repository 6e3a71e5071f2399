//! Image properties and tags on a real catalog: the JSON copy on the image row that list
//! pages read, the child tables that filters query, rows written before the copy existed,
//! and the byte-wise order of text sort keys.
//!
//! SQLite by default; with `IMS_TEST_DATABASE_URL=postgres://…` (a user that may create
//! databases) every test runs on a fresh PostgreSQL database instead.

use std::collections::{BTreeMap, BTreeSet};

use ims_db::Catalog;
use ims_domain::image::{Image, ImageId, ImageStatus, Visibility};
use ims_domain::listing::{Column, Field, Filter, ListQuery, ListScope, Op, SortDir, Value};
use ims_domain::ports::ImageRepo;
use sqlx::Executor;
use time::{Duration, OffsetDateTime};

/// A fresh catalog, its URL (for raw SQL beside it) and what keeps it alive.
struct TestDb {
    db: Catalog,
    url: String,
    /// The PostgreSQL admin URL and the database to drop at the end.
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

async fn test_db() -> TestDb {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match std::env::var("IMS_TEST_DATABASE_URL") {
        Ok(admin) if admin.starts_with("postgres") => {
            let (url, name) = fresh_pg_database(&admin).await;
            (url, Some((admin, name)))
        }
        _ => (ims_db::sqlite_url(&dir.path().join("c.sqlite")), None),
    };
    let db = Catalog::connect(&url).await.unwrap();
    TestDb {
        db,
        url,
        pg,
        _dir: dir,
    }
}

impl TestDb {
    /// Closes the catalog and drops its PostgreSQL database (a failed test leaves it).
    async fn finish(self) {
        self.db.close().await;
        if let Some((admin, name)) = self.pg {
            raw(&admin, &format!("DROP DATABASE {name}")).await;
        }
    }
}

/// Creates a uniquely named database next to the one `admin` names; returns its URL
/// and name.
/// Its default collation is ICU's `en-US`, as on many real servers, which orders text
/// differently from bytes: the catalog must not depend on the database's locale.
async fn fresh_pg_database(admin: &str) -> (String, String) {
    let name = format!("ims_children_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin)
        .await
        .unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu \
         ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    )))
    .await
    .unwrap();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let root = &base[..base.rfind('/').unwrap()];
    (format!("{root}/{name}{query}"), name)
}

async fn raw(url: &str, sql: &str) {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    conn.execute(sqlx::AssertSqlSafe(sql.to_string()))
        .await
        .unwrap();
}

fn image(owner: &str, name: &str, at: OffsetDateTime) -> Image {
    let mut img = Image::new(ImageId::new(), Some(owner.into()), at);
    img.name = Some(name.into());
    img.visibility = Visibility::Private;
    img
}

fn props(n: usize) -> BTreeMap<String, String> {
    (0..n)
        .map(|i| (format!("key_{i:03}"), format!("value {i}")))
        .collect()
}

fn everything(limit: u32) -> ListQuery {
    ListQuery {
        limit,
        ..ListQuery::default()
    }
}

#[tokio::test]
async fn children_round_trip_through_insert_save_get_and_list() {
    let t = test_db().await;
    let now = OffsetDateTime::now_utc();
    let mut img = image("p1", "many", now);
    // More rows than one multi-row INSERT holds, so the chunking is exercised.
    img.properties = props(450);
    img.tags = (0..250).map(|i| format!("tag-{i}")).collect();
    t.db.insert(&img, None).await.unwrap();

    let got = t.db.get(img.id).await.unwrap().unwrap();
    assert_eq!(got.properties, img.properties);
    assert_eq!(got.tags, img.tags);
    let listed =
        t.db.list(&everything(5), &ListScope::Everything)
            .await
            .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].properties.len(), 450);
    assert_eq!(listed[0].tags, img.tags);

    // A save replaces both the copy and the rows that filters read.
    let mut changed = got.clone();
    changed.properties = BTreeMap::from([("os_distro".into(), "debian".into())]);
    changed.tags = BTreeSet::from(["only".to_string()]);
    t.db.save(&changed, ImageStatus::Queued, None)
        .await
        .unwrap();
    let listed =
        t.db.list(&everything(5), &ListScope::Everything)
            .await
            .unwrap();
    assert_eq!(listed[0].properties, changed.properties);
    assert_eq!(listed[0].tags, changed.tags);
    let by_prop = ListQuery {
        filters: vec![Filter::Compare(
            Field::Property("os_distro".into()),
            Op::Eq,
            Value::Text("debian".into()),
        )],
        ..everything(5)
    };
    assert_eq!(
        t.db.list(&by_prop, &ListScope::Everything)
            .await
            .unwrap()
            .len(),
        1
    );
    let old_prop = ListQuery {
        filters: vec![Filter::Compare(
            Field::Property("key_001".into()),
            Op::Eq,
            Value::Text("value 1".into()),
        )],
        ..everything(5)
    };
    assert!(
        t.db.list(&old_prop, &ListScope::Everything)
            .await
            .unwrap()
            .is_empty()
    );
    let by_tag = |tag: &str| ListQuery {
        tags: vec![tag.to_string()],
        ..everything(5)
    };
    assert_eq!(
        t.db.list(&by_tag("only"), &ListScope::Everything)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        t.db.list(&by_tag("tag-7"), &ListScope::Everything)
            .await
            .unwrap()
            .is_empty()
    );
    t.finish().await;
}

#[tokio::test]
async fn rows_without_a_json_copy_read_their_children_from_the_tables() {
    let t = test_db().await;
    let now = OffsetDateTime::now_utc();
    let mut old = image("p1", "old", now);
    old.properties = props(3);
    old.tags = BTreeSet::from(["a".to_string(), "b".to_string()]);
    let mut new = image("p1", "new", now + Duration::seconds(1));
    new.properties = props(1);
    t.db.insert(&old, None).await.unwrap();
    t.db.insert(&new, None).await.unwrap();
    // As a row written before migration 0004 looks.
    raw(
        &t.url,
        &format!(
            "UPDATE images SET properties_json = NULL, tags_json = NULL WHERE id = '{}'",
            old.id
        ),
    )
    .await;

    let listed =
        t.db.list(&everything(5), &ListScope::Everything)
            .await
            .unwrap();
    let names: Vec<_> = listed.iter().map(|i| i.name.clone().unwrap()).collect();
    assert_eq!(names, ["new", "old"]);
    assert_eq!(listed[0].properties, new.properties);
    assert!(listed[0].tags.is_empty());
    assert_eq!(listed[1].properties, old.properties);
    assert_eq!(listed[1].tags, old.tags);
    let got = t.db.get(old.id).await.unwrap().unwrap();
    assert_eq!((got.properties, got.tags), (old.properties, old.tags));

    // The next save writes the copy: the row no longer depends on the fallback.
    let mut renamed = t.db.get(old.id).await.unwrap().unwrap();
    renamed.name = Some("renamed".into());
    t.db.save(&renamed, ImageStatus::Queued, None)
        .await
        .unwrap();
    raw(
        &t.url,
        &format!("DELETE FROM image_tags WHERE image_id = '{}'", old.id),
    )
    .await;
    let got = t.db.get(old.id).await.unwrap().unwrap();
    assert_eq!(got.tags, renamed.tags, "tags come from the JSON copy");
    t.finish().await;
}

#[tokio::test]
async fn text_sort_keys_order_and_page_byte_wise() {
    let t = test_db().await;
    let now = OffsetDateTime::now_utc();
    // Names a locale collation (case-folding, ignoring punctuation) orders differently.
    let names = ["b", "B", "a-c", "ab", "_x", "Zed", "a", "ac"];
    for (n, name) in names.iter().enumerate() {
        let at = now + Duration::milliseconds(n as i64);
        t.db.insert(&image("p1", name, at), None).await.unwrap();
    }
    let mut expected: Vec<&str> = names.to_vec();
    expected.sort_unstable();

    // Pages of 3, each after the previous page's last image.
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let q = ListQuery {
            sort: vec![(Column::Name, SortDir::Asc)],
            limit: 3,
            marker,
            ..ListQuery::default()
        };
        let page =
            t.db.list(&q, &ListScope::Project("p1".into()))
                .await
                .unwrap();
        seen.extend(page.iter().map(|i| i.name.clone().unwrap()));
        if page.len() < 3 {
            break;
        }
        marker = page.last().map(|i| i.id);
    }
    assert_eq!(seen, expected);
    t.finish().await;
}
