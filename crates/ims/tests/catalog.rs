//! Discovery, listing, sharing and policy through the real binary.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn discovery_and_version_prefixes() {
    let server = Server::start(&[]).await;
    let http = reqwest::Client::new();
    let r = http.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(r.status(), 300);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["versions"][0]["status"], "CURRENT");
    assert_eq!(
        http.get(format!("{}/versions", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http
        .get(format!("{}/v2/images", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Keystone uri=")
    );
    assert!(
        r.headers()["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req-")
    );
    let api = Api::new(&server, server.admin_token().await);
    assert_eq!(
        api.req(Method::GET, "/v2.1/images")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        api.req(Method::GET, "/v2/images/not-a-uuid")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20));
    let r = api
        .req(Method::POST, "/v2/images")
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "oversized JSON body");
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "413 Payload Too Large"
    );
    // The server closes a connection whose oversized body it did not read; start afresh.
    let api = Api::new(&server, api.token.clone());
    let r = api
        .req(Method::DELETE, "/v2/images")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().contains_key("allow"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["title"],
        "Method Not Allowed"
    );
    let r = http
        .post(format!("{}/v3/auth/tokens", server.url))
        .json(&json!({"auth": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        400,
        "Keystone keeps its own error shape"
    );
}

#[tokio::test]
async fn listing_pages_sorts_and_filters() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    for n in 0..7 {
        let mut body = json!({"name": format!("img-{n}"), "disk_format": "raw", "container_format": "bare", "min_ram": n});
        if n % 2 == 0 {
            body["tags"] = json!(["even"]);
            body["flavor"] = json!("small");
        }
        api.create(body).await;
    }
    let list = |q: &str| {
        let req = api.req(Method::GET, &format!("/v2/images?{q}"));
        let q = q.to_string();
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{q}");
            r.json::<Value>().await.unwrap()
        }
    };
    let names = |v: &Value| {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    let page1 = list("limit=3&sort=name:asc").await;
    assert_eq!(names(&page1), ["img-0", "img-1", "img-2"]);
    let next = page1["next"].as_str().unwrap().to_string();
    let page2: Value = api
        .req(Method::GET, &next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(&page2), ["img-3", "img-4", "img-5"]);
    assert_eq!(
        names(&list("sort_key=min_ram&sort_dir=desc&limit=2").await),
        ["img-6", "img-5"]
    );
    assert_eq!(
        names(&list("tag=even&sort=name:asc").await),
        ["img-0", "img-2", "img-4", "img-6"]
    );
    assert_eq!(
        names(&list("flavor=small&min_ram=gte:4&sort=name:asc").await),
        ["img-4", "img-6"]
    );
    assert_eq!(
        names(&list("name=in:img-1,img-3&sort=name:asc").await),
        ["img-1", "img-3"]
    );
    assert_eq!(
        list("created_at=lt:2000-01-01T00:00:00Z").await["images"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    for bad in [
        "sort_key=nope",
        "changes-since=2020-01-01T00:00:00Z",
        "limit=-2",
        "name=gt:a",
        "marker=00000000-0000-0000-0000-000000000000",
    ] {
        let r = api
            .req(Method::GET, &format!("/v2/images?{bad}"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "400 Bad Request");
    }
}

#[tokio::test]
async fn sharing_and_roles() {
    let server = Server::start(&[]).await;
    server.add_member("p2", "bob", "pw-bob");
    server.admin(&[
        "user",
        "create",
        "rita",
        "--password",
        "pw-rita",
        "--project",
        "p2",
        "--role",
        "reader",
    ]);
    let admin = Api::new(&server, server.admin_token().await);
    let bob = Api::new(&server, server.token("bob", "pw-bob", "p2").await);
    let rita = Api::new(&server, server.token("rita", "pw-rita", "p2").await);

    let img = admin
        .create(json!({"name": "private-one", "visibility": "private"}))
        .await;
    let id = img["id"].as_str().unwrap();
    assert_eq!(img["disk_format"], "zvhd2", "seed 001 default");
    assert_eq!(img["container_format"], "bare");
    assert_eq!(
        bob.req(Method::GET, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = admin
        .req(Method::POST, &format!("/v2/images/{id}/members"))
        .json(&json!({"member": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "members need visibility shared");

    let patch = json!([{"op": "replace", "path": "/visibility", "value": "shared"}]);
    let r = admin
        .req(Method::PATCH, &format!("/v2/images/{id}"))
        .header(
            "content-type",
            "application/openstack-images-v2.1-json-patch",
        )
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p2 = server.project_id("p2");
    let r = admin
        .req(Method::POST, &format!("/v2/images/{id}/members"))
        .json(&json!({"member": p2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = bob
        .req(Method::GET, "/v2/images")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed["images"].as_array().unwrap().is_empty(),
        "pending shares are not listed"
    );
    let r = admin
        .req(Method::PUT, &format!("/v2/images/{id}/members/{p2}"))
        .json(&json!({"status": "accepted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "only the member answers");
    let r = bob
        .req(Method::PUT, &format!("/v2/images/{id}/members/{p2}"))
        .json(&json!({"status": "accepted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = bob
        .req(Method::GET, "/v2/images")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["images"][0]["id"], id);
    assert_eq!(
        bob.req(Method::DELETE, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "members cannot delete"
    );

    let r = rita
        .req(Method::POST, "/v2/images")
        .json(&json!({"name": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "readers cannot create");
    let named = admin.get_json("/v2/images?name=nope").await;
    assert_eq!(named["images"], json!([]), "nothing was created");
    assert_eq!(
        rita.req(Method::GET, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "readers can read"
    );
}

#[tokio::test]
async fn lifecycle_patch_quota_and_usage() {
    let server = Server::start(&[("IMS_IMAGES__QUOTA_IMAGE_COUNT", "2")]).await;
    let api = Api::new(&server, server.admin_token().await);
    let img = api
        .create(json!({"name": "life", "disk_format": "raw", "container_format": "bare", "__os_version": "Ubuntu 14.04 server 64bit", "tags": ["test=testvalue"]}))
        .await;
    assert_eq!(
        (
            img["__platform"].as_str(),
            img["__os_type"].as_str(),
            img["__os_bit"].as_str()
        ),
        (Some("Ubuntu"), Some("Linux"), Some("64"))
    );
    let id = img["id"].as_str().unwrap();
    let deactivate = format!("/v2/images/{id}/actions/deactivate");
    assert_eq!(
        api.req(Method::POST, &deactivate)
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "queued images cannot be deactivated"
    );
    assert_eq!(api.upload(id, vec![1; 10]).await.status(), 204);
    assert_eq!(
        api.req(Method::POST, &deactivate)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(api.show(id).await["status"], "deactivated");
    let reactivate = format!("/v2/images/{id}/actions/reactivate");
    assert_eq!(
        api.req(Method::POST, &reactivate)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(api.show(id).await["status"], "active");

    let patch = |ops: Value, ct: &'static str| {
        api.req(Method::PATCH, &format!("/v2/images/{id}"))
            .header("content-type", ct)
            .body(ops.to_string())
    };
    const JP: &str = "application/openstack-images-v2.1-json-patch";
    let r = patch(
        json!([{"op": "add", "path": "/a", "value": "1"}]),
        "application/json",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.headers().contains_key("accept-patch"));
    // Refused patches change nothing, and a patch is all or nothing: a good operation
    // before a bad one is not applied either.
    let before = api.show(id).await;
    let refused = [
        (
            json!([{"op": "replace", "path": "/missing", "value": "1"}]),
            409,
        ),
        (json!([{"op": "remove", "path": "/missing"}]), 409),
        (
            json!([{"op": "replace", "path": "/status", "value": "queued"}]),
            403,
        ),
        (
            json!([{"op": "add", "path": "/os_glance_x", "value": "1"}]),
            403,
        ),
        // Formats are fixed once data exists.
        (
            json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"}]),
            403,
        ),
        (
            json!([{"op": "replace", "path": "/min_disk", "value": 2049}]),
            400,
        ),
        (
            json!([{"op": "add", "path": "/good", "value": "1"},
                   {"op": "replace", "path": "/name", "value": "renamed"},
                   {"op": "replace", "path": "/min_disk", "value": 2049}]),
            400,
        ),
        (
            json!([{"op": "add", "path": "/good", "value": "1"},
                   {"op": "remove", "path": "/missing"}]),
            409,
        ),
        (
            json!([{"op": "replace", "path": "/name", "value": "renamed"},
                   {"op": "replace", "path": "/status", "value": "queued"}]),
            403,
        ),
    ];
    for (ops, status) in refused {
        let r = patch(ops.clone(), JP).send().await.unwrap();
        assert_eq!(r.status(), status, "{ops}");
        assert_eq!(
            api.show(id).await,
            before,
            "a refused {ops} changed the image"
        );
    }
    let r = patch(json!([{"op": "add", "path": "/protected", "value": true}, {"op": "add", "path": "/k", "value": "v"}]), JP).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["protected"].as_bool(), body["k"].as_str()),
        (Some(true), Some("v"))
    );
    assert_eq!(
        api.req(Method::DELETE, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "protected"
    );

    api.create(json!({"name": "second"})).await;
    let r = api
        .req(Method::POST, "/v2/images")
        .json(&json!({"name": "third"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "image count quota");
    let usage: Value = api
        .req(Method::GET, "/v2/info/usage")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        usage["usage"]["image_count_total"],
        json!({"limit": 2, "usage": 2})
    );
    let schema: Value = api
        .req(Method::GET, "/v2/schemas/image")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        schema["properties"]["disk_format"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("zvhd2"))
    );
}

/// Both JSON-patch media types, as Glance parses them: RFC 6902 (`op`) under v2.1, the
/// draft form with the operation as key under v2.0 (what Tempest's client sends).
#[tokio::test]
async fn json_patch_in_both_media_types_like_glance() {
    const V20: &str = "application/openstack-images-v2.0-json-patch";
    const V21: &str = "application/openstack-images-v2.1-json-patch";
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let img = api
        .create(json!({"name": "jp", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    let patch = |ops: Value, ct: Option<&'static str>| {
        let mut r = api
            .req(Method::PATCH, &format!("/v2/images/{id}"))
            .header("accept", "application/json")
            .body(ops.to_string());
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let accept_patch = r
                .headers()
                .get("accept-patch")
                .map(|v| v.to_str().unwrap().to_string());
            (status, r.json::<Value>().await.unwrap(), accept_patch)
        }
    };

    // The draft form: replace, add, remove, and protect/unprotect as Tempest does.
    let (status, body, _) = patch(
        json!([{"replace": "/name", "value": "renamed"}, {"add": "/hw_cpu_cores", "value": "5"}, {"replace": "/protected", "value": true}]),
        Some(V20),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["name"], &body["hw_cpu_cores"], &body["protected"]),
        (&json!("renamed"), &json!("5"), &json!(true))
    );
    let (status, body, _) = patch(
        json!([{"replace": "/protected", "value": false}, {"remove": "/hw_cpu_cores"}]),
        Some(V20),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("hw_cpu_cores").is_none());

    // Under v2.0, `add` refuses what exists (a base attribute always does); v2.1 replaces.
    assert_eq!(
        patch(json!([{"add": "/k", "value": "1"}]), Some(V20))
            .await
            .0,
        200
    );
    let (status, err, _) = patch(json!([{"add": "/k", "value": "2"}]), Some(V20)).await;
    assert_eq!(
        (status, err["message"].as_str().unwrap()),
        (409, "Property k already present.")
    );
    assert_eq!(
        patch(json!([{"add": "/name", "value": "x"}]), Some(V20))
            .await
            .0,
        409
    );
    let (status, body, _) = patch(
        json!([{"op": "add", "path": "/k", "value": "2"}]),
        Some(V21),
    )
    .await;
    assert_eq!((status, &body["k"]), (200, &json!("2")));
    assert_eq!(
        api.show(&id).await["name"],
        "renamed",
        "a refused patch changes nothing"
    );

    // Glance's 400s, each with its message, and 403/409 from the rules behind them.
    for (ops, ct, want, why) in [
        (
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
            V20,
            400,
            "exactly one member named",
        ),
        (
            json!([{"add": "/a", "replace": "/b", "value": "x"}]),
            V20,
            400,
            "only one member named",
        ),
        (
            json!([{"add": "/a"}]),
            V20,
            400,
            "Operation \"add\" requires a member named \"value\".",
        ),
        (
            json!([{"replace": "/name", "value": "x"}]),
            V21,
            400,
            "Unable to find `op` in JSON Schema change",
        ),
        (
            json!([{"op": "move", "from": "/a", "path": "/b"}]),
            V21,
            400,
            "Invalid operation: `move`. It must be one of the following: add, remove, replace.",
        ),
        (
            json!([{"op": "add", "value": "x"}]),
            V21,
            400,
            "Unable to find 'path' in JSON Schema change",
        ),
        (
            json!({"op": "add", "path": "/a", "value": "x"}),
            V21,
            400,
            "Request body must be a JSON array of operation objects.",
        ),
        (json!(["add"]), V20, 400, "Operations must be JSON objects."),
        (
            json!([{"add": "a", "value": "x"}]),
            V20,
            400,
            "does not start with \"/\".",
        ),
        (
            json!([{"add": "/a/b", "value": "x"}]),
            V20,
            400,
            "Invalid JSON pointer for this resource: '/a/b'",
        ),
        (
            json!([{"add": "/a//b", "value": "x"}]),
            V20,
            400,
            "contains adjacent \"/\".",
        ),
        (
            json!([{"add": "/a~x", "value": "x"}]),
            V20,
            400,
            "not part of a recognized escape sequence",
        ),
        (
            json!([{"replace": "/min_disk", "value": "big"}]),
            V20,
            400,
            "min_disk",
        ),
        (
            json!([{"replace": "/status", "value": "active"}]),
            V20,
            403,
            "Attribute 'status' is read-only.",
        ),
        (
            json!([{"add": "/locations/-", "value": {"url": "http://x", "metadata": {}}}]),
            V20,
            403,
            "locations are invisible",
        ),
        (
            json!([{"replace": "/locations", "value": []}]),
            V20,
            403,
            "Cannot set locations to empty list.",
        ),
        (
            json!([{"remove": "/missing"}]),
            V20,
            409,
            "Property missing does not exist.",
        ),
    ] {
        let (status, err, _) = patch(ops.clone(), Some(ct)).await;
        assert_eq!(status, want, "{ops}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains(why),
            "{ops}: {err}"
        );
    }

    // Any other media type, or none, is a 415 naming both types in Accept-Patch.
    for ct in [Some("application/json"), None] {
        let (status, err, accept) =
            patch(json!([{"op": "add", "path": "/a", "value": "x"}]), ct).await;
        assert_eq!(status, 415, "{ct:?}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .starts_with("Image PATCH expects Content-Type one of")
        );
        assert_eq!(accept.unwrap(), format!("{V20}, {V21}"));
    }
}
