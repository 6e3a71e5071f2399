//! The `glance-download` import method through the real binary: the source is an image
//! of this deployment's own region, read as the importing caller may see it.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Api, Server, image_tasks, wait_until};
use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};

const MISSING: &str = "36d4b546-64a2-4bb9-bdd0-ba676aa48f2c";

async fn patch(api: &Api, id: &str, ops: Value) {
    let r = common::patch(api, id, ops).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn add(props: &[(&str, &str)]) -> Value {
    json!(
        props
            .iter()
            .map(|(k, v)| json!({"op": "add", "path": format!("/{k}"), "value": v}))
            .collect::<Vec<_>>()
    )
}

/// An active raw image with `data` and the given properties.
async fn source(api: &Api, data: &[u8], props: &[(&str, &str)]) -> String {
    let img = api
        .create(json!({"name": "src", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    assert_eq!(api.upload(&id, data.to_vec()).await.status(), 204);
    if !props.is_empty() {
        patch(api, &id, add(props)).await;
    }
    id
}

/// A queued image declared as an ISO in an OVF container, with the given properties.
async fn target(api: &Api, props: &[(&str, &str)]) -> String {
    let img = api
        .create(json!({"name": "dst", "disk_format": "iso", "container_format": "ovf"}))
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    if !props.is_empty() {
        patch(api, &id, add(props)).await;
    }
    id
}

async fn glance_download(api: &Api, id: &str, method: Value) -> reqwest::Response {
    let mut body = json!({"method": {"name": "glance-download"}});
    for (k, v) in method.as_object().unwrap() {
        body["method"][k] = v.clone();
    }
    api.req(Method::POST, &format!("/v2/images/{id}/import"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn params(image: &str, region: &str, interface: &str) -> Value {
    json!({"glance_image_id": image, "glance_region": region,
           "glance_service_interface": interface})
}

/// The image's one import task once it has finished.
async fn finished_task(api: &Api, id: &str) -> Value {
    let tasks = wait_tasks(api, id, 1).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    tasks[0].clone()
}

/// Creates project `project` with a member `user` (password `pw-<user>`); its id and API.
async fn member(server: &Server, project: &str, user: &str) -> (String, Api) {
    let password = format!("pw-{user}");
    let id = server.add_member(project, user, &password);
    let api = Api::new(server, server.token(user, &password, project).await);
    (id, api)
}

#[tokio::test]
async fn copies_data_formats_and_boot_properties() {
    let server = Server::start(&[]).await;
    let (_, alice) = member(&server, "p1", "alice").await;
    let info: Value = alice
        .req(Method::GET, "/v2/info/import")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = info["import-methods"]["value"].as_array().unwrap();
    assert!(methods.contains(&json!("glance-download")), "{info}");

    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let src = source(
        &alice,
        &data,
        &[
            ("hw_cpu_cores", "5"),
            ("trait:STORAGE_DISK_SSD", "required"),
            ("os_distro", "rhel"),
            ("speed", "88mph"),
        ],
    )
    .await;
    let dst = target(&alice, &[("hw_cpu_cores", "1"), ("os_distro", "windows")]).await;
    // Region names compare without case, as in Glance's catalog look-up.
    let r = glance_download(&alice, &dst, params(&src, "regionone", "public")).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let task = finished_task(&alice, &dst).await;
    assert_eq!(task["status"], "success", "{task}");
    let method = &task["input"]["import_req"]["method"];
    assert_eq!(method["name"], "glance-download");
    assert_eq!(method["glance_image_id"], src.as_str());
    assert_eq!(method["glance_region"], "regionone");
    assert_eq!(method["glance_service_interface"], "public");
    assert!(
        method.get("roles").is_none(),
        "recorded roles stay internal"
    );

    let (s, d) = (alice.show(&src).await, alice.show(&dst).await);
    assert_eq!(d["status"], "active");
    assert_eq!(
        (&d["disk_format"], &d["container_format"]),
        (&json!("raw"), &json!("bare"))
    );
    assert_eq!(
        d["hw_cpu_cores"], "5",
        "the source's value replaces the target's"
    );
    assert_eq!(d["trait:STORAGE_DISK_SSD"], "required");
    assert_eq!(d["os_distro"], "rhel");
    assert!(d.get("speed").is_none(), "not a configured prefix: {d}");
    assert_eq!(d["size"], data.len());
    assert_eq!(d["checksum"], hex::encode(md5::Md5::digest(&data)));
    assert_eq!(d["os_hash_value"], s["os_hash_value"]);
    let r = alice
        .req(Method::GET, &format!("/v2/images/{dst}/file"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    assert_eq!(s["status"], "active", "the source is untouched");
    assert_eq!(s["speed"], "88mph");
}

#[tokio::test]
async fn extra_properties_are_configurable() {
    let env = [(
        "IMS_GLANCE_DOWNLOAD__EXTRA_PROPERTIES",
        r#"["speed", "os_*"]"#,
    )];
    let server = Server::start(&env).await;
    let admin = Api::new(&server, server.admin_token().await);
    let props = [
        ("hw_cpu_cores", "5"),
        ("speed", "88mph"),
        ("os_distro", "rhel"),
    ];
    let src = source(&admin, b"configurable", &props).await;
    let dst = target(&admin, &[]).await;
    let r = glance_download(&admin, &dst, params(&src, "RegionOne", "public")).await;
    assert_eq!(r.status(), 202);
    assert_eq!(finished_task(&admin, &dst).await["status"], "success");
    let d = admin.show(&dst).await;
    assert_eq!(
        (&d["speed"], &d["os_distro"]),
        (&json!("88mph"), &json!("rhel"))
    );
    assert!(
        d.get("hw_cpu_cores").is_none(),
        "hw_ is no longer copied: {d}"
    );
}

#[tokio::test]
async fn bad_requests_are_refused_at_once() {
    let server = Server::start(&[]).await;
    let admin = Api::new(&server, server.admin_token().await);
    let dst = target(&admin, &[]).await;
    let refused = [
        (
            params("foo", "RegionOne", "public"),
            400,
            "image id does not look like a UUID",
        ),
        (
            json!({"glance_image_id": MISSING}),
            400,
            "'glance_region' needs to be set",
        ),
        (
            json!({"glance_region": "RegionOne"}),
            400,
            "'glance_image_id' needs to be set",
        ),
        (
            json!({"glance_image_id": 5, "glance_region": "RegionOne"}),
            400,
            "must be a string",
        ),
    ];
    for (method, status, message) in refused {
        let r = glance_download(&admin, &dst, method.clone()).await;
        assert_eq!(r.status(), status, "{method}");
        let body = r.text().await.unwrap();
        assert!(body.contains(message), "{method}: {body}");
    }
    let d = admin.show(&dst).await;
    assert_eq!(d["status"], "queued");
    let tasks = image_tasks(&admin, &dst).await;
    assert_eq!(tasks["tasks"], json!([]), "no job for a refused request");

    // Only a queued image can be filled.
    let active = source(&admin, b"active", &[]).await;
    let r = glance_download(&admin, &active, params(MISSING, "RegionOne", "public")).await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn unknown_region_or_interface_fails_the_task_and_keeps_the_target() {
    let server = Server::start(&[]).await;
    let admin = Api::new(&server, server.admin_token().await);
    let src = source(&admin, b"region", &[("hw_cpu_cores", "5")]).await;
    let kept = [("hw_cpu_cores", "1"), ("os_distro", "windows")];
    for (region, interface) in [
        ("not a region", "not an interface"),
        ("RegionTwo", "public"),
        ("RegionOne", "internal"),
    ] {
        let dst = target(&admin, &kept).await;
        let r = glance_download(&admin, &dst, params(&src, region, interface)).await;
        assert_eq!(
            r.status(),
            202,
            "a bad endpoint fails the task, not the call"
        );
        let task = finished_task(&admin, &dst).await;
        assert_eq!(task["status"], "failure", "{region}/{interface}: {task}");
        let message = task["message"].as_str().unwrap();
        let expected =
            format!("No glance endpoint for interface '{interface}' in region '{region}'");
        assert!(message.starts_with(&expected), "{message}");
        let d = admin.show(&dst).await;
        assert_eq!(d["status"], "queued");
        assert_eq!(
            (&d["hw_cpu_cores"], &d["os_distro"]),
            (&json!("1"), &json!("windows"))
        );
        assert_eq!(
            (&d["disk_format"], &d["container_format"]),
            (&json!("iso"), &json!("ovf"))
        );
        assert!(d["checksum"].is_null());
    }
}

#[tokio::test]
async fn missing_or_invisible_source_fails_the_task() {
    let server = Server::start(&[]).await;
    let (_, alice) = member(&server, "p1", "alice").await;
    let (p2, bob) = member(&server, "p2", "bob").await;

    let dst = target(&bob, &[("os_distro", "windows")]).await;
    let r = glance_download(&bob, &dst, params(MISSING, "RegionOne", "public")).await;
    assert_eq!(r.status(), 202);
    let missing = finished_task(&bob, &dst).await;
    assert_eq!(missing["status"], "failure");
    assert_eq!(bob.show(&dst).await["status"], "queued");

    // Alice's private image: Bob may not see it, so for his import it does not exist.
    let data = b"alice's private data".to_vec();
    let private = source(&alice, &data, &[("os_distro", "rhel")]).await;
    let r = glance_download(&bob, &dst, params(&private, "RegionOne", "public")).await;
    assert_eq!(r.status(), 202);
    let tasks = wait_tasks(&bob, &dst, 2).await;
    let hidden = of_source(&tasks, &private);
    assert_eq!(hidden["status"], "failure", "{hidden}");
    let message = hidden["message"].as_str().unwrap();
    assert_eq!(message, format!("image {private} not found"));
    assert_eq!(
        missing["message"].as_str().unwrap(),
        format!("image {MISSING} not found"),
        "an invisible image reads exactly like a missing one"
    );
    let d = bob.show(&dst).await;
    assert_eq!(
        (&d["status"], &d["os_distro"]),
        (&json!("queued"), &json!("windows"))
    );

    // Shared with Bob's project, the same request succeeds: the rule is visibility.
    patch(
        &alice,
        &private,
        json!([{"op": "replace", "path": "/visibility", "value": "shared"}]),
    )
    .await;
    let r = alice
        .req(Method::POST, &format!("/v2/images/{private}/members"))
        .json(&json!({"member": p2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = glance_download(&bob, &dst, params(&private, "RegionOne", "public")).await;
    assert_eq!(r.status(), 202);
    let tasks = wait_tasks(&bob, &dst, 3).await;
    let successes: Vec<_> = tasks.iter().filter(|t| t["status"] == "success").collect();
    assert_eq!(successes.len(), 1, "{tasks:?}");
    assert_eq!(
        successes[0]["input"]["import_req"]["method"]["glance_image_id"],
        private
    );
    let d = bob.show(&dst).await;
    assert_eq!(d["os_distro"], "rhel");
    assert_eq!(d["checksum"], hex::encode(md5::Md5::digest(&data)));
}

/// The image's import tasks, oldest first, once `n` of them have finished.
async fn wait_tasks(api: &Api, id: &str, n: usize) -> Vec<Value> {
    wait_until(Duration::from_secs(60), move || async move {
        let tasks = image_tasks(api, id).await["tasks"]
            .as_array()
            .unwrap()
            .clone();
        let done = tasks
            .iter()
            .filter(|t| t["status"] == "success" || t["status"] == "failure")
            .count();
        if done == n {
            Ok(tasks)
        } else {
            Err(format!("tasks did not finish: {tasks:?}"))
        }
    })
    .await
}

/// The one task that imported from `source`.
fn of_source<'a>(tasks: &'a [Value], source: &str) -> &'a Value {
    let mut of = tasks
        .iter()
        .filter(|t| t["input"]["import_req"]["method"]["glance_image_id"] == source);
    let task = of.next().unwrap();
    assert!(of.next().is_none());
    task
}
