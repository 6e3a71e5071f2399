//! The byte quota `images.quota_image_size_total` through the real binary: data already
//! stored counts; an upload or stage that would pass it gets Glance's 413 whether its
//! size is declared or not, the image is queued again and nothing of it is stored; other
//! projects are not limited by it; freeing room lets the same upload succeed.
//! (transfers.rs covers parallel uploads sharing the headroom.)

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

const QUOTA: usize = 1_000_000;

async fn raw_image(api: &Api, name: &str) -> String {
    let img = api
        .create(json!({"name": name, "disk_format": "raw", "container_format": "bare"}))
        .await;
    img["id"].as_str().unwrap().to_string()
}

/// Sends `data` to `/v2/images/{id}/{target}` with a length, or chunked without one.
async fn send(api: &Api, id: &str, target: &str, data: &[u8], declared: bool) -> reqwest::Response {
    let req = api
        .req(Method::PUT, &format!("/v2/images/{id}/{target}"))
        .header("content-type", "application/octet-stream")
        .header("accept", "application/json");
    let req = if declared {
        req.body(data.to_vec())
    } else {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            data.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
        req.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
    };
    req.send().await.unwrap()
}

/// Asserts Glance's 413 for the quota: its three fields and nothing else.
async fn assert_quota_refusal(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 413, "{what}");
    let body: Value = r.json().await.unwrap();
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["code", "message", "title"], "{what}: {body}");
    assert!(
        body["code"].as_str().unwrap().starts_with("413 "),
        "{what}: {body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("quota"),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn uploads_past_the_byte_quota_get_413_and_store_nothing() {
    let quota = QUOTA.to_string();
    let server = Server::start(&[("IMS_IMAGES__QUOTA_IMAGE_SIZE_TOTAL", quota.as_str())]).await;
    server.add_member("p2", "bob", "pw-bob");
    let bob = Api::new(&server, server.token("bob", "pw-bob", "p2").await);
    let admin = Api::new(&server, server.admin_token().await);
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();

    let kept = raw_image(&bob, "kept").await;
    assert_eq!(send(&bob, &kept, "file", &data, true).await.status(), 204);
    let stored = server.stored_files();
    assert_eq!(stored.len(), 1, "{stored:?}");

    // 600,000 + 600,000 > 1,000,000: refused, declared or not, uploaded or staged.
    let refused = raw_image(&bob, "refused").await;
    for (target, declared) in [
        ("file", true),
        ("file", false),
        ("stage", true),
        ("stage", false),
    ] {
        let what = format!("{target}, size declared: {declared}");
        assert_quota_refusal(send(&bob, &refused, target, &data, declared).await, &what).await;
        let shown = bob.show(&refused).await;
        assert_eq!(shown["status"], "queued", "{what}");
        assert!(shown["size"].is_null(), "{what}: {shown}");
        assert_eq!(
            server.stored_files(),
            stored,
            "{what}: nothing more is stored"
        );
    }
    // Exactly at the quota is allowed; the quota is the project's, not the node's.
    let rest = vec![9u8; QUOTA - data.len()];
    let exact = raw_image(&bob, "exact").await;
    assert_eq!(send(&bob, &exact, "file", &rest, true).await.status(), 204);
    let one_more = raw_image(&bob, "one-more").await;
    assert_quota_refusal(
        send(&bob, &one_more, "file", &[1], true).await,
        "one byte over",
    )
    .await;
    let other = raw_image(&admin, "other-project").await;
    assert_eq!(
        send(&admin, &other, "file", &data, true).await.status(),
        204
    );

    // Freeing room lets the refused upload through.
    for id in [&kept, &exact] {
        let r = bob
            .req(Method::DELETE, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    assert_eq!(
        send(&bob, &refused, "file", &data, false).await.status(),
        204
    );
    assert_eq!(bob.show(&refused).await["size"], data.len());
}
