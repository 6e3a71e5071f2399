//! Image data in an S3-compatible store (`[image_stores]`, issue 16) through the real
//! binary against s3s-fs: uploads (one PUT and multipart), whole and ranged downloads,
//! O(1) copies, encrypted images, volumes made as copies, deletion, and an upload cut by
//! SIGKILL whose multipart upload the restart aborts.

mod common;

use common::s3s;

use common::encryption::{MARKER, copy, image_of, job_end, new_key, sealed_image};
use common::signed::Signer;
use common::{Api, Server};
use reqwest::Method;
use s3s::S3s;
use serde_json::json;

/// A server whose image store is bucket `images` of `s3`, with 5 MiB parts.
async fn server_on(s3: &S3s, work: &std::path::Path) -> Server {
    s3.bucket("images");
    s3.bucket("enc");
    let config = work.join("ims.toml");
    std::fs::write(
        &config,
        format!(
            "[image_stores]\ndefault = \"s3\"\n\
             [image_stores.stores.s3]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\n\
             bucket = \"images\"\nprefix = \"data/\"\npart_size_mib = 5\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\
             [buckets.stores.east]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nbuckets = [\"enc\"]\n",
            s3.endpoint,
            s3s::REGION,
            s3s::ACCESS_KEY,
            s3s::SECRET_KEY,
            s3.endpoint,
            s3s::REGION,
            s3s::ACCESS_KEY,
            s3s::SECRET_KEY,
        ),
    )
    .unwrap();
    Server::start(&[("IMS_CONFIG", config.to_str().unwrap())]).await
}

/// Image objects in the store (the upload journal and s3s-fs's bookkeeping apart).
fn objects(s3: &S3s) -> Vec<String> {
    s3.files()
        .into_iter()
        .filter(|f| f.starts_with("images/data/") && !f.contains(".upload"))
        .collect()
}

fn uploads_left(s3: &S3s) -> Vec<String> {
    s3.files()
        .into_iter()
        .filter(|f| f.contains(".upload"))
        .collect()
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

#[tokio::test]
async fn images_live_in_the_object_store() {
    let s3 = S3s::start();
    let work = tempfile::tempdir().unwrap();
    let server = server_on(&s3, work.path()).await;
    let api = Api::new(&server, server.admin_token().await);

    // Multipart (three 5 MiB parts and a tail) and one PUT.
    let big = bytes(15 * 1024 * 1024 + 4321);
    let id = api.new_image("big", "raw").await;
    assert_eq!(api.upload(&id, big.clone()).await.status(), 204);
    let small = api.new_image("small", "raw").await;
    assert_eq!(api.upload(&small, bytes(1000)).await.status(), 204);
    assert_eq!(objects(&s3).len(), 2, "{:?}", s3.files());
    assert!(
        server.stored_files().is_empty(),
        "image data went to the local disk"
    );
    assert!(uploads_left(&s3).is_empty(), "{:?}", uploads_left(&s3));
    assert!(api.download(&id).await == big);
    let r = api
        .req(Method::GET, &format!("/v2/images/{id}/file"))
        .header("Range", "bytes=5242870-10485770")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap() == big[5_242_870..=10_485_770]);

    // An O(1) copy shares the object; deletes free it with the last image.
    let signer = Signer::new(&server, "admin", "admin");
    let (status, created) = copy(&signer, &id, json!({"name": "copy"})).await;
    assert_eq!(status, 200, "{created}");
    let copied = image_of(&job_end(&signer, &created).await);
    assert_eq!(objects(&s3).len(), 2);
    assert!(api.download(&copied).await == big);
    for gone in [&id, &small] {
        assert_eq!(api.delete(gone).await, 204);
    }
    assert_eq!(objects(&s3).len(), 1, "the copy keeps the shared object");

    // A volume from an image in the object store is a copy of its data.
    let volume = server.admin(&["volume", "create", "--name", "v", "--from-image", &copied]);
    let shown: serde_json::Value =
        serde_json::from_str(&server.admin(&["volume", "show", volume.trim()])).unwrap();
    assert_eq!(shown["status"], "ready", "{shown}");
    assert!(shown["backing"].is_null(), "{shown}");

    // Encrypted images: ciphertext in the store.
    std::fs::write(s3.root.join("enc/disk.raw"), common::encryption::content()).unwrap();
    let key = new_key(&signer, "s3").await;
    let job = sealed_image(&signer, &key).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let sealed = image_of(&job);
    assert!(api.download(&sealed).await == common::encryption::content());
    let stored: Vec<Vec<u8>> = objects(&s3)
        .iter()
        .map(|f| std::fs::read(s3.root.join(f)).unwrap())
        .collect();
    assert!(
        !stored
            .iter()
            .any(|b| b.windows(MARKER.len()).any(|w| w == MARKER)),
        "plaintext in the store"
    );
}

#[tokio::test]
async fn an_upload_cut_by_a_crash_leaves_no_multipart_upload() {
    let s3 = S3s::start();
    let work = tempfile::tempdir().unwrap();
    let mut server = server_on(&s3, work.path()).await;
    let api = Api::new(&server, server.admin_token().await);
    let id = api.new_image("cut", "raw").await;
    // A body that sends 12 MiB, then stalls: two parts are out when ims is killed.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    let upload = tokio::spawn(
        api.req(Method::PUT, &format!("/v2/images/{id}/file"))
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send(),
    );
    for chunk in bytes(12 << 20).chunks(1 << 20) {
        tx.send(Ok(chunk.to_vec())).await.unwrap();
    }
    common::wait_until(std::time::Duration::from_secs(20), || async {
        if uploads_left(&s3).iter().any(|f| f.contains(".uploads/")) {
            Ok(())
        } else {
            Err(format!("no multipart upload yet: {:?}", s3.files()))
        }
    })
    .await;
    server.kill();
    drop(tx);
    let _ = upload.await;
    assert!(!uploads_left(&s3).is_empty());
    server.spawn().await;
    assert!(uploads_left(&s3).is_empty(), "{:?}", uploads_left(&s3));
    assert!(objects(&s3).is_empty(), "{:?}", objects(&s3));
    let shown = api.show(&id).await;
    assert_eq!(shown["status"], "queued", "{shown}");
}

/// `/healthcheck` tells a load balancer whether this node can serve: with the object
/// store stalled (SIGSTOP) it answers 503 naming the store, within its own time limit,
/// and 200 again once the store answers.
#[tokio::test]
async fn the_health_check_reports_a_stalled_store() {
    let s3 = S3s::start();
    let work = tempfile::tempdir().unwrap();
    let server = server_on(&s3, work.path()).await;
    let health = || async {
        let r = reqwest::get(format!("{}/healthcheck", server.url))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(health().await, (200, "OK".to_string()));
    s3.signal("-STOP");
    let asked = std::time::Instant::now();
    let (status, text) = health().await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("image store unavailable"), "{text}");
    assert!(!text.contains("catalog"), "{text}");
    assert!(asked.elapsed() < std::time::Duration::from_secs(6));
    s3.signal("-CONT");
    assert_eq!(health().await, (200, "OK".to_string()));
}
