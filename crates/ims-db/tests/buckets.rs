//! Bucket owners and shares in the catalog (SQLite, or PostgreSQL with
//! `IMS_TEST_DATABASE_URL`): one SQL for both engines, and the references to projects
//! behave alike (an unknown project is refused; a deleted one leaves its buckets without
//! owner and ends its shares).

mod support;

use ims_domain::Error;
use ims_domain::identity::{Domain, IdentitySeed, Project, Role, User};
use ims_domain::ports::{BucketRepo, IdentityRepo};

fn project(id: &str) -> Project {
    Project {
        id: id.into(),
        name: id.into(),
        domain_id: "default".into(),
        description: String::new(),
        enabled: true,
    }
}

async fn catalog_with_projects() -> support::TestCatalog {
    let t = support::TestCatalog::new().await;
    let seed = IdentitySeed {
        domain: Domain {
            id: "default".into(),
            name: "Default".into(),
        },
        admin_role_id: "r-admin".into(),
        roles: vec![Role {
            id: "r-admin".into(),
            name: "admin".into(),
        }],
        project: project("admin-p"),
        user: User {
            id: "u-admin".into(),
            name: "admin".into(),
            domain_id: "default".into(),
            default_project_id: None,
            enabled: true,
            password_hash: "x".into(),
        },
    };
    assert!(t.db.bootstrap(&seed).await.unwrap());
    for p in ["pa", "pb"] {
        t.db.insert_project(&project(p)).await.unwrap();
    }
    t
}

#[tokio::test]
async fn owners_shares_adoption_and_deleted_projects() {
    let t = catalog_with_projects().await;
    let db = &t.db;
    assert_eq!(db.bucket_grants("bkt").await.unwrap(), None);
    db.insert_bucket("bkt", Some("pa")).await.unwrap();
    assert!(matches!(
        db.insert_bucket("bkt", Some("pb")).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        db.insert_bucket("ghost-owned", Some("nobody")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        db.share_bucket("unknown", "pb").await,
        Err(Error::NotFound {
            kind: ims_domain::Entity::Bucket,
            ..
        })
    ));
    db.share_bucket("bkt", "pb").await.unwrap();
    db.share_bucket("bkt", "pb").await.unwrap();
    db.share_bucket("bkt", "admin-p").await.unwrap();
    let g = db.bucket_grants("bkt").await.unwrap().unwrap();
    assert_eq!(g.owner.as_deref(), Some("pa"));
    assert_eq!(
        g.readers.iter().map(String::as_str).collect::<Vec<_>>(),
        ["admin-p", "pb"]
    );
    assert!(db.unshare_bucket("bkt", "admin-p").await.unwrap());
    assert!(!db.unshare_bucket("bkt", "admin-p").await.unwrap());

    // Adoption records only the unknown buckets; known ones keep their owner.
    let adopted = db
        .adopt_buckets(&["bkt".into(), "legacy".into()], "admin-p")
        .await
        .unwrap();
    assert_eq!(adopted, ["legacy"]);
    assert_eq!(
        db.bucket_grants("bkt")
            .await
            .unwrap()
            .unwrap()
            .owner
            .as_deref(),
        Some("pa")
    );
    db.set_bucket_owner("legacy", None).await.unwrap();
    db.set_bucket_owner("s3-bucket", Some("pb")).await.unwrap();
    let listed: Vec<(String, Option<String>)> = db
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.name, g.owner))
        .collect();
    assert_eq!(
        listed,
        [
            ("bkt".to_string(), Some("pa".to_string())),
            ("legacy".to_string(), None),
            ("s3-bucket".to_string(), Some("pb".to_string())),
        ]
    );

    // A deleted project owns nothing and is shared nothing.
    assert!(db.delete_project("pb").await.unwrap());
    assert_eq!(
        db.bucket_grants("s3-bucket").await.unwrap().unwrap().owner,
        None
    );
    assert!(
        db.bucket_grants("bkt")
            .await
            .unwrap()
            .unwrap()
            .readers
            .is_empty()
    );
}
