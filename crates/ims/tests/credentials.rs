//! AK/SK credentials: created with `ims admin credential`, stored sealed, listed, deleted.

mod common;

use common::Server;

#[tokio::test]
async fn credentials_are_created_listed_sealed_and_deleted() {
    let server = Server::start(&[]).await;
    let created = server.admin(&["credential", "create", "--user", "admin"]);
    let (ak, sk) = created.split_once(' ').expect("AK SK");
    assert_eq!(ak.len(), 20);
    assert!(
        ak.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert_eq!(sk.len(), 40);

    let listed = server.admin(&["credential", "list", "--user", "admin"]);
    assert!(listed.starts_with(ak), "{listed}");
    assert!(!listed.contains(sk), "the secret is never listed");

    // The catalog holds the secret sealed, never in the clear.
    let stored: Vec<Vec<u8>> = match &server.database {
        Some(db) => {
            let rows = ims_db::scratch::rows_as_text(&db.url, "credentials")
                .await
                .unwrap();
            assert!(
                rows.iter().any(|r| r.contains(ak)),
                "the credential is in the PostgreSQL catalog"
            );
            rows.into_iter().map(String::into_bytes).collect()
        }
        None => vec![
            std::fs::read(server.dir.join("catalog.sqlite")).unwrap(),
            std::fs::read(server.dir.join("catalog.sqlite-wal")).unwrap_or_default(),
        ],
    };
    for bytes in &stored {
        assert!(
            !bytes.windows(sk.len()).any(|w| w == sk.as_bytes()),
            "secret stored in the clear"
        );
    }
    let key = std::fs::metadata(server.dir.join("credential.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);

    server.admin(&["credential", "delete", ak]);
    assert_eq!(server.admin(&["credential", "list", "--user", "admin"]), "");
}
