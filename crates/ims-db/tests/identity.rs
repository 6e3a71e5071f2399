//! Identity storage rules that matter once several nodes share one catalog (SQLite, or
//! PostgreSQL with `IMS_TEST_DATABASE_URL`): bootstrap is all-or-nothing and happens once,
//! grants are idempotent under concurrency, the database's own errors mean the same
//! thing on both engines, and what nodes share of repeated attempts (signature uses,
//! password failures) counts once across them.

mod support;

use ims_db::Catalog;
use ims_domain::Error;
use ims_domain::identity::{Domain, IdentitySeed, Project, Role, User};
use ims_domain::ports::IdentityRepo;

fn seed(tag: &str) -> IdentitySeed {
    let roles: Vec<Role> = ["admin", "member", "reader"]
        .iter()
        .map(|n| Role {
            id: format!("{n}-{tag}"),
            name: (*n).into(),
        })
        .collect();
    IdentitySeed {
        domain: Domain {
            id: "default".into(),
            name: "Default".into(),
        },
        admin_role_id: roles[0].id.clone(),
        roles,
        project: Project {
            id: format!("p-{tag}"),
            name: "admin".into(),
            domain_id: "default".into(),
            description: "Bootstrap project".into(),
            enabled: true,
        },
        user: User {
            id: format!("u-{tag}"),
            name: "admin".into(),
            domain_id: "default".into(),
            default_project_id: Some(format!("p-{tag}")),
            enabled: true,
            password_hash: "x".into(),
        },
    }
}

#[tokio::test]
async fn a_failed_bootstrap_leaves_nothing_and_the_next_one_succeeds() {
    let c = support::TestCatalog::new().await;
    let mut broken = seed("a");
    // Two roles with one name: the third statement of the transaction fails.
    broken.roles[1].name = "admin".into();
    assert!(matches!(
        c.db.bootstrap(&broken).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(c.db.domain_by_id("default").await.unwrap().is_none());
    assert!(c.db.list_roles(None).await.unwrap().is_empty());

    assert!(c.db.bootstrap(&seed("b")).await.unwrap());
    assert!(!c.db.bootstrap(&seed("c")).await.unwrap(), "only once");
    let roles = c.db.roles_of("p-b", "u-b").await.unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].name, "admin");
    assert_eq!(
        c.db.domain_by_name("Default").await.unwrap().unwrap().id,
        "default"
    );
    assert!(c.db.domain_by_name("default").await.unwrap().is_none());
}

#[tokio::test]
async fn two_nodes_bootstrapping_together_make_exactly_one_admin() {
    let c = support::TestCatalog::new().await;
    let other = Catalog::connect(&c.url).await.unwrap();
    let (seed_a, seed_b) = (seed("a"), seed("b"));
    let (a, b) = tokio::join!(c.db.bootstrap(&seed_a), other.bootstrap(&seed_b));
    let won = [a.unwrap(), b.unwrap()];
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_eq!(c.db.list_users(Some("admin")).await.unwrap().len(), 1);
    assert_eq!(c.db.list_roles(None).await.unwrap().len(), 3);
    other.close().await;
}

#[tokio::test]
async fn concurrent_grants_of_one_role_all_succeed() {
    let c = support::TestCatalog::new().await;
    assert!(c.db.bootstrap(&seed("a")).await.unwrap());
    let grants: Vec<_> = (0..8)
        .map(|_| {
            let db = c.db.clone();
            tokio::spawn(async move { db.grant("p-a", "u-a", "member-a").await })
        })
        .collect();
    for g in grants {
        g.await.unwrap().unwrap();
    }
    let names: Vec<String> =
        c.db.roles_of("p-a", "u-a")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
    assert_eq!(names, ["admin", "member"]);
    // A grant naming a user that does not exist is the caller's mistake, not a 500.
    assert!(matches!(
        c.db.grant("p-a", "nobody", "member-a").await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn text_the_database_cannot_store_is_invalid_input_not_an_internal_error() {
    let c = support::TestCatalog::new().await;
    // The domain refuses control characters before this point; the adapter must still
    // not turn PostgreSQL's refusal into a 500. SQLite stores and compares NUL.
    let found = c.db.domain_by_name("De\0fault").await;
    if c.is_postgres() {
        assert!(matches!(found, Err(Error::InvalidInput(_))), "{found:?}");
    } else {
        assert!(found.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_signature_is_first_used_once_across_nodes_until_its_window_closes() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let t0 = time::OffsetDateTime::now_utc();
    let s = time::Duration::seconds;
    let expires = t0 + s(900);
    assert_eq!(
        db.signature_first_used("sig", t0, expires).await.unwrap(),
        t0
    );
    // Another node, later: the first use stands (to the stored precision).
    let first = db
        .signature_first_used("sig", t0 + s(5), expires)
        .await
        .unwrap();
    assert!((first - t0).abs() < s(1), "{first} vs {t0}");
    // Concurrent first uses of a new signature: exactly one of them is the first.
    let (a, b) = tokio::join!(
        db.signature_first_used("race", t0, expires),
        db.signature_first_used("race", t0 + s(2), expires)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        (a - b).abs() < time::Duration::milliseconds(1),
        "both callers see the same first use: {a} vs {b}"
    );
    // Once its window has closed the record is purged, and never blocks a new use.
    let later = expires + s(1);
    assert_eq!(
        db.signature_first_used("sig", later, later + s(900))
            .await
            .unwrap(),
        later
    );
    assert!(db.purge_tokens(later + s(901), later).await.unwrap() >= 1);
}

#[tokio::test]
async fn password_failures_count_across_nodes_and_are_forgotten() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let t0 = time::OffsetDateTime::now_utc();
    let s = time::Duration::seconds;
    assert_eq!(db.login_failures("acct").await.unwrap(), None);
    for i in 0..4 {
        let at = t0 + s(i);
        db.add_login_failure("acct", at, at - s(900)).await.unwrap();
    }
    let (a, b) = tokio::join!(
        db.add_login_failure("acct", t0 + s(5), t0 - s(900)),
        db.add_login_failure("acct", t0 + s(6), t0 - s(900))
    );
    a.unwrap();
    b.unwrap();
    let (n, last) = db.login_failures("acct").await.unwrap().unwrap();
    assert_eq!(n, 6, "concurrent failures are all counted");
    assert!(last >= t0 && last <= t0 + s(6));
    // A failure after the forget horizon starts the count again.
    let much_later = t0 + s(3600);
    db.add_login_failure("acct", much_later, much_later - s(900))
        .await
        .unwrap();
    assert_eq!(db.login_failures("acct").await.unwrap().unwrap().0, 1);
    db.clear_login_failures("acct").await.unwrap();
    assert_eq!(db.login_failures("acct").await.unwrap(), None);
    db.add_login_failure("old", t0, t0 - s(900)).await.unwrap();
    db.purge_tokens(t0, t0 + s(1)).await.unwrap();
    assert_eq!(db.login_failures("old").await.unwrap(), None);
}

#[tokio::test]
async fn the_database_tells_its_time_for_nodes_to_follow() {
    let t = support::TestCatalog::new().await;
    let before = time::OffsetDateTime::now_utc();
    let db_time = t.db.database_time().await.unwrap();
    let after = time::OffsetDateTime::now_utc();
    // The database runs on this host in tests: its clock is this one, to the millisecond.
    let slack = time::Duration::milliseconds(5);
    assert!(
        db_time >= before - slack && db_time <= after + slack,
        "{before} <= {db_time} <= {after}"
    );
}

/// A caller dropped while its transaction is beginning (a client that hangs up mid-request)
/// must not leave the pooled connection inside a transaction: the next borrower's writes
/// would run in it, invisible to every other connection, and hold its locks. One
/// connection in the pool, callers cut short at many moments, and after each a write that
/// another node (a second pool) must see.
#[tokio::test]
async fn a_caller_dropped_mid_transaction_leaves_no_transaction_open() {
    use ims_domain::identity::session::SessionRepo;
    use ims_domain::ports::JobRepo;
    let t = support::TestCatalog::new().await;
    let settings = ims_db::PoolSettings {
        max_connections: Some(1),
        ..ims_db::PoolSettings::default()
    };
    let db = Catalog::connect_with(&t.url, settings).await.unwrap();
    let other = Catalog::connect(&t.url).await.unwrap();
    let since = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    // Cuts spread over 0–1.5 ms (a loopback round trip is ~0.1 ms). Without the fix a cut
    // around 0.1 ms left the connection inside a transaction within a few hundred tries.
    for i in 0..400u64 {
        let cut = std::time::Duration::from_micros((i * 7919) % 1500);
        let _ = tokio::time::timeout(cut, db.set_verifier("nobody", "v")).await;
        let probe = format!("probe-{i}");
        db.node_seen(&probe, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert!(
            other
                .nodes_seen_since(since)
                .await
                .unwrap()
                .contains(&probe),
            "a write after a caller cut short at {cut:?} stayed in a transaction"
        );
    }
}
