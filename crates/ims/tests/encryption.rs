//! Encrypted images (issue 15): a data image imported with a KMS key is stored sealed
//! (no plaintext on disk), reads back whole and by ranges at every segment boundary, is
//! copied in O(1) (no new blob) with or without a new key, and its key's state governs
//! every read. A tampered blob never yields altered bytes. Deleting images frees the
//! shared blob only with its last image.

mod common;

use std::time::Duration;

use common::signed::Signer;
use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

const SEGMENT: usize = 1 << 16;
/// Written into the file at every 4 KiB; must not appear in the store.
const MARKER: &[u8] = b"PLAINTEXT-MARKER-15";

fn content() -> Vec<u8> {
    let len = 5 * SEGMENT + 1234;
    let mut data: Vec<u8> = (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for at in (0..len - MARKER.len()).step_by(4096) {
        data[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    data
}

async fn kms(signer: &Signer, op: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1.0/{}/kms/{op}", signer.project);
    signer.send(Method::POST, &path, Some(body)).await
}

async fn new_key(signer: &Signer, alias: &str) -> String {
    let (status, made) = kms(signer, "create-key", json!({"key_alias": alias})).await;
    assert_eq!(status, 200, "{made}");
    made["key_info"]["key_id"].as_str().unwrap().to_string()
}

/// Waits for an IMS job to end; returns it.
async fn job_end(signer: &Signer, created: &Value) -> Value {
    let path = format!(
        "/v1/cloudimages/job/{}",
        created["job_id"].as_str().expect("a job id")
    );
    common::wait_until(Duration::from_secs(60), || async {
        let (_, job) = signer.send(Method::GET, &path, None).await;
        match job["status"].as_str() {
            Some("SUCCESS" | "FAIL") => Ok(job),
            _ => Err(format!("still running: {job}")),
        }
    })
    .await
}

fn image_of(job: &Value) -> String {
    job["entities"]["image_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no image id: {job}"))
        .to_string()
}

/// A server, the admin's signer and API, the content in bucket `enc`, and a new key.
async fn setup() -> (Server, Signer, Api, Vec<u8>, String) {
    let server = Server::start(&[]).await;
    let signer = Signer::new(&server, "admin", "admin");
    let api = Api::new(&server, server.admin_token().await);
    let data = content();
    let bucket = server.dir.join("buckets/enc");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("disk.raw"), &data).unwrap();
    let key = new_key(&signer, "images").await;
    (server, signer, api, data, key)
}

/// Seed 000's body with `cmk_id`; the ended job.
async fn sealed_image(signer: &Signer, cmk_id: &str) -> Value {
    let (status, created) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(
                json!({"name": "sealed", "image_url": "enc:disk.raw", "min_disk": 40,
                        "cmk_id": cmk_id}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    job_end(signer, &created).await
}

/// `GET …/file` of image `id`, optionally with a `Range` header.
async fn get_file(api: &Api, id: &str, range: Option<(usize, usize)>) -> reqwest::Response {
    try_get_file(api, id, range).await.unwrap()
}

/// As [`get_file`]; a response cut off before its headers (a body that fails at once)
/// is an error.
async fn try_get_file(
    api: &Api,
    id: &str,
    range: Option<(usize, usize)>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = api.req(Method::GET, &format!("/v2/images/{id}/file"));
    if let Some((first, last)) = range {
        req = req.header("Range", format!("bytes={first}-{last}"));
    }
    req.send().await
}

async fn copy(signer: &Signer, source: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1/cloudimages/{source}/copy");
    signer.send(Method::POST, &path, Some(body)).await
}

/// Status and body of a ranged read; status 0 when the response was cut off before its
/// headers, and only the bytes that arrived when its body was cut off.
async fn ranged(api: &Api, id: &str, first: usize, last: usize) -> (u16, Vec<u8>) {
    match try_get_file(api, id, Some((first, last))).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (
                status,
                r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            )
        }
        Err(_) => (0, Vec::new()),
    }
}

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

    // The whole image: the stream breaks before the third segment's bytes.
    let r = get_file(&api, &id, None).await;
    assert_eq!(r.status(), 200);
    let got = r.bytes().await;
    let got = got.map(|b| b.to_vec()).unwrap_or_default();
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
