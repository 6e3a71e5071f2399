//! Upload, download and failure handling through the real binary.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Api, Server};
use md5::Digest as _;
use reqwest::Method;
use serde_json::json;

fn data(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[tokio::test]
async fn upload_download_hashes_and_ranges() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let img = api
        .create(json!({"name": "a", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap();
    let bytes = data(3_000_001);
    assert_eq!(api.upload(id, bytes.clone()).await.status(), 204);
    let shown = api.show(id).await;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["size"], 3_000_001);
    assert_eq!(shown["checksum"], hex::encode(md5::Md5::digest(&bytes)));
    assert_eq!(shown["os_hash_algo"], "sha512");
    assert_eq!(
        shown["os_hash_value"],
        hex::encode(sha2::Sha512::digest(&bytes))
    );
    assert_eq!(shown["__image_size"], "3000001");

    let r = api
        .req(Method::GET, &format!("/v2/images/{id}/file"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-md5"],
        shown["checksum"].as_str().unwrap()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let r = api
        .req(Method::GET, &format!("/v2/images/{id}/file"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/3000001");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[10..20]);
    let r = api
        .req(Method::GET, &format!("/v2/images/{id}/file"))
        .header("range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[bytes.len() - 5..]);
    let r = api
        .req(Method::GET, &format!("/v2/images/{id}/file"))
        .header("range", "bytes=0-1,4-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = api
        .req(Method::GET, &format!("/v2/images/{id}/file"))
        .header("range", "bytes=9999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);

    assert_eq!(
        api.upload(id, vec![1, 2, 3]).await.status(),
        409,
        "active images take no new data"
    );
}

#[tokio::test]
async fn failed_uploads_leave_image_queued_and_retry_works() {
    let server = Server::start(&[("IMS_IMAGES__SIZE_CAP", "1000")]).await;
    let api = Api::new(&server, server.admin_token().await);
    let img = api
        .create(json!({"name": "b", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap();

    let r = api.upload(id, data(1001)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(api.show(id).await["status"], "queued");

    let r = api
        .req(Method::PUT, &format!("/v2/images/{id}/file"))
        .header("content-type", "application/octet-stream")
        .header("x-openstack-image-size", "10")
        .body(data(20))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let shown = api.show(id).await;
    assert_eq!(shown["status"], "queued");
    assert!(shown["checksum"].is_null());
    assert!(
        server.stored_files().is_empty(),
        "no data left behind: {:?}",
        server.stored_files()
    );

    assert_eq!(
        api.upload(id, data(500)).await.status(),
        204,
        "a retry succeeds"
    );
    assert_eq!(api.show(id).await["size"], 500);
}

#[tokio::test]
async fn sigkill_during_upload_loses_nothing_and_strands_nothing() {
    let mut server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let done = api
        .create(json!({"name": "kept", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let done_id = done["id"].as_str().unwrap().to_string();
    assert_eq!(api.upload(&done_id, data(4096)).await.status(), 204);

    let img = api
        .create(json!({"name": "big", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    // The body comes from a channel the test feeds: 8 MiB go now, and the stream stays
    // open (the sender is held) until after the kill, so the kill lands mid-upload.
    let (feed, chunks) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    let chunk = bytes::Bytes::from(vec![7u8; 1 << 20]);
    for _ in 0..8 {
        feed.send(Ok(chunk.clone())).await.unwrap();
    }
    let body = futures::stream::unfold(
        chunks,
        |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
    );
    let upload = api
        .req(Method::PUT, &format!("/v2/images/{id}/file"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let task = tokio::spawn(upload);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while api.show(&id).await["status"] != "saving" {
        assert!(std::time::Instant::now() < deadline, "upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    common::wait_for(
        "uploaded bytes on disk",
        Duration::from_secs(30),
        async || (server.bytes_being_written() > 0).then_some(()),
    )
    .await;
    server.kill();
    drop(feed);
    let _ = task.await;

    server.spawn().await;
    let api = Api::new(&server, server.admin_token().await);
    let shown = api.show(&id).await;
    assert_eq!(
        shown["status"], "queued",
        "no image stays saving after a restart"
    );
    let kept = api.show(&done_id).await;
    assert_eq!(kept["status"], "active", "committed data survives");
    let files = server.stored_files();
    assert_eq!(files.len(), 1, "only the committed blob remains: {files:?}");
    assert!(
        files[0].contains(&done_id),
        "the blob is the kept image's: {files:?}"
    );

    assert_eq!(
        api.upload(&id, data(1 << 20)).await.status(),
        204,
        "the retried upload succeeds"
    );
    assert_eq!(api.show(&id).await["status"], "active");
}

/// Start-up collects blobs no image references only once they are old: a young one may be
/// another node's, committed a moment before its catalog save.
#[tokio::test]
async fn only_old_orphaned_blobs_are_collected() {
    let mut server = Server::start(&[]).await;
    if !server.local_images() {
        // Orphans are planted as files of the embedded store.
        return;
    }
    let api = Api::new(&server, server.admin_token().await);
    let id = api.new_image("kept", "raw").await;
    assert_eq!(api.upload(&id, data(1000)).await.status(), 204);
    server.kill();
    let images = server.dir.join("images");
    let (old, young) = (
        images.join("orphan-old.data.1"),
        images.join("orphan-young.data.1"),
    );
    std::fs::write(&old, b"left by a crash long ago").unwrap();
    std::fs::write(&young, b"another node's, not yet in the catalog").unwrap();
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    server.spawn().await;
    assert!(!old.exists(), "an old orphan was kept");
    assert!(young.exists(), "a young orphan was collected");
    assert!(api.download(&id).await == data(1000));
}
