//! Image searches in the catalog (SQLite, or PostgreSQL with `IMS_TEST_DATABASE_URL`):
//! name-prefix patterns find exactly what the database's `LIKE` finds, whether the search
//! goes through the `lower(name)` range (few names in it) or not (many), with property
//! and format conditions beside them, in order, with the same total.

mod support;

use ims_domain::image::{DiskFormat, Image, ImageId, ImageStatus};
use ims_domain::listing::ListScope;
use ims_domain::ports::ImageRepo;
use ims_domain::query::{Condition, Op, Page, Query, Sort, SortDir, Value};
use time::{Duration, OffsetDateTime};

fn image(name: &str, qcow2: bool, data: bool, at: i64) -> Image {
    let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap() + Duration::seconds(at);
    let mut img = Image::new(ImageId::new(), Some("p".into()), t);
    img.name = Some(name.into());
    img.disk_format = Some(if qcow2 {
        DiskFormat::Qcow2
    } else {
        DiskFormat::Raw
    });
    let env = if data { "DataImage" } else { "FusionCompute" };
    img.properties.insert("virtual_env_type".into(), env.into());
    img
}

/// The database's `LIKE` for the patterns below (a literal prefix, then `%`, `_` only as
/// in "zsb_1%"): SQLite ignores ASCII case, PostgreSQL does not.
fn like(name: &str, pattern: &str, ignore_ascii_case: bool) -> bool {
    fn m(n: &[char], p: &[char], ic: bool) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('%', rest)) => (0..=n.len()).any(|k| m(&n[k..], rest, ic)),
            Some((c, rest)) => match n.split_first() {
                Some((x, nrest)) => {
                    let same = if ic {
                        x.eq_ignore_ascii_case(c)
                    } else {
                        x == c
                    };
                    (*c == '_' || same) && m(nrest, rest, ic)
                }
                None => false,
            },
        }
    }
    let n: Vec<char> = name.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    m(&n, &p, ignore_ascii_case)
}

fn text(field: &str, op: Op, v: &str) -> Condition {
    Condition::new(field, op, vec![Value::Text(v.into())]).unwrap()
}

fn query(conditions: Vec<Condition>, limit: u64) -> Query {
    Query {
        conditions,
        sort: Some(Sort {
            field: "created_at".into(),
            dir: SortDir::Desc,
        }),
        page: Page { start: 0, limit },
        count_only: false,
        with_total: true,
    }
}

#[tokio::test]
async fn name_prefixes_find_what_like_finds_through_the_range_or_not() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let ic = !t.is_postgres();
    // Names around the prefixes: other case, `_` and `-`, the range's ends, non-ASCII
    // (SQLite folds ASCII only), a deleted image.
    let odd = [
        "ZSB-1upper",
        "zSb-1mixed",
        "zsb-1",
        "zsb-2",
        "zsb-0~",
        "zsb_1underscore",
        "zsb-1\u{10FFFF}",
        "Äpfel-1",
        "äpfel-2",
        "ÄPFEL-3",
    ];
    let mut all = Vec::new();
    let mut at = 0;
    for (n, name) in odd.iter().enumerate() {
        all.push(image(name, n % 2 == 0, n % 3 != 1, at));
        at += 1;
    }
    // Many names under one prefix, so that its range is too broad to be searched
    // through; a few under another.
    for i in 0..2_050 {
        all.push(image(&format!("zsb-9{i:04}"), i % 2 == 1, i % 3 == 0, at));
        at += 1;
    }
    for i in 0..40 {
        all.push(image(&format!("zsb-1{i:02}"), i % 2 == 1, i % 3 == 0, at));
        at += 1;
    }
    let batch: Vec<(Image, Option<_>)> = all.iter().map(|i| (i.clone(), None)).collect();
    assert!(db.insert_all(&batch, None).await.unwrap());
    let mut dead = image("zsb-1dead", true, true, at);
    db.insert(&dead, None).await.unwrap();
    dead.status = ImageStatus::Deleted;
    db.save(&dead, ImageStatus::Queued, None).await.unwrap();

    let by_age = |pattern: &str, cond: &dyn Fn(&Image) -> bool| -> Vec<String> {
        let mut found: Vec<&Image> = all
            .iter()
            .filter(|i| like(i.name.as_deref().unwrap(), pattern, ic) && cond(i))
            .collect();
        found.sort_by(|a, b| {
            (b.created_at, b.id.to_string()).cmp(&(a.created_at, a.id.to_string()))
        });
        found.iter().map(|i| i.name.clone().unwrap()).collect()
    };
    let names = |found: &[Image]| -> Vec<String> {
        found.iter().map(|i| i.name.clone().unwrap()).collect()
    };
    let qcow2_data = |i: &Image| {
        i.disk_format == Some(DiskFormat::Qcow2)
            && i.properties.get("virtual_env_type").map(String::as_str) == Some("DataImage")
    };
    for pattern in [
        "zsb-1%", "ZSB-1%", "zsb-9%", "zsb-%", "zsb_1%", "zsb-1", "äpfel%", "Äpfel%", "%1",
        "zsb-0%",
    ] {
        for limit in [5, 1_000_000] {
            let found = db
                .search(
                    &query(vec![text("name", Op::Like, pattern)], limit),
                    &ListScope::Everything,
                )
                .await
                .unwrap();
            let want = by_age(pattern, &|_| true);
            assert_eq!(found.total, Some(want.len() as u64), "{pattern}");
            let n = want.len().min(limit as usize);
            assert_eq!(names(&found.items), want[..n], "{pattern} limit {limit}");

            // The benchmark's shape: a prefix, a format, a property.
            let conds = vec![
                text("name", Op::Like, pattern),
                text("disk_format", Op::Eq, "qcow2"),
                text("properties.virtual_env_type", Op::Eq, "DataImage"),
            ];
            let found = db
                .search(&query(conds, limit), &ListScope::Project("p".into()))
                .await
                .unwrap();
            let want = by_age(pattern, &qcow2_data);
            assert_eq!(
                found.total,
                Some(want.len() as u64),
                "{pattern} + conditions"
            );
            let n = want.len().min(limit as usize);
            assert_eq!(names(&found.items), want[..n], "{pattern} + conditions");
        }
    }
    // What the case rules mean here, spelled out.
    let upper = db
        .search(
            &query(vec![text("name", Op::Like, "zsb-1u%")], 10),
            &ListScope::Everything,
        )
        .await
        .unwrap();
    assert_eq!(
        names(&upper.items),
        if ic { vec!["ZSB-1upper"] } else { vec![] }
    );
    let umlaut = db
        .search(
            &query(vec![text("name", Op::Like, "äpfel%")], 10),
            &ListScope::Everything,
        )
        .await
        .unwrap();
    assert_eq!(names(&umlaut.items), ["äpfel-2"]);
}
