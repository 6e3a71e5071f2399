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

#[path = "../../ims-kmip/tests/common/mod.rs"]
mod kmip;

/// With `[kms] backend = "kmip"` against PyKMIP on loopback: keys are made in the KMIP
/// server, data keys are wrapped by it, an encrypted data image and its copy under a
/// second key read back, the key's state governs reads, and a KMIP server that went away
/// gives a clear 503 quickly instead of a hang: images read recently stay readable (their
/// data keys are cached), and a job that needs the KMS retries, then fails with the reason.
#[tokio::test]
async fn keys_held_by_a_kmip_server_encrypt_images() {
    use common::encryption::*;
    use common::wait_until;
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let vars = kmip::run_script(&[state]);
    let port = kmip::var(&vars, "PYKMIP_PORT").to_string();
    let (mut server, signer, api, data, key) = setup_with(&[
        ("IMS_KMS__BACKEND", "kmip"),
        ("IMS_KMS__KMIP_HOST", "127.0.0.1"),
        ("IMS_KMS__KMIP_PORT", &port),
        ("IMS_KMS__KMIP_CA_FILE", kmip::var(&vars, "PYKMIP_CA")),
        (
            "IMS_KMS__KMIP_CERT_FILE",
            kmip::var(&vars, "PYKMIP_CLIENT_CERT"),
        ),
        (
            "IMS_KMS__KMIP_KEY_FILE",
            kmip::var(&vars, "PYKMIP_CLIENT_KEY"),
        ),
    ])
    .await;
    let other = new_key(&signer, "kmip-copies").await;
    // The material is the KMIP server's: a key named after ims's key id is there.
    let (pki, _) = kmip::script_pki(&["certs", state]);
    let port: u16 = port.parse().unwrap();
    let kmip_client = ims_kmip::KmipClient::connect(pki.config(port))
        .await
        .unwrap();
    let held = kmip_client
        .locate_by_name(&format!("ims-{key}"))
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "{held:?}");

    let (status, made) = kms(&signer, "create-datakey", json!({"key_id": key})).await;
    assert_eq!(status, 200, "{made}");
    let (status, opened) = kms(
        &signer,
        "decrypt-datakey",
        json!({"key_id": key, "cipher_text": made["cipher_text"]}),
    )
    .await;
    assert_eq!((status, &opened["data_key"]), (200, &made["plain_text"]));

    let job = sealed_image(&signer, &key).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let id = image_of(&job);
    assert!(api.download(&id).await == data);
    let (status, created) = copy(&signer, &id, json!({"name": "c", "cmk_id": other})).await;
    assert_eq!(status, 200, "{created}");
    let copied = image_of(&job_end(&signer, &created).await);
    assert!(api.download(&copied).await == data);
    assert_eq!(server.stored_files().len(), 1, "the copy shares the blob");

    let (status, _) = kms(&signer, "disable-key", json!({"key_id": key})).await;
    assert_eq!(status, 200);
    assert_eq!(get_file(&api, &id, None).await.status(), 403);
    assert!(api.download(&copied).await == data);
    let (status, _) = kms(&signer, "enable-key", json!({"key_id": key})).await;
    assert_eq!(status, 200);
    assert!(api.download(&id).await == data);

    // A data image whose job is held, then ims restarted (its key cache empty) and the
    // image read again, so that its data key is cached.
    const HOLD: &str = "IMS_JOBS__PER_KIND";
    server.kill();
    server.set_env(HOLD, Some("{ data_image_from_file = 0 }"));
    server.spawn().await;
    assert!(api.download(&id).await == data);
    let (status, held) = signer
        .send(
            reqwest::Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(
                json!({"name": "late", "image_url": "enc:disk.raw", "min_disk": 40,
                        "cmk_id": key}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{held}");

    // The KMIP server gone: a clear, quick refusal.
    kmip::run_script(&["stop", state]);
    let (status, refused) = wait_until(std::time::Duration::from_secs(30), || async {
        let (status, body) = kms(&signer, "create-datakey", json!({"key_id": key})).await;
        if status == 503 {
            Ok((status, body))
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await;
    assert_eq!(
        (status, refused["error"]["error_code"].as_str()),
        (503, Some("KMS.0102")),
        "{refused}"
    );
    // An image read minutes ago stays readable: its data key is cached (the check of the
    // key's state, above, never is).
    assert!(api.download(&id).await == data);

    // The held job runs now: it cannot open its data key, retries as for any transient
    // failure, then fails with the reason, and its image is killed, holding nothing.
    server.kill();
    server.set_env(HOLD, None);
    let blobs = server.stored_files();
    server.spawn().await;
    let job = job_end(&signer, &held).await;
    assert_eq!(job["status"], "FAIL", "{job}");
    assert_eq!(job["error_code"], "IMG.0061", "{job}");
    assert!(
        job["fail_reason"]
            .as_str()
            .unwrap_or("")
            .contains("KMIP server"),
        "{job}"
    );
    let late = image_of(&job);
    assert_eq!(api.show(&late).await["status"], "killed");
    assert_eq!(server.stored_files(), blobs, "the failed job left data");
}
