//! Interoperable import through the real binary, including a crash mid-import.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Api, Server, SlowSource};
use common::{ended_import, image_tasks, wait_status};
use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn glance_direct_stage_then_import() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let img = api
        .create(json!({"name": "gd", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap();
    let r = api
        .req(Method::POST, &format!("/v2/images/{id}/import"))
        .json(&json!({"method": {"name": "glance-direct"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "import before staging");
    let data = vec![9u8; 100_000];
    let r = api
        .req(Method::PUT, &format!("/v2/images/{id}/stage"))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(api.show(id).await["status"], "uploading");
    let r = api
        .req(Method::POST, &format!("/v2/images/{id}/import"))
        .json(&json!({"method": {"name": "glance-direct"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let request_id = r.headers()["x-openstack-request-id"].clone();
    let done = wait_status(&api, id, "active").await;
    assert_eq!(done["checksum"], hex::encode(md5::Md5::digest(&data)));
    let tasks = image_tasks(&api, id).await;
    // As Tempest checks it: the task records the import's request id and method name.
    let task = &tasks["tasks"][0];
    assert_eq!(task["status"], "success");
    assert_eq!(task["request_id"], request_id.to_str().unwrap());
    assert_eq!(
        task["input"]["import_req"]["method"]["name"],
        "glance-direct"
    );
    assert!(task["user_id"].is_string());
    assert_eq!(server.stored_files().len(), 1, "the staged copy is gone");
}

#[tokio::test]
async fn web_download_resumes_after_a_crash() {
    let size = 40 << 20;
    // 1 MiB every 50 ms: about 2 s per fetch, long enough to crash the first one.
    let source = SlowSource::start(size, Duration::from_millis(50)).await;
    let env = [
        ("IMS_WEB_DOWNLOAD__ALLOW_PRIVATE", "true"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
        ("IMS_JOBS__LEASE_SECS", "3"),
    ];
    let mut server = Server::start(&env).await;
    let api = Api::new(&server, server.admin_token().await);
    let img = api
        .create(json!({"name": "wd", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    let r = api.web_download(&id, &source.url("/disk.raw")).await;
    assert_eq!(r.status(), 202);
    assert_eq!(api.show(&id).await["status"], "importing");
    // Crash only once the job runs and its data has reached the disk.
    let written = common::wait_for(
        "the download to write data",
        Duration::from_secs(30),
        async || {
            let written = server.bytes_being_written();
            (written > 0 && api.newest_task(&id).await.0 == "processing").then_some(written)
        },
    )
    .await;
    assert!(written < size as u64, "the crash lands mid-download");
    assert_eq!(source.requests(), 1, "one fetch before the crash");
    server.kill();

    server.spawn().await;
    let api = Api::new(&server, server.admin_token().await);
    let done = wait_status(&api, &id, "active").await;
    assert_eq!(done["size"], size);
    assert_eq!(
        done["checksum"],
        hex::encode(md5::Md5::digest(vec![0x5au8; size]))
    );
    let tasks = image_tasks(&api, &id).await;
    assert_eq!(tasks["tasks"][0]["status"], "success");
    let files = server.stored_files();
    assert_eq!(files.len(), 1, "no partial copies remain: {files:?}");
    assert_eq!(
        source.requests(),
        2,
        "the job fetched again after the restart"
    );
}

#[tokio::test]
async fn web_download_refuses_loopback_by_default() {
    let server = Server::start(&[("IMS_WEB_DOWNLOAD__PORTS", "[]")]).await;
    let api = Api::new(&server, server.admin_token().await);
    let img = api
        .create(json!({"name": "ssrf", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap();
    let body = json!({"method": {"name": "web-download", "uri": "http://127.0.0.1:1/x"}});
    let r = api
        .req(Method::POST, &format!("/v2/images/{id}/import"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        202,
        "literal addresses are checked when the job runs"
    );
    let img = wait_status(&api, id, "queued").await;
    assert!(img["checksum"].is_null());
    let task = ended_import(&api, id).await;
    assert_eq!(task["status"], "failure");
    assert!(
        task["message"]
            .as_str()
            .unwrap()
            .contains("resolves to an address that is not allowed")
    );
}

/// One store: `/v2/info/stores` is Glance's 404, no response names store ids, and an
/// import's `stores`/`all_stores` are ignored as Glance ignores them without
/// `enabled_backends`; only `all_stores_must_succeed: false` is refused.
#[tokio::test]
async fn a_single_store_site_behaves_like_single_store_glance() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let r = api
        .req(Method::GET, "/v2/info/stores")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let err: Value = r.json().await.unwrap();
    assert_eq!(
        err["message"],
        "Multi backend is not supported at this site."
    );

    let no_store_ids = |r: &reqwest::Response, what: &str| {
        assert!(
            !r.headers().contains_key("openstack-image-store-ids"),
            "{what} names store ids"
        );
    };
    let r = api
        .req(Method::POST, "/v2/images")
        .json(&json!({"name": "one-store", "disk_format": "raw", "container_format": "bare"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    no_store_ids(&r, "create");
    let img: Value = r.json().await.unwrap();
    assert!(img.get("stores").is_none());
    let id = img["id"].as_str().unwrap();
    for path in [
        format!("/v2/images/{id}"),
        "/v2/images".to_string(),
        "/v2/info/import".to_string(),
    ] {
        let r = api.req(Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        no_store_ids(&r, &path);
    }
    let data = vec![7u8; 5000];
    let r = api
        .req(Method::PUT, &format!("/v2/images/{id}/stage"))
        .header("content-type", "application/octet-stream")
        .header("x-image-meta-store", "elsewhere")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    no_store_ids(&r, "stage");
    let import = |body: Value| {
        api.req(Method::POST, &format!("/v2/images/{id}/import"))
            .header("accept", "application/json")
            .json(&body)
            .send()
    };
    let r = import(json!({"method": {"name": "glance-direct"}, "all_stores_must_succeed": false}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(
        err["message"],
        "All_stores_must_succeed can only be set with enabled_backends None"
    );
    let r = import(json!({"method": {"name": "glance-direct"}, "all_stores": "yes"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "flags must still be booleans");
    let r = import(json!({"method": {"name": "glance-direct"}, "stores": ["fast", "slow"], "all_stores": true}))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    no_store_ids(&r, "import");
    let done = wait_status(&api, id, "active").await;
    assert_eq!(done["checksum"], hex::encode(md5::Md5::digest(&data)));
    assert!(done.get("stores").is_none());
}

/// `allow_addresses` lets web-download reach exactly the addresses it names.
#[tokio::test]
async fn web_download_reaches_an_allowed_address_only() {
    let port = SlowSource::start(1 << 20, Duration::from_millis(1))
        .await
        .port;
    let server = Server::start(&[
        ("IMS_WEB_DOWNLOAD__ALLOW_ADDRESSES", "[\"127.0.0.1\"]"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
    ])
    .await;
    let api = Api::new(&server, server.admin_token().await);
    let mut ids = Vec::new();
    for host in ["127.0.0.1", "127.0.0.2"] {
        let img = api
            .create(json!({"name": host, "disk_format": "raw", "container_format": "bare"}))
            .await;
        let id = img["id"].as_str().unwrap().to_string();
        let body =
            json!({"method": {"name": "web-download", "uri": format!("http://{host}:{port}/x")}});
        let r = api
            .req(Method::POST, &format!("/v2/images/{id}/import"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        ids.push(id);
    }
    let done = wait_status(&api, &ids[0], "active").await;
    assert_eq!(done["size"], 1 << 20);
    wait_status(&api, &ids[1], "queued").await;
    let tasks: Value = api
        .req(Method::GET, &format!("/v2/images/{}/tasks", ids[1]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tasks["tasks"][0]["status"], "failure");
}
