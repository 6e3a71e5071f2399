//! Glance's task API through the real binary: import tasks from a loopback server that
//! `[web_download] allow_addresses` lets through, failures that leave nothing behind,
//! Glance's errors for bad input, paging, access and the task schemas.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::sources::serve_bytes;
use common::{Api, Server};
use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};

/// A server that may fetch from 127.0.0.1 on any port, and nothing else private.
async fn server_allowing_loopback() -> Server {
    Server::start(&[
        ("IMS_WEB_DOWNLOAD__ALLOW_ADDRESSES", "[\"127.0.0.1\"]"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
    ])
    .await
}

fn import_task(uri: &str, props: Value) -> Value {
    json!({"type": "import", "input": {"import_from": uri, "import_from_format": "raw", "image_properties": props}})
}

async fn create_task(api: &Api, body: &Value) -> reqwest::Response {
    api.req(Method::POST, "/v2/tasks")
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get_json(api: &Api, path: &str) -> (u16, Value) {
    common::call(api, Method::GET, path, None).await
}

async fn wait_task(api: &Api, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, task) = get_json(api, &format!("/v2/tasks/{id}")).await;
        assert_eq!(status, 200);
        if task["status"] == want {
            return task;
        }
        assert!(
            Instant::now() < deadline
                && !["success", "failure"].contains(&task["status"].as_str().unwrap()),
            "task ended {} (wanted {want}): {task}",
            task["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn images_named(api: &Api, name: &str) -> Vec<Value> {
    let (_, list) = get_json(api, &format!("/v2/images?name={name}")).await;
    list["images"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_import_task_creates_and_fills_an_image_from_an_allowed_address() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let port = serve_bytes(data.clone()).await;
    let server = server_allowing_loopback().await;
    let admin = Api::new(&server, server.admin_token().await);
    let uri = format!("http://127.0.0.1:{port}/cirros.raw");
    let props = json!({"name": "from-task", "disk_format": "raw", "container_format": "bare", "visibility": "public", "os_distro": "cirros"});
    let r = create_task(&admin, &import_task(&uri, props.clone())).await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let request_id = r.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let task: Value = r.json().await.unwrap();
    assert_eq!(task["request_id"], request_id.as_str());
    assert!(task["user_id"].is_string());
    let id = task["id"].as_str().unwrap();
    assert_eq!(location, format!("/v2/tasks/{id}"));
    assert_eq!(task["type"], "import");
    assert!(["pending", "processing"].contains(&task["status"].as_str().unwrap()));
    assert_eq!(task["input"]["image_properties"], props);
    assert_eq!(task["input"]["import_from"], uri.as_str());
    assert_eq!(task["self"], format!("/v2/tasks/{id}"));
    assert_eq!(task["schema"], "/v2/schemas/task");
    assert!(task["result"].is_null());
    assert!(task.get("expires_at").is_none() && task.get("image_id").is_none());

    let done = wait_task(&admin, id, "success").await;
    assert_eq!(done["message"], "");
    assert!(done["expires_at"].as_str().unwrap().ends_with('Z'));
    let image_id = done["result"]["image_id"].as_str().unwrap();
    let image = admin.show(image_id).await;
    assert_eq!(
        (
            &image["status"],
            &image["disk_format"],
            &image["visibility"],
            &image["os_distro"]
        ),
        (
            &json!("active"),
            &json!("raw"),
            &json!("public"),
            &json!("cirros")
        )
    );
    assert_eq!(image["checksum"], hex::encode(md5::Md5::digest(&data)));
    assert_eq!(image["owner"], done["owner"]);
    let r = admin
        .req(Method::GET, &format!("/v2/images/{image_id}/file"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), data);

    // Listed as a stub, and found by the `import` type and its status.
    for query in ["", "?type=import", "?status=success"] {
        let (status, list) = get_json(&admin, &format!("/v2/tasks{query}")).await;
        assert_eq!(status, 200, "{query}");
        let stub = &list["tasks"][0];
        assert_eq!(stub["id"], id, "{query}");
        assert!(stub.get("input").is_none() && stub.get("result").is_none());
        assert_eq!(list["schema"], "/v2/schemas/tasks");
    }
    let (_, none) = get_json(&admin, "/v2/tasks?status=failure").await;
    assert_eq!(none["tasks"], json!([]));
}

#[tokio::test]
async fn a_task_whose_host_cannot_be_fetched_fails_and_leaves_no_image() {
    let server = Server::start(&[]).await;
    let admin = Api::new(&server, server.admin_token().await);
    let body = import_task(
        "http://ims-test-dummy-img-file.invalid/x.qcow2",
        json!({"name": "doomed", "disk_format": "raw", "container_format": "bare"}),
    );
    let r = create_task(&admin, &body).await;
    assert_eq!(r.status(), 201);
    let task: Value = r.json().await.unwrap();
    let failed = wait_task(&admin, task["id"].as_str().unwrap(), "failure").await;
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("Could not fetch the URI"),
        "{failed}"
    );
    assert!(failed["result"].is_null());
    assert!(images_named(&admin, "doomed").await.is_empty());
    assert!(server.stored_files().is_empty());
}

#[tokio::test]
async fn unusable_input_is_refused_at_create_like_glance() {
    let port = serve_bytes(b"data".to_vec()).await;
    let server = server_allowing_loopback().await;
    let admin = Api::new(&server, server.admin_token().await);
    let ok_props = json!({"name": "bad-input", "disk_format": "raw", "container_format": "bare"});
    let good = format!("http://127.0.0.1:{port}/x");
    let mut missing_format = import_task(&good, ok_props.clone());
    missing_format["input"]
        .as_object_mut()
        .unwrap()
        .remove("import_from_format");
    let mut missing_props = import_task(&good, ok_props.clone());
    missing_props["input"]
        .as_object_mut()
        .unwrap()
        .remove("image_properties");
    let cases = [
        (json!({"input": {}}), "Task 'type' is required"),
        (json!({"type": "import"}), "Task 'input' is required"),
        (
            json!({"type": "convert", "input": {}}),
            "'convert' is not one of ['import', 'api_image_import', 'location_import']",
        ),
        (
            json!({"type": "import", "input": "x"}),
            "'x' is not of type 'null', 'object'",
        ),
        (
            json!({"type": "import", "input": {}, "extra": 1}),
            "('extra' was unexpected)",
        ),
        (
            json!({"type": "import", "input": null}),
            "Invalid location: None",
        ),
        (
            json!({"type": "import", "input": {}}),
            "Invalid location: None",
        ),
        (
            import_task("file:///etc/passwd", ok_props.clone()),
            "File based imports are not allowed",
        ),
        (
            import_task("ftp://127.0.0.1/x", ok_props.clone()),
            "The given uri is not valid",
        ),
        (
            import_task("http://127.0.0.2/x", ok_props.clone()),
            "does not pass filtering: http://127.0.0.2/x",
        ),
        (
            import_task("http://169.254.169.254/latest", ok_props.clone()),
            "does not pass filtering",
        ),
        (
            missing_format,
            "Input does not contain 'import_from_format' field",
        ),
        (
            missing_props,
            "Input does not contain 'image_properties' field",
        ),
        (import_task(&good, json!({"disk_format": "bogus"})), "bogus"),
        (
            import_task(&good, json!({"name": "x", "status": "active"})),
            "Attribute 'status' is read-only.",
        ),
    ];
    for (body, why) in cases {
        let r = admin
            .req(Method::POST, "/v2/tasks")
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let err: Value = r.json().await.unwrap();
        let want = if why.contains("read-only") { 403 } else { 400 };
        assert_eq!(status, want, "{body}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains(why),
            "{body}: {err}"
        );
    }
    let r = admin
        .req(Method::POST, "/v2/tasks")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Nothing was made by any of them.
    let (_, list) = get_json(&admin, "/v2/tasks").await;
    assert_eq!(list["tasks"], json!([]));
    assert!(images_named(&admin, "bad-input").await.is_empty());
}

#[tokio::test]
async fn only_administrators_use_tasks_and_tasks_are_never_deleted() {
    let port = serve_bytes(b"0123456789".to_vec()).await;
    let server = server_allowing_loopback().await;
    server.add_member("p2", "bob", "pw-bob");
    let admin = Api::new(&server, server.admin_token().await);
    let bob = Api::new(&server, server.token("bob", "pw-bob", "p2").await);
    // The source URL carries credentials: only administrators may read it.
    let body = import_task(
        &format!("http://user:s3cret@127.0.0.1:{port}/x"),
        json!({"name": "t", "disk_format": "raw", "container_format": "bare",
               "visibility": "public"}),
    );
    let r = create_task(&admin, &body).await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_task(&admin, &id, "success").await;

    // Bob sees the public image the task made, but not the task (Glance lists only
    // interoperable-import tasks on an image), so not its input either.
    let image_id = done["result"]["image_id"].as_str().unwrap();
    assert_eq!(bob.show(image_id).await["visibility"], "public");
    for who in [&bob, &admin] {
        let r = who
            .req(Method::GET, &format!("/v2/images/{image_id}/tasks"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(!text.contains("s3cret") && !text.contains(&id), "{text}");
        let list: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(list["tasks"], json!([]));
    }

    let tasks_path = format!("/v2/tasks/{id}");
    for (method, path) in [
        (Method::POST, "/v2/tasks"),
        (Method::GET, "/v2/tasks"),
        (Method::GET, tasks_path.as_str()),
        (Method::DELETE, tasks_path.as_str()),
    ] {
        let r = bob
            .req(method.clone(), path)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        let err: Value = r.json().await.unwrap();
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("tasks_api_access")
        );
    }
    let r = admin
        .req(Method::DELETE, &tasks_path)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET");
    let err: Value = r.json().await.unwrap();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not permitted on Glance Tasks")
    );
    assert_eq!(get_json(&admin, &tasks_path).await.0, 200, "still there");
    for missing in [
        "/v2/tasks/8d3b2a1c-0000-4000-8000-000000000000",
        "/v2/tasks/nope",
    ] {
        assert_eq!(get_json(&admin, missing).await.0, 404, "{missing}");
    }

    // The list filters follow the project's text rule: no control characters.
    for query in ["owner=%00", "owner=%01", "owner=p%7F"] {
        let (status, err) = get_json(&admin, &format!("/v2/tasks?{query}")).await;
        assert_eq!(status, 400, "{query}: {err}");
        assert_eq!(err["code"], "400 Bad Request", "{query}: {err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("Invalid owner: control characters are not allowed"),
            "{query}: {err}"
        );
    }
}

#[tokio::test]
async fn tasks_page_like_glance_and_include_image_imports() {
    let port = serve_bytes(b"some raw bytes".to_vec()).await;
    let server = server_allowing_loopback().await;
    let admin = Api::new(&server, server.admin_token().await);
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = import_task(
            &format!("http://127.0.0.1:{port}/{i}"),
            json!({"name": format!("page-{i}"), "disk_format": "raw", "container_format": "bare"}),
        );
        let task: Value = create_task(&admin, &body).await.json().await.unwrap();
        ids.push(task["id"].as_str().unwrap().to_string());
        // Distinct creation seconds are not needed: ties are ordered by id.
    }
    for id in &ids {
        wait_task(&admin, id, "success").await;
    }
    // An interoperable import is a task too, of type api_image_import.
    let img = admin
        .create(json!({"name": "wd", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let image_id = img["id"].as_str().unwrap();
    let r = admin
        .req(Method::POST, &format!("/v2/images/{image_id}/import"))
        .json(&json!({"method": {"name": "web-download", "uri": format!("http://127.0.0.1:{port}/wd")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Settled, so that no task changes status (a sort key) while pages are walked.
    let deadline = Instant::now() + Duration::from_secs(60);
    while get_json(&admin, "/v2/tasks?status=success").await.1["tasks"]
        .as_array()
        .unwrap()
        .len()
        < 4
    {
        assert!(Instant::now() < deadline, "the web-download did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (_, all) = get_json(&admin, "/v2/tasks?limit=10").await;
    let all = all["tasks"].as_array().unwrap().clone();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0]["type"], "api_image_import", "newest first");
    let (_, imports) = get_json(&admin, "/v2/tasks?type=import&sort_dir=asc").await;
    let asc: Vec<&str> = imports["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(asc.len(), 3);

    // Two pages of two, following `next`; `first` keeps the query without the marker.
    let (_, page1) = get_json(&admin, "/v2/tasks?limit=2&sort_dir=asc").await;
    assert_eq!(page1["first"], "/v2/tasks?limit=2&sort_dir=asc");
    let next = page1["next"].as_str().unwrap().to_string();
    assert!(next.contains("marker="));
    let (_, page2) = get_json(&admin, &next).await;
    let paged: Vec<&str> = page1["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["tasks"].as_array().unwrap())
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let everything: Vec<&str> = all
        .iter()
        .rev()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(paged, everything);
    assert!(
        page2.get("next").is_some(),
        "a full page has a next link, as in Glance"
    );
    let (_, page3) = get_json(&admin, page2["next"].as_str().unwrap()).await;
    assert_eq!(page3["tasks"], json!([]));
    assert!(page3.get("next").is_none());

    // One at a time by another key: the pages cover every task once, in key order.
    for (key, field) in [
        ("type", "type"),
        ("status", "status"),
        ("owner", "owner"),
        ("id", "id"),
    ] {
        let mut seen: Vec<Value> = Vec::new();
        let mut path = format!("/v2/tasks?sort_key={key}&sort_dir=asc&limit=1");
        loop {
            let (status, page) = get_json(&admin, &path).await;
            assert_eq!(status, 200, "{path}: {page}");
            seen.extend(page["tasks"].as_array().unwrap().iter().cloned());
            match page.get("next") {
                Some(next) => path = next.as_str().unwrap().to_string(),
                None => break,
            }
        }
        let mut ids: Vec<&str> = seen.iter().map(|t| t["id"].as_str().unwrap()).collect();
        let keys: Vec<&str> = seen.iter().map(|t| t[field].as_str().unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{key}: {keys:?}");
        ids.sort_unstable();
        let mut want = everything.clone();
        want.sort_unstable();
        assert_eq!(ids, want, "{key}");
    }

    // The import's task, seen from the task API.
    let api_import = all
        .iter()
        .find(|t| t["type"] == "api_image_import")
        .unwrap();
    let (_, full) = get_json(
        &admin,
        &format!("/v2/tasks/{}", api_import["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(full["image_id"], image_id);
    assert_eq!(
        full["input"]["import_req"]["method"]["name"],
        "web-download"
    );

    for (query, why) in [
        ("limit=x", "limit param must be an integer"),
        ("limit=-1", "limit param must be positive"),
        ("marker=zzz", "Invalid marker format"),
        (
            "marker=8d3b2a1c-0000-4000-8000-000000000000",
            "was not found",
        ),
        ("sort_dir=sideways", "Invalid sort direction"),
        ("sort_key=size", "Sort key supplied is invalid"),
        ("status=done", "Invalid status value: done"),
        ("type=api_image_import", "Invalid type value"),
    ] {
        let (status, err) = get_json(&admin, &format!("/v2/tasks?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(
            err["message"].as_str().unwrap().contains(why),
            "{query}: {err}"
        );
    }
}

#[tokio::test]
async fn task_schemas_are_glances() {
    let server = Server::start(&[]).await;
    let admin = Api::new(&server, server.admin_token().await);
    let (status, task) = get_json(&admin, "/v2/schemas/task").await;
    assert_eq!(status, 200);
    assert_eq!(task["name"], "task");
    let props = task["properties"].as_object().unwrap();
    for key in [
        "id",
        "type",
        "status",
        "input",
        "result",
        "owner",
        "message",
        "expires_at",
        "self",
    ] {
        assert!(props.contains_key(key), "{key}");
    }
    assert_eq!(
        props["type"]["enum"],
        json!(["import", "api_image_import", "location_import"])
    );
    let (_, tasks) = get_json(&admin, "/v2/schemas/tasks").await;
    assert_eq!(tasks["name"], "tasks");
    let item = tasks["properties"]["tasks"]["items"]["properties"]
        .as_object()
        .unwrap();
    assert!(
        item.contains_key("status") && !item.contains_key("input") && !item.contains_key("result")
    );
}
