//! The built-in KMS's master key at start-up: made on the first start as a 0600 file, and
//! a start with another master key (a changed file, or one given in the environment) is
//! refused with a message saying why, so ims never serves keys it cannot open.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Server;

#[tokio::test]
async fn a_start_with_another_master_key_is_refused() {
    let mut server = Server::start(&[]).await;
    server.kill();
    let path = server.dir.join("kms-master.key");
    let made = std::fs::read_to_string(&path).unwrap();
    assert_eq!(made.trim().len(), 64, "64 hex digits: {made}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let other = "ab".repeat(32);
    for env in [vec![("IMS_KMS__MASTER_KEY", other.as_str())], vec![]] {
        if env.is_empty() {
            // The file itself replaced.
            std::fs::write(&path, &other).unwrap();
        }
        let out = server.refused_start(&env).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("master key"), "{stderr}");
        assert!(stderr.contains("refusing to start"), "{stderr}");
    }
    // Not hex at all.
    let out = server
        .refused_start(&[("IMS_KMS__MASTER_KEY", "not a key")])
        .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("kms.master_key"));

    // The right key again: ims serves.
    std::fs::write(&path, &made).unwrap();
    server.spawn().await;
}
