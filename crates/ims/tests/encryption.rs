//! Encrypted images (issue 15): a data image imported with a KMS key is stored sealed
//! (no plaintext on disk), reads back whole and by ranges at every segment boundary, is
//! copied in O(1) (no new blob) with or without a new key, and its key's state governs
//! every read. A tampered blob never yields altered bytes. Deleting images frees the
//! shared blob only with its last image.

mod common;

use std::process::Command;

use common::Server;
use common::disk::run;
use common::encryption::*;
use common::signed::Signer;
use common::zstack::Zs;
use reqwest::Method;
use serde_json::json;

fn store_holds(server: &Server, needle: &[u8]) -> bool {
    server.stored_files().iter().any(|f| {
        std::fs::read(f)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle)
    })
}

#[tokio::test]
async fn encrypted_images_are_sealed_copied_in_place_and_governed_by_their_key() {
    let (server, signer, api, data, key) = setup().await;
    let other = new_key(&signer, "copies").await;

    let job = sealed_image(&signer, &key).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let id = image_of(&job);
    let shown = api.show(&id).await;
    assert_eq!(shown["__system__cmkid"], key.as_str(), "{shown}");
    assert_eq!(shown["__system_encrypted"], "1", "{shown}");
    assert_eq!(shown["size"], data.len() as u64);
    assert!(
        !store_holds(&server, MARKER),
        "plaintext found in the store"
    );
    let blobs = server.stored_files();
    assert_eq!(blobs.len(), 1, "{blobs:?}");

    // Another project's key, and a key pending deletion, are refused for new images.
    server.add_member("p2", "bob", "Secret-pass1");
    let bob = Signer::new(&server, "bob", "p2");
    let bobs_key = new_key(&bob, "bobs").await;
    let (status, refused) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(
                json!({"name": "x", "image_url": "enc:disk.raw", "min_disk": 40,
                        "cmk_id": bobs_key}),
            ),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("IMG.0095")),
        "{refused}"
    );
    let doomed = new_key(&signer, "doomed").await;
    let (status, _) = kms(
        &signer,
        "schedule-key-deletion",
        json!({"key_id": doomed, "pending_days": "7"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, refused) = copy(&signer, &id, json!({"name": "x", "cmk_id": doomed})).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("IMG.0097")),
        "{refused}"
    );

    // An encrypted image stays with its project: no members, no community or public.
    let other_project = server.project_id("p2");
    let r = common::patch(
        &api,
        &id,
        json!([{"op": "replace", "path": "/visibility", "value": "shared"}]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = api
        .req(Method::POST, &format!("/v2/images/{id}/members"))
        .json(&json!({"member": other_project}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = common::patch(
        &api,
        &id,
        json!([{"op": "replace", "path": "/visibility", "value": "community"}]),
    )
    .await;
    assert_eq!(r.status(), 400);
    let (status, refused) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/members",
            Some(json!({"images": [id], "projects": [other_project]})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("IMG.0098")),
        "{refused}"
    );

    // Whole, and by ranges at every boundary.
    assert!(
        api.download(&id).await == data,
        "the whole image reads back"
    );
    let last = data.len() - 1;
    for (a, b) in [
        (0, 0),
        (last, last),
        (SEGMENT - 1, SEGMENT),
        (SEGMENT, 2 * SEGMENT - 1),
        (10, 3 * SEGMENT + 7),
        (4 * SEGMENT, last),
    ] {
        let (status, got) = ranged(&api, &id, a, b).await;
        assert_eq!(status, 206, "{a}-{b}");
        assert!(got == data[a..=b], "bytes {a}-{b}");
    }
    let (status, _) = ranged(&api, &id, data.len(), data.len() + 5).await;
    assert_eq!(status, 416);

    // Seed 003's copy: the same key refused, a new key re-wraps, no key keeps the source's.
    let (status, refused) = copy(&signer, &id, json!({"name": "same", "cmk_id": key})).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("IMG.0096"))
    );
    let (status, refused) = copy(
        &signer,
        &id,
        json!({"name": "unknown", "cmk_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f"}),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("IMG.0095"))
    );
    let (status, created) = copy(&signer, &id, json!({"name": "rekeyed", "cmk_id": other})).await;
    assert_eq!(status, 200, "{created}");
    let rekeyed = image_of(&job_end(&signer, &created).await);
    let (status, created) = copy(&signer, &id, json!({"name": "plain-copy"})).await;
    assert_eq!(status, 200, "{created}");
    let same_key = image_of(&job_end(&signer, &created).await);
    assert_eq!(api.show(&rekeyed).await["__system__cmkid"], other.as_str());
    assert_eq!(api.show(&same_key).await["__system__cmkid"], key.as_str());
    assert_eq!(server.stored_files(), blobs, "copies store nothing new");
    assert!(api.download(&rekeyed).await == data);
    assert!(api.download(&same_key).await == data);

    // The key disabled: no read of its images, no copy under it; the other key's copy reads.
    let (status, _) = kms(&signer, "disable-key", json!({"key_id": key})).await;
    assert_eq!(status, 200);
    assert_eq!(get_file(&api, &id, None).await.status(), 403);
    let (status, refused) = copy(&signer, &rekeyed, json!({"name": "x", "cmk_id": key})).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("IMG.0097"))
    );
    // The source's own key is not enabled: IMG.0102, with or without a new key.
    for body in [json!({"name": "y", "cmk_id": other}), json!({"name": "z"})] {
        let (status, refused) = copy(&signer, &id, body).await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (400, Some("IMG.0102")),
            "{refused}"
        );
    }
    assert!(api.download(&rekeyed).await == data);
    let (status, _) = kms(&signer, "enable-key", json!({"key_id": key})).await;
    assert_eq!(status, 200);
    assert!(api.download(&id).await == data);

    // The blob stays until its last image goes.
    for (gone, left) in [(&id, 2), (&same_key, 1)] {
        let r = api
            .req(Method::DELETE, &format!("/v2/images/{gone}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(server.stored_files(), blobs, "{left} images still hold it");
    }
    assert!(api.download(&rekeyed).await == data);
    let r = api
        .req(Method::DELETE, &format!("/v2/images/{rekeyed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(server.stored_files().is_empty(), "the last image freed it");
}

/// A volume's whole content as raw bytes (`qemu-img convert`), and whether it names a
/// backing file.
fn volume_content(server: &Server, id: &str) -> (Vec<u8>, bool) {
    let shown: serde_json::Value =
        serde_json::from_str(&server.admin(&["volume", "show", id])).unwrap();
    assert_eq!(shown["status"], "ready", "{shown}");
    let file = server
        .dir
        .join("volumes")
        .join(shown["location"].as_str().unwrap());
    let info = run(Command::new("qemu-img")
        .args(["info", "--output=json", "-f", "qcow2"])
        .arg(&file));
    let raw = file.with_extension("raw-copy");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(&file)
        .arg(&raw));
    let bytes = std::fs::read(&raw).unwrap();
    std::fs::remove_file(&raw).unwrap();
    (bytes, info.contains("backing-filename"))
}

/// `got` is `want` followed by zeros only.
fn holds(got: &[u8], want: &[u8]) -> bool {
    got.len() >= want.len()
        && got[..want.len()] == *want
        && got[want.len()..].iter().all(|&b| b == 0)
}

#[tokio::test]
async fn a_volume_from_an_encrypted_image_is_a_decrypted_copy_made_while_its_key_is_enabled() {
    let (server, signer, api, data, key) = setup().await;
    let raw_image = image_of(&sealed_image(&signer, &key).await);
    // A qcow2 system image too: its bytes are the volume's layout already.
    let writes = ["write -P 0x5c 1M 64k".to_string()];
    let qcow2_image = sealed_system_image(&server, &signer, "enc", "8M", &writes, &key).await;
    let blobs = server.stored_files();
    assert_eq!(blobs.len(), 2, "{blobs:?}");

    // The key disabled: no volume, in ZStack's terms and the admin CLI's; nothing made.
    let zs = Zs::admin(&server).await;
    let from_template = |image: &str| {
        format!(
            "/volumes/data/from/data-volume-templates/{}",
            image.replace('-', "")
        )
    };
    let (status, _) = kms(&signer, "disable-key", json!({"key_id": key})).await;
    assert_eq!(status, 200);
    let r = zs
        .send_settled(
            Method::POST,
            &from_template(&raw_image),
            json!({"params": {"name": "refused"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (503, "SYS.1006"), "{}", r.text);
    assert!(r.text.contains("disabled"), "{}", r.text);
    let out = server.admin_output(&[
        "volume",
        "create",
        "--name",
        "x",
        "--from-image",
        &qcow2_image,
    ]);
    assert!(!out.status.success());
    assert!(
        server.admin(&["volume", "list"]).is_empty(),
        "a refused volume was made"
    );

    // Enabled again: each volume holds the image's bytes, copied, with no backing file.
    let (status, _) = kms(&signer, "enable-key", json!({"key_id": key})).await;
    assert_eq!(status, 200);
    let r = zs
        .send_settled(
            Method::POST,
            &from_template(&raw_image),
            json!({"params": {"name": "from-raw"}}),
        )
        .await;
    let volume = r.inventory()["uuid"].as_str().unwrap().to_string();
    let (bytes, backed) = volume_content(&server, &volume);
    assert!(!backed, "a copy has no backing file");
    assert!(holds(&bytes, &data), "the raw image's volume differs");
    let volume = server.admin(&[
        "volume",
        "create",
        "--name",
        "from-qcow2",
        "--from-image",
        &qcow2_image,
        "--size",
        "16777216",
    ]);
    let volume = volume.trim();
    let (bytes, backed) = volume_content(&server, volume);
    assert!(!backed);
    assert_eq!(bytes.len(), 16 << 20, "grown to the size asked for");
    let mut want = vec![0u8; 2 << 20];
    want[1 << 20..(1 << 20) + 65536].fill(0x5c);
    assert!(holds(&bytes, &want), "the qcow2 image's volume differs");
    assert_eq!(
        server.stored_files(),
        blobs,
        "the image blobs are untouched"
    );

    // The volumes do not pin the images' blobs: they go with their images.
    for image in [&raw_image, &qcow2_image] {
        assert_eq!(api.delete(image).await, 204);
    }
    assert!(server.stored_files().is_empty());
}

#[tokio::test]
async fn an_image_whose_key_was_destroyed_is_refused_with_img_0101() {
    let (mut server, signer, api, data, key) = setup().await;
    if server.database.is_some() {
        // The deletion date is moved below with the sqlite3 tool.
        return;
    }
    let id = image_of(&sealed_image(&signer, &key).await);
    assert!(api.download(&id).await == data);
    let (status, _) = kms(
        &signer,
        "schedule-key-deletion",
        json!({"key_id": key, "pending_days": "7"}),
    )
    .await;
    assert_eq!(status, 200);
    // A week later: the start-up sweep destroys the key.
    server.kill();
    run(Command::new("sqlite3")
        .arg(server.dir.join("catalog.sqlite"))
        .arg(format!(
            "UPDATE kms_keys SET deletion_at = '2000-01-01T00:00:00.000000Z' WHERE id = '{key}'"
        )));
    server.spawn().await;
    let (status, gone) = kms(&signer, "describe-key", json!({"key_id": key})).await;
    assert_eq!(status, 404, "{gone}");

    let (status, refused) = copy(&signer, &id, json!({"name": "orphan"})).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("IMG.0101")),
        "{refused}"
    );
    assert_eq!(get_file(&api, &id, None).await.status(), 403);
    // The image itself can still be deleted, and its blob goes with it.
    assert_eq!(api.delete(&id).await, 204);
    assert!(server.stored_files().is_empty());
}

#[tokio::test]
async fn a_tampered_blob_never_yields_altered_bytes() {
    let (server, signer, api, data, key) = setup().await;
    let id = image_of(&sealed_image(&signer, &key).await);
    let blob = server.stored_files().remove(0);
    let mut sealed = std::fs::read(&blob).unwrap();
    // One bit in the third segment's ciphertext.
    let at = 64 + 2 * (SEGMENT + 16) + 100;
    sealed[at] ^= 1;
    std::fs::write(&blob, &sealed).unwrap();

    // The whole image: the stream breaks before the third segment's bytes (the response
    // may be cut off before its headers are even sent).
    let got = match try_get_file(&api, &id, None).await {
        Ok(r) => {
            assert_eq!(r.status(), 200);
            r.bytes().await.map(|b| b.to_vec()).unwrap_or_default()
        }
        Err(_) => Vec::new(),
    };
    assert!(got.len() <= 2 * SEGMENT, "{} bytes served", got.len());
    assert!(got == data[..got.len()], "only authenticated bytes");
    // A range inside the altered segment: nothing of it.
    let (_, got) = ranged(&api, &id, 2 * SEGMENT + 50, 2 * SEGMENT + 150).await;
    assert!(
        got.is_empty(),
        "{} bytes of an altered segment served",
        got.len()
    );
    // A range elsewhere still reads.
    let (status, got) = ranged(&api, &id, 0, SEGMENT - 1).await;
    assert_eq!(status, 206);
    assert!(got == data[..SEGMENT]);
}

/// SIGKILL during an encrypted import (mid-stream) and before a copy's job ran: after the
/// restart both finish, the data reads back, and the store holds exactly one blob.
#[tokio::test]
async fn encrypted_imports_and_copies_survive_a_crash() {
    use md5::Digest as _;
    const HOLD: &str = "IMS_JOBS__PER_KIND";
    let (mut server, signer, api, _, key) =
        setup_with(&[("IMS_JOBS__LEASE_SECS", "3"), (HOLD, "{ image_copy = 0 }")]).await;
    // 384 MiB, written and hashed in 1 MiB blocks, each block different.
    let path = server.dir.join("buckets/enc/big.raw");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut hasher = md5::Md5::new();
    let pattern = content();
    for n in 0u64..384 {
        let mut block: Vec<u8> = pattern.iter().cycle().take(1 << 20).copied().collect();
        block[..8].copy_from_slice(&n.to_le_bytes());
        hasher.update(&block);
        std::io::Write::write_all(&mut file, &block).unwrap();
    }
    std::io::Write::flush(&mut file).unwrap();
    drop(file);
    let md5 = hex::encode(hasher.finalize());

    let (status, created) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(
                json!({"name": "big", "image_url": "enc:big.raw", "min_disk": 40,
                        "cmk_id": key}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let job_path = format!(
        "/v1/cloudimages/job/{}",
        created["job_id"].as_str().unwrap()
    );
    common::wait_until(std::time::Duration::from_secs(60), || async {
        let (_, job) = signer.send(Method::GET, &job_path, None).await;
        let progress = job["entities"]["process_percent"].as_f64().unwrap_or(0.0);
        if job["status"] == "RUNNING" && progress > 0.0 {
            Ok(())
        } else {
            Err(format!("not streaming yet: {job}"))
        }
    })
    .await;
    server.kill();
    server.spawn().await;
    let job = job_end(&signer, &created).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let id = image_of(&job);
    assert_eq!(api.show(&id).await["checksum"], md5.as_str());
    let read = hex::encode(md5::Md5::digest(api.download(&id).await));
    assert_eq!(read, md5, "the image reads back");
    assert_eq!(
        server.stored_files().len(),
        1,
        "{:?}",
        server.stored_files()
    );

    // A copy whose job has not run when ims dies; it runs after the restart.
    let (status, copied) = copy(&signer, &id, json!({"name": "c"})).await;
    assert_eq!(status, 200, "{copied}");
    server.kill();
    server.set_env(HOLD, None);
    server.spawn().await;
    let copy_id = image_of(&job_end(&signer, &copied).await);
    let read = hex::encode(md5::Md5::digest(api.download(&copy_id).await));
    assert_eq!(read, md5, "the copy reads back");
    assert_eq!(server.stored_files().len(), 1, "the copy shares the blob");
}
