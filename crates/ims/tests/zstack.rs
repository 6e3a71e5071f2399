//! The ZStack dialect through the real binary: sessions, images, queries, api-jobs and
//! the legacy RPC front end, with cross-dialect views and tenant isolation.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::zstack::{BS, Reply, Zs, login_reply, reply, rpc_result, sha512};
use common::{Api, Server, SlowSource};
use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};

/// This file's own calls.
impl Zs {
    async fn action(&self, uuid: &str, body: Value) -> Reply {
        self.send(Method::PUT, &format!("/images/{uuid}/actions"), body)
            .await
    }

    async fn add_image(&self, params: Value) -> Reply {
        self.send(
            Method::POST,
            "/images",
            json!({"params": params, "systemTags": [], "userTags": []}),
        )
        .await
    }

    /// The one inventory `GET /images/{uuid}` finds (panics when none).
    async fn image(&self, uuid: &str) -> Value {
        let r = self.get(&format!("/images/{uuid}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let list = r.json["inventories"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{}", r.text);
        list[0].clone()
    }
}

fn web_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("IMS_WEB_DOWNLOAD__ALLOW_PRIVATE", "true"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
    ]
}

fn raw_params(name: &str, url: &str) -> Value {
    json!({"name": name, "url": url, "format": "raw", "backupStorageUuids": [BS]})
}

#[tokio::test]
async fn sessions_log_in_by_digest_slide_and_end() {
    let server = Server::start(&[("IMS_ZSTACK__SESSION_TIMEOUT_SECS", "2")]).await;
    let wrong = login_reply(&server.url, "admin", "not-the-password").await;
    assert_eq!(wrong.status, 503);
    assert_eq!(wrong.code(), "ID.1000");
    let unknown = login_reply(&server.url, "nobody", "x").await;
    assert_eq!(unknown.code(), "ID.1000");

    let ok = login_reply(&server.url, "admin", &server.admin_password()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let inv = &ok.json["inventory"];
    let session = inv["uuid"].as_str().unwrap().to_string();
    assert_eq!(session.len(), 32);
    assert_eq!(inv["accountUuid"].as_str().unwrap().len(), 32);
    let date = inv["expiredDate"].as_str().unwrap();
    assert!(
        date.ends_with(" AM") || date.ends_with(" PM"),
        "ZStack date format: {date}"
    );
    let zs = Zs::admin(&server).await;
    let valid = reqwest::get(format!(
        "{}/zstack/v1/accounts/sessions/{}/valid",
        server.url, zs.session
    ))
    .await
    .unwrap();
    assert_eq!(reply(valid).await.json, json!({"valid": true}));

    // Calls slide the expiry: four calls over about three seconds keep a 2 s session.
    for _ in 0..4 {
        assert_eq!(zs.get("/images").await.status, 200);
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    // Unused, it lapses.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = zs.get("/images").await;
    assert_eq!(expired.status, 503);
    assert_eq!(expired.code(), "ID.1001");

    // Missing and foreign Authorization are the REST layer's plain 400s.
    let r = reqwest::get(format!("{}/zstack/v1/images", server.url))
        .await
        .unwrap();
    let r = reply(r).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text.contains("missing header 'Authorization'"),
        "{}",
        r.text
    );
    let bogus = Zs {
        session: "0".repeat(32),
        ..Zs::admin(&server).await
    };
    assert_eq!(bogus.get("/images").await.code(), "ID.1001");

    // Logout ends the session.
    let zs = Zs::admin(&server).await;
    let out = reqwest::Client::new()
        .delete(format!(
            "{}/zstack/v1/accounts/sessions/{}",
            server.url, zs.session
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(zs.get("/images").await.code(), "ID.1001");
    let valid = reqwest::get(format!(
        "{}/zstack/v1/accounts/sessions/{}/valid",
        server.url, zs.session
    ))
    .await
    .unwrap();
    assert_eq!(reply(valid).await.json, json!({"valid": false}));
}

#[tokio::test]
async fn users_get_a_verifier_whenever_their_password_is_set() {
    let server = Server::start(&[("IMS_ZSTACK__MAX_SESSIONS_PER_USER", "2")]).await;
    server.add_member("p1", "alice", "secret-1");
    Zs::login(&server, "alice", "secret-1").await;
    let zs = Zs::login(&server, "alice", "secret-1").await;
    server.admin(&["user", "password", "alice", "--password", "secret-2"]);
    assert_eq!(
        login_reply(&server.url, "alice", "secret-1").await.code(),
        "ID.1000"
    );
    assert_eq!(
        zs.get("/images").await.code(),
        "ID.1001",
        "a password change ends sessions"
    );
    let first = Zs::login(&server, "alice", "secret-2").await;
    Zs::login(&server, "alice", "secret-2").await;
    // Two live sessions is the cap here: a third login waits for a logout.
    let r = login_reply(&server.url, "alice", "secret-2").await;
    assert_eq!((r.status, r.code()), (503, "ID.1006"), "{}", r.text);
    reqwest::Client::new()
        .delete(format!(
            "{}/zstack/v1/accounts/sessions/{}",
            server.url, first.session
        ))
        .send()
        .await
        .unwrap();
    Zs::login(&server, "alice", "secret-2").await;
}

#[tokio::test]
async fn add_image_waits_for_its_download_and_maps_attributes() {
    let size = 3 << 20;
    let source = SlowSource::start(size, Duration::ZERO).await;
    let server = Server::start(&web_env()).await;
    let zs = Zs::admin(&server).await;
    let bs = zs.get("/backup-storage").await;
    assert_eq!(bs.json["inventories"][0]["uuid"], BS);
    // An object store's capacity is not known: 0.
    assert_eq!(
        bs.json["inventories"][0]["totalCapacity"].as_u64().unwrap() > 0,
        server.local_images()
    );
    assert_eq!(
        bs.json["inventories"][0]["availableCapacity"]
            .as_u64()
            .unwrap()
            > 0,
        server.local_images()
    );
    let ps = zs.get("/primary-storage").await;
    assert_eq!(ps.status, 200);
    assert!(ps.json["inventories"][0]["totalCapacity"].as_u64().unwrap() > 0);

    let mut params = raw_params("data-tpl", &source.url("/disk.raw"));
    params["mediaType"] = json!("DataVolumeTemplate");
    params["platform"] = json!("Windows");
    params["description"] = json!("a data template");
    params["resourceUuid"] = json!("0b0c4a1e5f6a4b7c8d9e0f1a2b3c4d5e");
    let r = zs.add_image(params).await;
    assert_eq!(
        r.status, 200,
        "AddImage finished within the wait: {}",
        r.text
    );
    let inv = &r.json["inventory"];
    assert_eq!(inv["uuid"], "0b0c4a1e5f6a4b7c8d9e0f1a2b3c4d5e");
    assert_eq!(inv["status"], "Ready");
    assert_eq!(inv["state"], "Enabled");
    assert_eq!(inv["mediaType"], "DataVolumeTemplate");
    assert_eq!(inv["platform"], "Windows");
    assert_eq!(inv["format"], "raw");
    assert_eq!(inv["description"], "a data template");
    assert_eq!(inv["type"], "zstack");
    assert_eq!(inv["actualSize"], size);
    assert_eq!(inv["url"], source.url("/disk.raw"));
    assert_eq!(
        inv["md5Sum"],
        hex::encode(md5::Md5::digest(vec![0x5au8; size]))
    );
    let refs = &inv["backupStorageRefs"][0];
    assert_eq!(refs["backupStorageUuid"], BS);
    let install = server.install_file(refs["installPath"].as_str().unwrap());
    if server.local_images() {
        assert!(install.starts_with(server.dir.join("images")));
    }
    assert_eq!(
        std::fs::metadata(install).unwrap().len(),
        size as u64,
        "installPath names the real data"
    );
    assert_eq!(
        zs.image("0b0c4a1e5f6a4b7c8d9e0f1a2b3c4d5e").await["status"],
        "Ready"
    );

    // The same image through the OpenStack API, with the Huawei attributes IMS reads.
    let api = Api::new(&server, server.admin_token().await);
    let glance = api.show("0b0c4a1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e").await;
    assert_eq!(glance["status"], "active");
    assert_eq!(glance["virtual_env_type"], "DataImage");
    assert_eq!(glance["__os_type"], "Windows");
    assert_eq!(glance["checksum"], inv["md5Sum"]);
    // And through the Huawei IMS API.
    let r = api
        .req(
            Method::GET,
            "/v2/cloudimages?id=0b0c4a1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ims: Value = r.json().await.unwrap();
    assert_eq!(ims["images"][0]["virtual_env_type"], "DataImage", "{ims}");
    assert_eq!(ims["images"][0]["__os_type"], "Windows");

    // An image made through the OpenStack API shows in QueryImage.
    let other = api
        .create(json!({"name": "from-glance", "disk_format": "qcow2", "container_format": "bare"}))
        .await;
    let uuid = other["id"].as_str().unwrap().replace('-', "");
    let inv = zs.image(&uuid).await;
    assert_eq!(inv["name"], "from-glance");
    assert_eq!(inv["status"], "Creating");
    assert_eq!(inv["mediaType"], "RootVolumeTemplate");
    assert_eq!(inv["platform"], "Linux");
}

#[tokio::test]
async fn slow_work_answers_202_and_its_api_job_ends_with_the_result() {
    // 8 MiB at 1 MiB per 300 ms: longer than the 500 ms wait.
    let source = SlowSource::start(8 << 20, Duration::from_millis(300)).await;
    let mut env = web_env();
    env.push(("IMS_ZSTACK__JOB_WAIT_MS", "500"));
    let server = Server::start(&env).await;
    let zs = Zs::admin(&server).await;
    let job = "a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d";
    let r = reply(
        zs.req(Method::POST, "/images")
            .header("x-job-uuid", job)
            .json(&json!({"params": raw_params("slow", &source.url("/slow.raw"))}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let location = r.json["location"].as_str().unwrap().to_string();
    assert_eq!(location, format!("{}/zstack/v1/api-jobs/{job}", server.url));
    assert!(r.json["apiTimeout"].as_u64().unwrap() > 0);
    // While it runs, the image is Downloading.
    let running = zs.get("/images?q=name=slow").await;
    assert_eq!(running.json["inventories"][0]["status"], "Downloading");
    let done = zs.follow(&location).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json["inventory"]["status"], "Ready");
    assert_eq!(done.json["inventory"]["actualSize"], 8 << 20);
    // The finished job still answers, from the catalog.
    let again = zs.follow(&location).await;
    assert_eq!(again.json, done.json);

    // The same X-Job-UUID again is a plain 400; so is a malformed one.
    for bad in [job, "not-32-chars"] {
        let r = reply(
            zs.req(Method::POST, "/images")
                .header("x-job-uuid", bad)
                .json(&json!({"params": raw_params("dup", &source.url("/x.raw"))}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(r.json.is_null(), "plain text: {}", r.text);
    }
    // Unknown jobs are expired; other methods are refused in plain text.
    let r = zs.get(&format!("/api-jobs/{}", "f".repeat(32))).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (404, "the job has been expired")
    );
    let r = zs
        .send(Method::POST, &format!("/api-jobs/{job}"), json!({}))
        .await;
    assert_eq!(r.status, 405);

    // A download that fails ends the api-job with 503 and removes the image.
    let r = reply(
        zs.req(Method::POST, "/images")
            .json(&json!({"params": raw_params("broken", "http://127.0.0.1:1/none.raw")}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let failed = if r.status == 202 {
        zs.follow(r.json["location"].as_str().unwrap()).await
    } else {
        r
    };
    assert_eq!(failed.status, 503, "{}", failed.text);
    assert_eq!(failed.code(), "SYS.1002");
    assert_eq!(
        zs.get("/images?q=name=broken").await.json["inventories"],
        json!([])
    );
}

#[tokio::test]
async fn a_failed_download_removes_its_image_even_when_nobody_polls() {
    let mut env = web_env();
    env.push(("IMS_ZSTACK__JOB_WAIT_MS", "0"));
    let server = Server::start(&env).await;
    let zs = Zs::admin(&server).await;
    let r = zs
        .send(
            Method::POST,
            "/images",
            json!({"params": raw_params("unpolled", "http://127.0.0.1:1/none.raw")}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    // The api-job is never asked for; the image must not stay "Creating" all the same.
    common::wait_until(Duration::from_secs(30), || async {
        let listed = zs.get("/images?q=name=unpolled").await.json["inventories"].clone();
        if listed == json!([]) {
            Ok(())
        } else {
            Err(format!("still listed: {listed}"))
        }
    })
    .await;
}

#[tokio::test]
async fn image_lifecycle_update_state_delete_recover_expunge() {
    let source = SlowSource::start(1 << 20, Duration::ZERO).await;
    let server = Server::start(&web_env()).await;
    let zs = Zs::admin(&server).await;
    let api = Api::new(&server, server.admin_token().await);
    let r = zs
        .add_image(raw_params("life", &source.url("/l.raw")))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let uuid = r.json["inventory"]["uuid"].as_str().unwrap().to_string();
    let id = common_id(&uuid);

    let r = zs
        .action(&uuid, json!({"updateImage": {"name": "renamed", "description": "d", "guestOsType": "CentOS 7.9 64bit", "platform": "Linux"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["inventory"]["name"], "renamed");
    assert_eq!(r.json["inventory"]["description"], "d");
    assert_eq!(r.json["inventory"]["guestOsType"], "CentOS 7.9 64bit");
    assert_eq!(api.show(&id).await["name"], "renamed");

    let r = zs
        .action(
            &uuid,
            json!({"changeImageState": {"stateEvent": "disable"}}),
        )
        .await;
    assert_eq!(r.json["inventory"]["state"], "Disabled", "{}", r.text);
    assert_eq!(r.json["inventory"]["status"], "Ready");
    assert_eq!(api.show(&id).await["status"], "deactivated");
    let r = zs
        .action(&uuid, json!({"changeImageState": {"stateEvent": "enable"}}))
        .await;
    assert_eq!(r.json["inventory"]["state"], "Enabled");
    let r = zs
        .action(&uuid, json!({"changeImageState": {"stateEvent": "flip"}}))
        .await;
    assert_eq!(r.code(), "SYS.1007");

    // Recover and expunge need a deleted image.
    assert_eq!(
        zs.action(&uuid, json!({"recoverImage": {}})).await.code(),
        "SYS.1006"
    );
    assert_eq!(
        zs.action(&uuid, json!({"expungeImage": {}})).await.code(),
        "SYS.1006"
    );

    let r = reply(
        zs.req(Method::DELETE, &format!("/images/{uuid}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, &r.json), (200, &json!({})), "{}", r.text);
    assert_eq!(zs.image(&uuid).await["status"], "Deleted");
    assert_eq!(api.show(&id).await["status"], "pending_delete");
    let r = zs.action(&uuid, json!({"recoverImage": {}})).await;
    assert_eq!(r.json["inventory"]["status"], "Ready", "{}", r.text);
    assert_eq!(api.show(&id).await["status"], "active");

    zs.req(Method::DELETE, &format!("/images/{uuid}"))
        .send()
        .await
        .unwrap();
    let r = zs.action(&uuid, json!({"expungeImage": {}})).await;
    assert_eq!((r.status, &r.json), (200, &json!({})), "{}", r.text);
    assert_eq!(
        zs.get(&format!("/images/{uuid}")).await.json["inventories"],
        json!([])
    );
    let r = api
        .req(Method::GET, &format!("/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Deleting a missing uuid succeeds as in ZStack; a non-uuid is not found.
    let r = reply(
        zs.req(Method::DELETE, &format!("/images/{uuid}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = reply(zs.req(Method::DELETE, "/images/nope").send().await.unwrap()).await;
    assert_eq!(r.code(), "SYS.1003");
}

fn common_id(uuid: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &uuid[0..8],
        &uuid[8..12],
        &uuid[12..16],
        &uuid[16..20],
        &uuid[20..32]
    )
}

#[tokio::test]
async fn bad_input_gets_zstack_errors() {
    let source = SlowSource::start(1 << 20, Duration::ZERO).await;
    let server = Server::start(&web_env()).await;
    let zs = Zs::admin(&server).await;
    let url = source.url("/b.raw");
    let cases = [
        (
            json!({"name": "x", "url": url, "format": "raw", "backupStorageUuids": ["0".repeat(32)]}),
            "SYS.1003",
        ),
        (
            json!({"name": "x", "url": url, "format": "raw", "backupStorageUuids": [BS], "resourceUuid": "not-a-uuid"}),
            "SYS.1007",
        ),
        (
            json!({"url": url, "format": "raw", "backupStorageUuids": [BS]}),
            "SYS.1007",
        ),
        (
            json!({"name": "x", "url": "ftp://h/x", "format": "raw", "backupStorageUuids": [BS]}),
            "SYS.1007",
        ),
        (
            json!({"name": "x", "url": url, "format": "floppy", "backupStorageUuids": [BS]}),
            "SYS.1007",
        ),
        (
            json!({"name": "x", "url": url, "format": "raw", "backupStorageUuids": []}),
            "SYS.1007",
        ),
        (
            json!({"name": "x", "url": url, "format": "raw", "backupStorageUuids": [BS], "mediaType": "Floppy"}),
            "SYS.1007",
        ),
    ];
    for (params, code) in cases {
        let r = zs.add_image(params.clone()).await;
        assert_eq!((r.status, r.code()), (503, code), "{params}: {}", r.text);
    }
    // A duplicate resourceUuid.
    let mut params = raw_params("first", &url);
    params["resourceUuid"] = json!("1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d");
    assert_eq!(zs.add_image(params.clone()).await.status, 200);
    let r = zs.add_image(params).await;
    assert_eq!((r.status, r.code()), (503, "SYS.1007"), "{}", r.text);

    // Malformed bodies and mistyped parameters are the REST layer's plain 400s.
    let r = reply(
        zs.req(Method::POST, "/images")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json.is_null());
    let r = zs
        .send(Method::POST, "/images", json!({"params": "x"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = zs.add_image(json!({"name": "x", "url": url, "format": "raw", "backupStorageUuids": [BS], "system": "maybe"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = zs
        .action(
            "1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d",
            json!({"frobnicate": {}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text.contains("doesn't contain action mapping"),
        "{}",
        r.text
    );

    // Unknown images.
    let missing = "3c4d5e6f1a2b4c7d8e9f0a1b2c3d4e5f";
    let r = zs
        .action(missing, json!({"updateImage": {"name": "n"}}))
        .await;
    assert_eq!(r.code(), "SYS.1003", "{}", r.text);
    assert!(r.json["error"]["description"].is_string());
    assert!(
        r.json["error"]["details"]
            .as_str()
            .unwrap()
            .contains(missing)
    );
    assert_eq!(
        zs.action("zzz", json!({"updateImage": {"name": "n"}}))
            .await
            .code(),
        "SYS.1003"
    );
    assert_eq!(
        zs.get(&format!("/images/{missing}")).await.json["inventories"],
        json!([])
    );

    // Queries.
    let r = zs.get("/images?q=nosuchfield=1").await;
    assert_eq!((r.status, r.code()), (503, "SYS.1007"), "{}", r.text);
    let r = zs.get("/images?q=status>Ready").await;
    assert_eq!(r.code(), "SYS.1007");
    let r = zs.get("/images?q=size=big").await;
    assert_eq!(r.code(), "SYS.1007", "{}", r.text);
    for bad in [
        "limit=-1",
        "limit=x",
        "start=-3",
        "q=name",
        "replyWithCount=yes",
    ] {
        let r = zs.get(&format!("/images?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(r.json.is_null(), "plain text: {}", r.text);
    }
    let r = zs.get("/images?sort=-nosuch").await;
    assert_eq!(r.code(), "SYS.1007");
    // An offset no database takes is the caller's mistake, not an internal error.
    let r = zs.get("/images?start=18446744073709551615").await;
    assert_eq!((r.status, r.code()), (503, "SYS.1007"), "{}", r.text);

    // Unknown routes and methods, in ZStack's plain text.
    let r = zs.get("/no/such/thing").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (404, "no api mapping to /zstack/v1/no/such/thing")
    );
    let r = zs.send(Method::PATCH, "/images", json!({})).await;
    assert_eq!(r.status, 405);
    assert!(r.json.is_null());
}

#[tokio::test]
async fn queries_push_conditions_sort_and_page() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    for (name, fmt) in [
        ("q-a", "raw"),
        ("q-b", "qcow2"),
        ("q-c", "raw"),
        ("other", "iso"),
    ] {
        api.create(json!({"name": name, "disk_format": fmt, "container_format": "bare"}))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data = api
        .create(json!({"name": "q-data", "disk_format": "raw", "container_format": "bare", "virtual_env_type": "DataImage"}))
        .await;
    assert_eq!(
        api.upload(data["id"].as_str().unwrap(), vec![7u8; 4096])
            .await
            .status(),
        204
    );
    let zs = Zs::admin(&server).await;
    let names = |r: &Reply| -> Vec<String> {
        r.json["inventories"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.text))
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&zs.get("/images?q=name=q-b").await), ["q-b"]);
    assert_eq!(
        names(
            &zs.get("/images?q=name!=q-b&q=name~=q-%25&sort=%2Bname")
                .await
        ),
        ["q-a", "q-c", "q-data"]
    );
    assert_eq!(
        names(&zs.get("/images?q=name?=q-a,q-c&sort=-name").await),
        ["q-c", "q-a"]
    );
    assert_eq!(
        names(
            &zs.get("/images?q=name!?=q-a,q-c&q=name!~=other&sort=name")
                .await
        ),
        ["q-b", "q-data"]
    );
    assert_eq!(
        names(
            &zs.get("/images?q=format=raw&q=status=Creating&sort=name")
                .await
        ),
        ["q-a", "q-c"]
    );
    assert_eq!(names(&zs.get("/images?q=status=Ready").await), ["q-data"]);
    assert_eq!(
        names(&zs.get("/images?q=mediaType=DataVolumeTemplate").await),
        ["q-data"]
    );
    assert_eq!(
        names(&zs.get("/images?q=actualSize>=4096").await),
        ["q-data"]
    );
    assert_eq!(
        names(&zs.get("/images?q=md5Sum not null").await),
        ["q-data"]
    );
    assert_eq!(
        names(&zs.get("/images?q=description is null&q=name=q-a").await),
        ["q-a"]
    );
    assert_eq!(
        names(&zs.get("/images?sort=createDate&limit=2&start=1").await),
        ["q-b", "q-c"]
    );
    let inv = zs
        .image(&data["id"].as_str().unwrap().replace('-', ""))
        .await;
    let since = inv["createDate"].as_str().unwrap();
    let r = zs
        .get(&format!(
            "/images?q=createDate>={}",
            since.replace(' ', "%20").replace(',', "%2C")
        ))
        .await;
    assert!(names(&r).contains(&"q-data".to_string()), "{}", r.text);
    let r = zs
        .get(&format!(
            "/images?q=createDate<{}",
            since.replace(' ', "%20").replace(',', "%2C")
        ))
        .await;
    assert!(!names(&r).contains(&"q-data".to_string()), "{}", r.text);
    let r = zs
        .get("/images?q=name~=q-%25&replyWithCount=true&limit=1")
        .await;
    assert_eq!(r.json["total"], 4);
    assert_eq!(r.json["inventories"].as_array().unwrap().len(), 1);
    let r = zs.get("/images?q=name~=q-%25&count=true").await;
    assert_eq!(r.json, json!({"total": 4}));
    let r = zs.get("/images?q=name=q-a&fields=uuid,name").await;
    let only = r.json["inventories"][0].as_object().unwrap();
    assert_eq!(only.keys().collect::<Vec<_>>(), ["name", "uuid"]);
}

#[tokio::test]
async fn another_projects_image_does_not_exist() {
    let server = Server::start(&[]).await;
    server.add_member("p2", "bob", "bob-pass");
    let api = Api::new(&server, server.admin_token().await);
    let secret = api
        .create(json!({"name": "admins-own", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let uuid = secret["id"].as_str().unwrap().replace('-', "");
    let bob = Zs::login(&server, "bob", "bob-pass").await;
    assert_eq!(
        bob.get(&format!("/images/{uuid}")).await.json["inventories"],
        json!([])
    );
    assert_eq!(bob.get("/images").await.json["inventories"], json!([]));
    let r = bob
        .action(&uuid, json!({"updateImage": {"name": "mine"}}))
        .await;
    assert_eq!(r.code(), "SYS.1003", "{}", r.text);
    let r = bob
        .action(
            &uuid,
            json!({"changeImageState": {"stateEvent": "disable"}}),
        )
        .await;
    assert_eq!(r.code(), "SYS.1003");
    let r = reply(
        bob.req(Method::DELETE, &format!("/images/{uuid}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "deleting what one cannot see changes nothing"
    );
    assert_eq!(
        api.show(secret["id"].as_str().unwrap()).await["status"],
        "queued"
    );
    // A reader may look but not change (ID.1002); a status that does not allow a change
    // is SYS.1006.
    server.admin(&[
        "user",
        "create",
        "rita",
        "--password",
        "rita-pass",
        "--project",
        "p2",
        "--role",
        "reader",
    ]);
    let rita = Zs::login(&server, "rita", "rita-pass").await;
    assert_eq!(rita.get("/images").await.status, 200);
    let r = rita.add_image(json!({"name": "x", "url": "http://127.0.0.1:1/x", "format": "raw", "backupStorageUuids": [BS]})).await;
    assert_eq!(r.code(), "ID.1002", "{}", r.text);
    let zs = Zs::admin(&server).await;
    let r = zs
        .action(
            &uuid,
            json!({"changeImageState": {"stateEvent": "disable"}}),
        )
        .await;
    assert_eq!(
        r.code(),
        "SYS.1006",
        "a queued image cannot be disabled: {}",
        r.text
    );
    // Bob's own images are his.
    let bob_api = Api::new(&server, server.token("bob", "bob-pass", "p2").await);
    bob_api
        .create(json!({"name": "bobs", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let r = bob.get("/images").await;
    assert_eq!(r.json["inventories"][0]["name"], "bobs");
    assert_eq!(r.json["inventories"].as_array().unwrap().len(), 1);
}

/// `POST /zstack/api/` as zstack-mcp-server sends it.
async fn rpc(server: &Server, class: &str, msg: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/zstack/api/", server.url))
        .json(&json!({ class: msg }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_rpc_front_end_serves_the_same_operations() {
    let source = SlowSource::start(2 << 20, Duration::from_millis(200)).await;
    let mut env = web_env();
    env.push(("IMS_ZSTACK__JOB_WAIT_MS", "0"));
    let server = Server::start(&env).await;
    let login = rpc(
        &server,
        "org.zstack.header.identity.APILogInByAccountMsg",
        json!({"accountName": "admin", "password": sha512(&server.admin_password())}),
    )
    .await;
    let result = rpc_result(&server, login).await;
    let reply = &result["org.zstack.header.identity.APILogInReply"];
    assert_eq!(reply["success"], true, "{result}");
    let session = json!({"uuid": reply["inventory"]["uuid"]});

    let add = rpc(
        &server,
        "org.zstack.header.image.APIAddImageMsg",
        json!({"name": "rpc-img", "url": source.url("/r.raw"), "format": "raw", "backupStorageUuids": [BS], "session": session}),
    )
    .await;
    assert_eq!(add["state"], "Processing", "{add}");
    let result = rpc_result(&server, add).await;
    let event = &result["org.zstack.header.image.APIAddImageEvent"];
    assert_eq!(event["success"], true, "{result}");
    assert_eq!(event["inventory"]["status"], "Ready");
    let uuid = event["inventory"]["uuid"].as_str().unwrap().to_string();

    let query = rpc(
        &server,
        "org.zstack.header.image.APIQueryImageMsg",
        json!({"conditions": [{"name": "name", "op": "like", "value": "rpc-%"}, {"name": "status", "op": "in", "value": ["Ready"]}], "limit": 50, "replyWithCount": true, "session": session}),
    )
    .await;
    let result = rpc_result(&server, query).await;
    let reply = &result["org.zstack.header.image.APIQueryImageReply"];
    assert_eq!(reply["success"], true, "{result}");
    assert_eq!(reply["total"], 1);
    assert_eq!(reply["inventories"][0]["uuid"], uuid.as_str());

    let change = rpc(
        &server,
        "org.zstack.header.image.APIChangeImageStateMsg",
        json!({"uuid": uuid, "stateEvent": "disable", "session": session}),
    )
    .await;
    let result = rpc_result(&server, change).await;
    assert_eq!(
        result["org.zstack.header.image.APIChangeImageStateEvent"]["inventory"]["state"],
        "Disabled",
        "{result}"
    );
    let delete = rpc(
        &server,
        "org.zstack.header.image.APIDeleteImageMsg",
        json!({"uuid": uuid, "session": session}),
    )
    .await;
    let result = rpc_result(&server, delete).await;
    assert_eq!(
        result["org.zstack.header.image.APIDeleteImageEvent"]["success"], true,
        "{result}"
    );
    let recover = rpc(
        &server,
        "org.zstack.header.image.APIRecoverImageMsg",
        json!({"imageUuid": uuid, "session": session}),
    )
    .await;
    let result = rpc_result(&server, recover).await;
    assert_eq!(
        result["org.zstack.header.image.APIRecoverImageEvent"]["inventory"]["status"], "Ready",
        "{result}"
    );

    for class in [
        "org.zstack.header.storage.backup.APIQueryBackupStorageMsg",
        "org.zstack.header.storage.primary.APIQueryPrimaryStorageMsg",
    ] {
        let r = rpc_result(
            &server,
            rpc(&server, class, json!({"session": session})).await,
        )
        .await;
        let reply = r.as_object().unwrap().values().next().unwrap();
        assert_eq!(reply["success"], true, "{r}");
        assert_eq!(reply["inventories"].as_array().unwrap().len(), 1);
    }

    // Errors come back inside the reply, with success false.
    let bad = rpc(
        &server,
        "org.zstack.header.image.APIQueryImageMsg",
        json!({"session": {"uuid": "0".repeat(32)}}),
    )
    .await;
    let result = rpc_result(&server, bad).await;
    let reply = &result["org.zstack.header.image.APIQueryImageReply"];
    assert_eq!(
        (reply["success"].clone(), reply["error"]["code"].clone()),
        (json!(false), json!("ID.1001"))
    );
    let bad = rpc(
        &server,
        "org.zstack.header.image.APIQueryImageMsg",
        json!({"conditions": [{"name": "name", "op": "~~", "value": "x"}], "session": session}),
    )
    .await;
    let result = rpc_result(&server, bad).await;
    assert_eq!(
        result["org.zstack.header.image.APIQueryImageReply"]["error"]["code"],
        "SYS.1007"
    );
    let unknown = rpc(
        &server,
        "org.zstack.header.vm.APIFrobnicateMsg",
        json!({"session": session}),
    )
    .await;
    let result = rpc_result(&server, unknown).await;
    assert_eq!(
        result["org.zstack.header.message.APIReply"]["error"]["code"],
        "SYS.1008"
    );
    let logout = rpc(
        &server,
        "org.zstack.header.identity.APILogOutMsg",
        json!({"sessionUuid": session["uuid"]}),
    )
    .await;
    rpc_result(&server, logout).await;
    let after = rpc(
        &server,
        "org.zstack.header.image.APIQueryImageMsg",
        json!({"session": session}),
    )
    .await;
    let result = rpc_result(&server, after).await;
    assert_eq!(
        result["org.zstack.header.image.APIQueryImageReply"]["error"]["code"],
        "ID.1001"
    );
}

#[tokio::test]
async fn api_jobs_outlive_a_restart() {
    // 12 MiB at 1 MiB per 250 ms: about 3 s, cut by a crash.
    let source = SlowSource::start(12 << 20, Duration::from_millis(250)).await;
    let mut env = web_env();
    env.push(("IMS_ZSTACK__JOB_WAIT_MS", "0"));
    env.push(("IMS_JOBS__LEASE_SECS", "3"));
    let mut server = Server::start(&env).await;
    let zs = Zs::admin(&server).await;
    let r = zs
        .add_image(raw_params("survivor", &source.url("/s.raw")))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let location = r.json["location"].as_str().unwrap().to_string();
    common::wait_for(
        "the download to write data",
        Duration::from_secs(30),
        async || (server.bytes_being_written() > 0).then_some(()),
    )
    .await;
    server.kill();
    server.spawn().await;
    // The session and the api-job are in the catalog: both survive.
    let done = zs.follow(&location).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json["inventory"]["status"], "Ready");
    assert_eq!(done.json["inventory"]["actualSize"], 12 << 20);
}

#[tokio::test]
async fn add_image_downloads_through_the_outbound_filter() {
    // Default outbound rules: loopback is not an allowed source.
    let source = SlowSource::start(1 << 20, Duration::ZERO).await;
    let server = Server::start(&[("IMS_WEB_DOWNLOAD__PORTS", "[]")]).await;
    let zs = Zs::admin(&server).await;
    let r = zs
        .add_image(raw_params("ssrf", &source.url("/x.raw")))
        .await;
    let done = if r.status == 202 {
        zs.follow(r.json["location"].as_str().unwrap()).await
    } else {
        r
    };
    assert_eq!(
        (done.status, done.code()),
        (503, "SYS.1002"),
        "{}",
        done.text
    );
    assert!(
        done.json["error"]["details"]
            .as_str()
            .unwrap()
            .contains("not allowed"),
        "{}",
        done.text
    );
    assert_eq!(source.requests(), 0, "nothing was fetched");
    assert_eq!(
        zs.get("/images?q=name=ssrf").await.json["inventories"],
        json!([]),
        "nothing is left Creating"
    );
}

/// AddImage from a bucket object (`bucket:object`): the file-import job streams it
/// (hashed and inspected; the declared format must be the content's, as for URLs) and
/// the size is the disk inside; an unknown object is SYS.1003 and a host path or another
/// scheme SYS.1007, with nothing left behind.
#[tokio::test]
async fn add_image_reads_a_bucket_object() {
    let server = Server::start(&[]).await;
    let zs = Zs::admin(&server).await;
    let bucket = server.dir.join("buckets/zsb");
    std::fs::create_dir_all(&bucket).unwrap();
    let file = bucket.join("disk.img");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&file)
        .arg("64M")
        .status()
        .unwrap();
    assert!(made.success());
    let bytes = std::fs::read(&file).unwrap();

    let mut params = raw_params("from-bucket", "zsb:disk.img");
    params["mediaType"] = json!("DataVolumeTemplate");
    params["format"] = json!("qcow2");
    let r = zs.add_image(params).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let inv = &r.json["inventory"];
    assert_eq!(inv["status"], "Ready");
    assert_eq!(inv["format"], "qcow2");
    assert_eq!(inv["size"], 64 << 20);
    assert_eq!(inv["actualSize"], bytes.len());
    assert_eq!(inv["md5Sum"], hex::encode(md5::Md5::digest(&bytes)));
    assert_eq!(inv["url"], "zsb:disk.img");
    let uuid = inv["uuid"].as_str().unwrap();
    assert_eq!(zs.image(uuid).await["mediaType"], "DataVolumeTemplate");

    for (url, code) in [
        ("zsb:missing.img", "SYS.1003"),
        ("file:///etc/passwd", "SYS.1007"),
        ("/etc/passwd", "SYS.1007"),
        ("ftp://example.com/x.img", "SYS.1007"),
    ] {
        let r = zs.add_image(raw_params("refused-source", url)).await;
        assert_eq!((r.status, r.code()), (503, code), "{url}: {}", r.text);
    }
    let left = zs.get("/images?q=name=refused-source&count=true").await;
    assert_eq!(left.json["total"], 0, "{}", left.text);
}
