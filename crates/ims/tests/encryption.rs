//! Encrypted images (issue 15): a data image imported with a KMS key is stored sealed
//! (no plaintext on disk), reads back whole and by ranges at every segment boundary, is
//! copied in O(1) (no new blob) with or without a new key, and its key's state governs
//! every read. A tampered blob never yields altered bytes. Deleting images frees the
//! shared blob only with its last image.

mod common;

use common::Server;
use common::encryption::*;
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
    let (status, refused) = copy(&signer, &id, json!({"name": "y", "cmk_id": other})).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("IMG.0097"))
    );
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
