//! Glance's multi-store API through the real binary: three stores (the local directory,
//! a second directory and an S3 bucket of s3s-fs), uploads to a chosen store, imports
//! into several stores with their progress properties, copy-image, deletion from one
//! store, reads that fall back when a store is down, and a store that fails mid-import.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::s3s::{self, S3s};
use common::{Api, Server, wait_status, wait_until};
use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};

/// A server with stores `local` (default, weight 10), `cold` (a directory, weight 0) and
/// `s3` (weight 20).
struct Stores {
    server: Server,
    cold: tempfile::TempDir,
    s3: Option<S3s>,
}

impl Stores {
    async fn start() -> Stores {
        let cold = tempfile::tempdir().unwrap();
        let s3 = S3s::start();
        s3.bucket("images");
        let stores = format!(
            "{{ local = {{ kind = \"file\", weight = 10, description = \"This node's disk\" }}, \
             cold = {{ kind = \"file\", path = \"{}\" }}, \
             s3 = {{ kind = \"s3\", weight = 20, endpoint = \"{}\", region = \"{}\", bucket = \"images\", \
             part_size_mib = 5, access_key_id = \"{}\", secret_access_key = \"{}\" }} }}",
            cold.path().display(),
            s3.endpoint,
            s3s::REGION,
            s3s::ACCESS_KEY,
            s3s::SECRET_KEY
        );
        let server = Server::start(&[
            ("IMS_IMAGE_STORES__DEFAULT", "local"),
            ("IMS_IMAGE_STORES__STORES", &stores),
        ])
        .await;
        Stores {
            server,
            cold,
            s3: Some(s3),
        }
    }

    fn cold_files(&self) -> Vec<PathBuf> {
        blobs_in(self.cold.path())
    }

    fn local_files(&self) -> Vec<PathBuf> {
        blobs_in(&self.server.dir.join("images"))
    }

    fn s3_files(&self) -> Vec<PathBuf> {
        let root = self.s3.as_ref().unwrap().root.join("images");
        let mut all = Vec::new();
        walk(&root, &mut all);
        all.retain(|p| !p.to_string_lossy().contains("/.upload"));
        all
    }

    /// Makes the cold store fail every write (its temp directory becomes a file), or
    /// work again.
    fn break_cold(&self, broken: bool) {
        let tmp = self.cold.path().join(".tmp");
        if broken {
            std::fs::remove_dir_all(&tmp).unwrap();
            std::fs::write(&tmp, b"not a directory").unwrap();
        } else {
            std::fs::remove_file(&tmp).unwrap();
            std::fs::create_dir(&tmp).unwrap();
        }
    }
}

fn blobs_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

async fn call(api: &Api, method: Method, path: &str, body: Option<Value>) -> (u16, String) {
    let mut req = api.req(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn import(api: &Api, id: &str, body: Value) -> (u16, String) {
    call(
        api,
        Method::POST,
        &format!("/v2/images/{id}/import"),
        Some(body),
    )
    .await
}

/// Waits until no store is left importing; the image.
async fn copied(api: &Api, id: &str) -> Value {
    wait_until(Duration::from_secs(60), move || async move {
        let image = api.show(id).await;
        match image["os_glance_importing_to_stores"].as_str() {
            Some("") => Ok(image),
            _ => Err(format!("still importing: {image}")),
        }
    })
    .await
}

async fn stage(api: &Api, id: &str, data: &[u8]) {
    let r = api
        .req(Method::PUT, &format!("/v2/images/{id}/stage"))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn stores_are_listed_and_detailed_for_administrators() {
    let s = Stores::start().await;
    let admin = Api::new(&s.server, s.server.admin_token().await);
    let (status, body) = call(&admin, Method::GET, "/v2/info/stores", None).await;
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        listed,
        json!({"stores": [
            {"id": "local", "description": "This node's disk", "default": "true"},
            {"id": "cold"},
            {"id": "s3"},
        ]}),
        "configuration order, `default` only on the default, no type or weight"
    );
    s.server.add_member("viewers", "viewer", "viewer-pass");
    let viewer = Api::new(
        &s.server,
        s.server.token("viewer", "viewer-pass", "viewers").await,
    );
    assert_eq!(
        call(&viewer, Method::GET, "/v2/info/stores", None).await.0,
        200
    );
    assert_eq!(
        call(&viewer, Method::GET, "/v2/info/stores/detail", None)
            .await
            .0,
        403
    );
    let (status, body) = call(&admin, Method::GET, "/v2/info/stores/detail", None).await;
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    let s3 = &detail["stores"][2];
    assert_eq!(
        (s3["id"].as_str(), s3["type"].as_str()),
        (Some("s3"), Some("s3"))
    );
    assert_eq!(s3["weight"], 20);
    assert_eq!(s3["properties"]["s3_store_thread_pools"], 2);
    assert_eq!(detail["stores"][1]["type"], "file");
    assert_eq!(
        detail["stores"][1]["properties"]["data_dir"],
        s.cold.path().display().to_string()
    );
    let r = admin
        .req(Method::POST, "/v2/images")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["openstack-image-store-ids"], "local,cold,s3");
    let made: Value = r.json().await.unwrap();
    assert!(made.get("stores").is_none(), "no data, no stores: {made}");
    let r = admin
        .req(Method::POST, "/v2/images")
        .json(&json!({"name": "x", "stores": "cold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "stores is read-only");
}

#[tokio::test]
async fn uploads_go_to_the_store_named_and_copies_reach_the_others() {
    let mut s = Stores::start().await;
    let admin = Api::new(&s.server, s.server.admin_token().await);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let id = admin.new_image("chosen", "raw").await;

    let r = admin
        .req(Method::PUT, &format!("/v2/images/{id}/file"))
        .header("content-type", "application/octet-stream")
        .header("x-image-meta-store", "nowhere")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Store for identifier nowhere not found")
    );
    assert_eq!(admin.show(&id).await["status"], "queued");

    let r = admin
        .req(Method::PUT, &format!("/v2/images/{id}/file"))
        .header("content-type", "application/octet-stream")
        .header("x-image-meta-store", "cold")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let image = admin.show(&id).await;
    assert_eq!(
        (image["status"].as_str(), image["stores"].as_str()),
        (Some("active"), Some("cold"))
    );
    assert_eq!(s.cold_files().len(), 1);
    assert!(s.local_files().is_empty(), "nothing in the default store");

    // copy-image: administrators only, active images only, stores not yet holding it.
    s.server.add_member("others", "other", "other-pass");
    let other = Api::new(
        &s.server,
        s.server.token("other", "other-pass", "others").await,
    );
    let copy_all = json!({"method": {"name": "copy-image"}, "all_stores": true});
    assert_eq!(
        import(&other, &id, copy_all.clone()).await.0,
        404,
        "not visible to them"
    );
    let (status, body) = import(
        &admin,
        &id,
        json!({"method": {"name": "copy-image"}, "stores": ["cold"]}),
    )
    .await;
    assert_eq!(
        (status, body.contains("already present at store 'cold'")),
        (400, true),
        "{body}"
    );
    let (status, body) = import(
        &admin,
        &id,
        json!({"method": {"name": "copy-image"}, "stores": ["cold", "nowhere"]}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = import(
        &admin,
        &id,
        json!({"method": {"name": "copy-image"}, "all_stores": true, "stores": ["s3"]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    assert_eq!(import(&admin, &id, copy_all.clone()).await.0, 202);
    let image = copied(&admin, &id).await;
    assert_eq!(image["stores"], "s3,local,cold", "heaviest first");
    assert_eq!(image["os_glance_failed_import"], "");
    assert_eq!(image["status"], "active");
    assert_eq!((s.local_files().len(), s.s3_files().len()), (1, 1));
    // Nothing left to copy: accepted, and nothing changes.
    assert_eq!(import(&admin, &id, copy_all).await.0, 202);
    assert_eq!(copied(&admin, &id).await["stores"], "s3,local,cold");

    // The heaviest store, S3, is read first; with it down, the next store serves.
    assert_eq!(md5_hex(&admin.download(&id).await), md5_hex(&data));
    drop(s.s3.take());
    assert_eq!(md5_hex(&admin.download(&id).await), md5_hex(&data));

    // Deleting from one store, in Glance's order of checks.
    let delete = |store: &str| format!("/v2/stores/{store}/{id}");
    assert_eq!(
        call(&admin, Method::DELETE, &delete("nowhere"), None)
            .await
            .0,
        409
    );
    assert_eq!(
        call(&other, Method::DELETE, &delete("cold"), None).await.0,
        404
    );
    assert_eq!(
        call(&admin, Method::DELETE, &delete("cold"), None).await.0,
        204
    );
    assert_eq!(admin.show(&id).await["stores"], "s3,local");
    assert!(s.cold_files().is_empty(), "the copy in cold is gone");
    let (status, body) = call(&admin, Method::DELETE, &delete("cold"), None).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains(&format!("Image {id} is not stored in store cold.")),
        "{body}"
    );
    assert_eq!(
        call(&admin, Method::DELETE, &delete("local"), None).await.0,
        204
    );
    let (status, body) = call(&admin, Method::DELETE, &delete("s3"), None).await;
    assert_eq!(status, 403, "the last copy stays: {body}");
    assert_eq!(admin.show(&id).await["stores"], "s3");
}

#[tokio::test]
async fn imports_write_the_stores_asked_for_and_a_failing_store_rolls_back() {
    let s = Stores::start().await;
    let admin = Api::new(&s.server, s.server.admin_token().await);
    let data = vec![7u8; 1_500_000];

    // glance-direct into cold only: the staged copy in the default store goes.
    let id = admin.new_image("direct", "raw").await;
    stage(&admin, &id, &data).await;
    let (status, body) = import(
        &admin,
        &id,
        json!({"method": {"name": "glance-direct"}, "stores": ["nowhere"]}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(admin.show(&id).await["status"], "uploading");
    let r = admin
        .req(Method::POST, &format!("/v2/images/{id}/import"))
        .header("x-image-meta-store", "s3")
        .json(&json!({"method": {"name": "glance-direct"}, "stores": ["cold"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "stores and a different header");
    // openstacksdk's import_image(store=…) sends the store both ways.
    let r = admin
        .req(Method::POST, &format!("/v2/images/{id}/import"))
        .header("x-image-meta-store", "cold")
        .json(&json!({"method": {"name": "glance-direct"}, "stores": ["cold"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let image = wait_status(&admin, &id, "active").await;
    assert_eq!(image["stores"], "cold");
    assert_eq!(image["checksum"], md5_hex(&data));
    assert_eq!(
        (
            image["os_glance_importing_to_stores"].as_str(),
            image["os_glance_failed_import"].as_str()
        ),
        (Some(""), Some(""))
    );
    assert!(s.local_files().is_empty(), "the staged copy is gone");
    assert_eq!(admin.download(&id).await, data);

    // A store that fails, when every store must succeed: nothing is kept.
    s.break_cold(true);
    let id = admin.new_image("must", "raw").await;
    stage(&admin, &id, &data).await;
    let all = json!({"method": {"name": "glance-direct"}, "all_stores": true});
    assert_eq!(import(&admin, &id, all).await.0, 202);
    let image = wait_status(&admin, &id, "queued").await;
    assert_eq!(image["os_glance_failed_import"], "cold", "{image}");
    assert_eq!(image["os_glance_importing_to_stores"], "");
    assert!(image.get("stores").is_none(), "{image}");
    assert_eq!(s3_objects_of(&s, &id), 0, "the copy in s3 was rolled back");

    // When stores may fail: the image is active in the others.
    let id = admin.new_image("may", "raw").await;
    stage(&admin, &id, &data).await;
    let lenient = json!({"method": {"name": "glance-direct"}, "all_stores": true, "all_stores_must_succeed": false});
    assert_eq!(import(&admin, &id, lenient).await.0, 202);
    let image = wait_status(&admin, &id, "active").await;
    assert_eq!(image["stores"], "s3,local");
    assert_eq!(image["os_glance_failed_import"], "cold");
    assert_eq!(image["os_glance_importing_to_stores"], "");

    // A download that fails (a loopback address, refused when the job connects): the
    // stores it was importing to are recorded as failed, none is left importing.
    let id_web = admin.new_image("web", "raw").await;
    let web = json!({"method": {"name": "web-download", "uri": "http://127.0.0.1/x.img"}, "stores": ["s3", "cold"]});
    assert_eq!(import(&admin, &id_web, web).await.0, 202);
    let failed = wait_until(Duration::from_secs(60), || async {
        let image = admin.show(&id_web).await;
        match image["os_glance_importing_to_stores"].as_str() {
            Some("") if image["status"] == "queued" => Ok(image),
            _ => Err(format!("still importing: {image}")),
        }
    })
    .await;
    assert_eq!(failed["os_glance_failed_import"], "cold,s3");

    // A retry into the failed store clears its failure.
    s.break_cold(false);
    let copy = json!({"method": {"name": "copy-image"}, "stores": ["cold"]});
    assert_eq!(import(&admin, &id, copy).await.0, 202);
    let image = copied(&admin, &id).await;
    assert_eq!(image["stores"], "s3,local,cold");
    assert_eq!(image["os_glance_failed_import"], "");
    assert_eq!(image["status"], "active");
}

/// How many objects of image `id` the S3 store holds.
fn s3_objects_of(s: &Stores, id: &str) -> usize {
    s.s3_files()
        .iter()
        .filter(|p| p.to_string_lossy().contains(id))
        .count()
}

/// ims is SIGKILLed while a copy-image job writes to S3 (stalled there): after a restart
/// the job runs again and ends with the copy, once, and nothing left importing.
#[tokio::test]
async fn a_copy_cut_short_by_a_crash_finishes_after_the_restart() {
    let mut s = Stores::start().await;
    let admin = Api::new(&s.server, s.server.admin_token().await);
    let data: Vec<u8> = (0..24_000_000u32).map(|i| (i % 253) as u8).collect();
    let id = admin.new_image("crash", "raw").await;
    assert_eq!(admin.upload(&id, data.clone()).await.status(), 204);
    let s3 = s.s3.as_ref().unwrap();
    s3.signal("-STOP");
    let copy = json!({"method": {"name": "copy-image"}, "stores": ["s3"]});
    assert_eq!(import(&admin, &id, copy).await.0, 202);
    wait_until(Duration::from_secs(30), || async {
        let image = admin.show(&id).await;
        match image["os_glance_importing_to_stores"].as_str() {
            Some("s3") => Ok(()),
            _ => Err(format!("the copy has not begun: {image}")),
        }
    })
    .await;
    // While the copy runs, no copy of the image may go.
    let (status, body) = call(
        &admin,
        Method::DELETE,
        &format!("/v2/stores/local/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.server.kill();
    s3.signal("-CONT");
    s.server.spawn().await;
    let image = copied(&admin, &id).await;
    assert_eq!(image["stores"], "s3,local");
    assert_eq!(image["os_glance_failed_import"], "");
    assert_eq!(image["status"], "active");
    assert_eq!(
        s3_objects_of(&s, &id),
        1,
        "one object, whatever the first attempt left"
    );
    assert_eq!(md5_hex(&admin.download(&id).await), md5_hex(&data));
}

/// A copy whose source no longer has the image's checksums is not committed: the store
/// is recorded as failed and the image keeps the stores it had.
#[tokio::test]
async fn a_copy_of_corrupted_data_is_refused() {
    let s = Stores::start().await;
    let admin = Api::new(&s.server, s.server.admin_token().await);
    let id = admin.new_image("corrupt", "raw").await;
    let r = admin
        .req(Method::PUT, &format!("/v2/images/{id}/file"))
        .header("content-type", "application/octet-stream")
        .header("x-image-meta-store", "cold")
        .body(vec![5u8; 2_000_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let blob = s.cold_files().pop().unwrap();
    std::fs::write(&blob, vec![6u8; 2_000_000]).unwrap();
    let copy = json!({"method": {"name": "copy-image"}, "stores": ["local"]});
    assert_eq!(import(&admin, &id, copy).await.0, 202);
    let image = copied(&admin, &id).await;
    assert_eq!(image["os_glance_failed_import"], "local", "{image}");
    assert_eq!(image["stores"], "cold");
    assert!(s.local_files().is_empty(), "nothing committed in local");
}
