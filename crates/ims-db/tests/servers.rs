//! The image-server catalog (SQLite, or PostgreSQL with `IMS_TEST_DATABASE_URL`): a server
//! and its job are written together, saves are compare-and-set on status and revision,
//! and listings filter by a partial name (wildcards match themselves), page with
//! offset/limit, count every match and never show deleted servers.

mod support;

use ims_domain::Error;
use ims_domain::job::{Job, JobKind, JobRepo};
use ims_domain::server::{
    AuthorizedAccount, ImageRef, ImageServer, RootVolumeSpec, ServerId, ServerQuery, ServerRepo,
    ServerSettings, ServerStatus, ServerTag,
};
use ims_domain::volume::VolumeId;
use time::OffsetDateTime;

fn server(project: &str, name: &str, minute: i64) -> ImageServer {
    let at = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute);
    ImageServer {
        id: ServerId::new(),
        node_id: Some("n1".into()),
        project_id: project.into(),
        name: name.into(),
        description: "d".into(),
        image_ref: ImageRef {
            id: "img".into(),
            image_type: "gold".into(),
            spce_code: Some("s".into()),
            product_id: Some("p".into()),
        },
        root_volume: RootVolumeSpec {
            volume_type: "SATA".into(),
            size: 60,
            cluster_id: None,
        },
        volume_id: None,
        authorize_accounts: vec![AuthorizedAccount {
            account: "administrator".into(),
            account_type: "USER".into(),
            domain: Some("example.com".into()),
        }],
        tags: vec![ServerTag {
            key: "k".into(),
            value: None,
        }],
        settings: ServerSettings {
            vpc_id: "vpc".into(),
            subnet_id: "subnet".into(),
            product_id: "workspace.x86".into(),
            is_vdi: true,
            route_policy: Some(serde_json::json!({"max_session": 2})),
            ..ServerSettings::default()
        },
        image_id: None,
        status: ServerStatus::Creating,
        status_details: String::new(),
        created_at: at,
        updated_at: at,
        version: 0,
    }
}

fn job(project: &str) -> Job {
    Job::new(
        JobKind::ImageFromVolume,
        project,
        None,
        serde_json::json!({}),
        OffsetDateTime::now_utc(),
    )
}

#[tokio::test]
async fn a_server_and_its_job_are_written_together_and_saves_compare_and_set() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let s = server("p", "build-1", 0);
    let created = job("p");
    db.insert(&s, &created).await.unwrap();
    assert_eq!(ServerRepo::get(db, s.id).await.unwrap().as_ref(), Some(&s));
    assert!(JobRepo::get(db, &created.id).await.unwrap().is_some());
    // The same id again: nothing written, the job neither.
    let again = job("p");
    assert!(db.insert(&s, &again).await.is_err());
    assert!(JobRepo::get(db, &again.id).await.unwrap().is_none());

    let mut active = s.clone();
    active.status = ServerStatus::Active;
    active.volume_id = Some(VolumeId::new());
    db.save(&active, ServerStatus::Creating, None)
        .await
        .unwrap();
    let stored = ServerRepo::get(db, s.id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.volume_id), (1, active.volume_id));
    // A stale revision or the wrong status: a conflict, and its job is not written.
    let capture = job("p");
    let mut stale = active.clone();
    stale.status = ServerStatus::Building;
    assert!(matches!(
        db.save(&stale, ServerStatus::Active, Some(&capture)).await,
        Err(Error::Conflict(_))
    ));
    assert!(JobRepo::get(db, &capture.id).await.unwrap().is_none());
    let mut building = stored.clone();
    building.status = ServerStatus::Building;
    db.save(&building, ServerStatus::Active, Some(&capture))
        .await
        .unwrap();
    assert!(JobRepo::get(db, &capture.id).await.unwrap().is_some());
}

#[tokio::test]
async fn listings_match_names_in_part_page_and_count() {
    let t = support::TestCatalog::new().await;
    let db = &t.db;
    let names = ["Build_A", "buildxa", "other", "build_b", "gone_build_c"];
    let mut ids = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let s = server("p", name, n as i64);
        db.insert(&s, &job("p")).await.unwrap();
        ids.push(s);
    }
    db.insert(&server("q", "build_q", 9), &job("q"))
        .await
        .unwrap();
    let mut gone = ids[4].clone();
    gone.status = ServerStatus::Deleted;
    db.save(&gone, ServerStatus::Creating, None).await.unwrap();

    let query = |name: Option<&str>, offset, limit| ServerQuery {
        project_id: "p".into(),
        name_contains: name.map(String::from),
        id: None,
        offset,
        limit,
    };
    let names_of = |found: &[ImageServer]| found.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let (all, count) = ServerRepo::list(db, &query(None, 0, 10)).await.unwrap();
    assert_eq!(count, 4);
    assert_eq!(names_of(&all), ["build_b", "other", "buildxa", "Build_A"]);
    // `_` is a character here, not a wildcard; case does not matter.
    let (found, count) = ServerRepo::list(db, &query(Some("BUILD_"), 0, 10))
        .await
        .unwrap();
    assert_eq!(
        (names_of(&found), count),
        (vec!["build_b".into(), "Build_A".into()], 2)
    );
    let (page, count) = ServerRepo::list(db, &query(None, 1, 2)).await.unwrap();
    assert_eq!(
        (names_of(&page), count),
        (vec!["other".into(), "buildxa".into()], 4)
    );
    let mut by_id = query(None, 0, 10);
    by_id.id = Some(ids[2].id);
    assert_eq!(
        names_of(&ServerRepo::list(db, &by_id).await.unwrap().0),
        ["other"]
    );
    let live = db.live().await.unwrap();
    assert_eq!(live.len(), 5);
    assert!(live.iter().all(|s| s.status != ServerStatus::Deleted));
}
