//! IMS tag listings over HTTP against the real binary, signed like the SDK signs:
//! ListTags (`GET /v1/cloudimages/tags`) and ListImageByTags
//! (`POST /v2/{project_id}/images/resource_instances/action`). Another project's images,
//! even those the caller can see (public ones, or any for an admin), never count.

mod common;

use std::collections::BTreeSet;

use common::signed::Signer;
use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

struct World {
    server: Server,
    alpha: Signer,
    beta: Signer,
    /// Image ids of project alpha by name.
    ids: std::collections::HashMap<&'static str, String>,
}

async fn world() -> World {
    let server = Server::start(&[]).await;
    server.add_member("beta", "bob", "bob-secret");
    let alpha_api = Api::new(&server, server.admin_token().await);
    let beta_api = Api::new(&server, server.token("bob", "bob-secret", "beta").await);
    let mut ids = std::collections::HashMap::new();
    for (name, tags) in [
        ("web-1", vec!["env=prod", "tier=web"]),
        ("web-2", vec!["env=dev", "tier=web"]),
        ("db-1", vec!["env=prod", "tier=db", "legacy"]),
        ("bare", vec![]),
    ] {
        let image = alpha_api
            .create(
                json!({"name": name, "disk_format": "raw", "container_format": "bare",
                           "visibility": "private", "tags": tags}),
            )
            .await;
        ids.insert(name, image["id"].as_str().unwrap().to_string());
    }
    // Beta's own images, which alpha (an admin) can see.
    beta_api
        .create(
            json!({"name": "web-beta", "disk_format": "raw", "container_format": "bare",
                       "tags": ["env=prod", "secret=b"]}),
        )
        .await;
    beta_api
        .create(json!({"name": "bare-beta", "disk_format": "raw", "container_format": "bare"}))
        .await;
    // A public image of a third project, which both can see and neither owns.
    let gamma = server.admin(&["project", "create", "gamma"]);
    alpha_api
        .create(
            json!({"name": "web-gamma", "disk_format": "raw", "container_format": "bare",
                       "visibility": "public", "owner": gamma, "tags": ["env=prod", "secret=g"]}),
        )
        .await;
    let alpha = Signer::new(&server, "admin", "admin");
    let beta = Signer::new(&server, "bob", "beta");
    World {
        server,
        alpha,
        beta,
        ids,
    }
}

async fn tags(signer: &Signer, query: &str) -> Vec<String> {
    let (status, body) = signer
        .send(Method::GET, &format!("/v1/cloudimages/tags{query}"), None)
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_value(body["tags"].clone()).unwrap()
}

async fn search(signer: &Signer, body: Value) -> (u16, Value) {
    let path = format!("/v2/{}/images/resource_instances/action", signer.project);
    signer.send(Method::POST, &path, Some(body)).await
}

/// The names found by a `filter` search (up to 100), and the total it reports.
async fn found(signer: &Signer, mut body: Value) -> (BTreeSet<String>, u64) {
    body["action"] = json!("filter");
    body["limit"] = json!("100");
    let (status, answer) = search(signer, body.clone()).await;
    assert_eq!(status, 200, "{body}: {answer}");
    let names: BTreeSet<String> = answer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource_name"].as_str().unwrap().to_string())
        .collect();
    let total = answer["total_count"].as_u64().unwrap();
    assert_eq!(total as usize, names.len(), "{answer}");
    // `count` agrees with `filter`.
    body["action"] = json!("count");
    let (status, counted) = search(signer, body).await;
    assert_eq!(status, 200);
    assert_eq!(counted, json!({"total_count": total}));
    (names, total)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn assert_ims_error(status: u16, body: &Value, code: &str, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

#[tokio::test]
async fn list_tags_gives_the_projects_distinct_tags_filtered_and_paged() {
    let w = world().await;
    let all = ["env.dev", "env.prod", "legacy", "tier.db", "tier.web"];
    assert_eq!(tags(&w.alpha, "").await, all, "beta's tags never appear");
    assert_eq!(tags(&w.alpha, "?limit=2").await, all[..2]);
    assert_eq!(tags(&w.alpha, "?limit=2&page=2").await, all[2..4]);
    assert_eq!(tags(&w.alpha, "?limit=2&page=3").await, all[4..]);
    assert!(tags(&w.alpha, "?limit=2&page=4").await.is_empty());
    assert_eq!(
        tags(&w.alpha, "?name=web-1").await,
        ["env.prod", "tier.web"]
    );
    assert_eq!(
        tags(&w.alpha, &format!("?id={}", w.ids["db-1"])).await,
        ["env.prod", "legacy", "tier.db"]
    );
    assert_eq!(
        tags(
            &w.alpha,
            "?status=queued&__imagetype=private&created_at=gt:2000-01-01T00:00:00Z"
        )
        .await,
        all
    );
    assert!(tags(&w.alpha, "?status=active").await.is_empty());
    assert!(tags(&w.alpha, "?__imagetype=gold").await.is_empty());
    assert_eq!(
        tags(&w.alpha, "?enterprise_project_id=0&member_status=accepted").await,
        all,
        "accepted and without effect"
    );
    assert_eq!(tags(&w.beta, "").await, ["env.prod", "secret.b"]);

    for bad in [
        "?limit=0",
        "?limit=x",
        "?page=0",
        "?page=one",
        "?status=bogus",
        "?created_at=lt:yesterday",
        "?min_disk=big",
    ] {
        let (status, body) = w
            .alpha
            .send(Method::GET, &format!("/v1/cloudimages/tags{bad}"), None)
            .await;
        assert_ims_error(status, &body, "IMG.0001", bad);
    }
}

#[tokio::test]
async fn list_image_by_tags_filters_and_counts_the_projects_images() {
    let w = world().await;
    let a = &w.alpha;

    let (status, page) = search(
        a,
        json!({"action": "filter", "tags": [{"key": "env", "values": ["prod"]}]}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total_count"], 2, "{page}");
    let db = page["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource_name"] == "db-1")
        .unwrap();
    assert_eq!(db["resource_id"], w.ids["db-1"].as_str());
    assert_eq!(db["resource_detail"], json!({"status": "queued"}));
    let tags: BTreeSet<(String, String)> = db["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_string(),
                t["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [("env", "prod"), ("legacy", ""), ("tier", "db")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(tags, want);

    let cases = [
        (json!({}), set(&["web-1", "web-2", "db-1", "bare"])),
        (
            json!({"tags": [{"key": "env", "values": ["prod", "dev"]}, {"key": "tier", "values": ["web"]}]}),
            set(&["web-1", "web-2"]),
        ),
        (
            json!({"tags": [{"key": "legacy", "values": []}]}),
            set(&["db-1"]),
        ),
        (
            json!({"tags_any": [{"key": "tier", "values": ["db"]}, {"key": "env", "values": ["dev"]}]}),
            set(&["web-2", "db-1"]),
        ),
        (
            json!({"not_tags": [{"key": "env", "values": ["prod"]}, {"key": "tier", "values": ["web"]}]}),
            set(&["web-2", "db-1", "bare"]),
        ),
        (
            json!({"not_tags_any": [{"key": "env", "values": []}]}),
            set(&["bare"]),
        ),
        (
            json!({"without_any_tag": true, "tags": [{"key": "env", "values": []}]}),
            set(&["bare"]),
        ),
        (
            json!({"matches": [{"key": "resource_name", "value": "web"}]}),
            set(&["web-1", "web-2"]),
        ),
        (
            json!({"matches": [{"key": "resource_id", "value": w.ids["web-2"]}]}),
            set(&["web-2"]),
        ),
        (
            json!({"matches": [{"key": "resource_name", "value": "web"}],
                "not_tags_any": [{"key": "env", "values": ["dev"]}]}),
            set(&["web-1"]),
        ),
        (json!({"tags": [{"key": "secret", "values": []}]}), set(&[])),
    ];
    for (body, want) in cases {
        let (names, _) = found(a, body.clone()).await;
        assert_eq!(names, want, "{body}");
    }
    // Beta sees only its own, public or not.
    let (names, _) = found(&w.beta, json!({})).await;
    assert_eq!(names, set(&["web-beta", "bare-beta"]));
    let (names, _) = found(
        &w.beta,
        json!({"tags": [{"key": "env", "values": ["prod"]}]}),
    )
    .await;
    assert_eq!(names, set(&["web-beta"]));
}

#[tokio::test]
async fn list_image_by_tags_pages_with_string_limit_and_offset() {
    let w = world().await;
    let ids = |page: &Value| -> Vec<String> {
        page["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resource_id"].as_str().unwrap().to_string())
            .collect()
    };
    // Newest first: the reverse of the order `world` created alpha's images in.
    let order: Vec<String> = ["bare", "db-1", "web-2", "web-1"]
        .iter()
        .map(|name| w.ids[name].clone())
        .collect();
    let (_, everything) = search(&w.alpha, json!({"action": "filter", "limit": "100"})).await;
    assert_eq!(ids(&everything), order, "newest first");
    let (_, default) = search(&w.alpha, json!({"action": "filter"})).await;
    assert_eq!(ids(&default), order, "10 from 0 by default");
    let (status, page) = search(
        &w.alpha,
        json!({"action": "filter", "limit": "2", "offset": "1"}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), order[1..3]);
    assert_eq!(page["total_count"], 4, "the total, not the page size");
    let (_, numbers) = search(
        &w.alpha,
        json!({"action": "filter", "limit": 2, "offset": 3}),
    )
    .await;
    assert_eq!(ids(&numbers), order[3..], "numbers are accepted too");
    let (_, past) = search(&w.alpha, json!({"action": "filter", "offset": "9"})).await;
    assert_eq!(past, json!({"resources": [], "total_count": 4}));
    let (_, count) = search(&w.alpha, json!({"action": "count", "limit": "junk"})).await;
    assert_eq!(count, json!({"total_count": 4}), "count ignores paging");
}

#[tokio::test]
async fn list_image_by_tags_refuses_bad_input_with_ims_codes() {
    let w = world().await;
    let key = |n: usize| json!({"key": format!("k{n}"), "values": []});
    let eleven: Vec<Value> = (0..11).map(key).collect();
    let many_values: Vec<String> = (0..11).map(|n| n.to_string()).collect();
    let cases = [
        (json!({"action": "list"}), "IMG.0001"),
        (json!({"tags": []}), "IMG.0001"),
        (json!({"action": "filter", "limit": "0"}), "IMG.0001"),
        (json!({"action": "filter", "limit": "1001"}), "IMG.0001"),
        (json!({"action": "filter", "limit": "ten"}), "IMG.0001"),
        (json!({"action": "filter", "offset": "-1"}), "IMG.0001"),
        (json!({"action": "filter", "offset": 1.5}), "IMG.0001"),
        (json!({"action": "count", "tags": "env"}), "IMG.0001"),
        (
            json!({"action": "count", "matches": [{"key": "resource_type", "value": "x"}]}),
            "IMG.0001",
        ),
        (
            json!({"action": "count", "matches": [{"key": "resource_name", "value": ""}]}),
            "IMG.0001",
        ),
        (json!({"action": "count", "tags": eleven}), "IMG.0115"),
        (
            json!({"action": "count", "tags_any": [{"key": "k", "values": many_values}]}),
            "IMG.0115",
        ),
        (
            json!({"action": "count", "not_tags": [{"key": "", "values": []}]}),
            "IMG.0115",
        ),
        (
            json!({"action": "count", "not_tags_any": [{"key": "k".repeat(129), "values": []}]}),
            "IMG.0115",
        ),
        (
            json!({"action": "count", "tags": [key(1), key(1)]}),
            "IMG.0115",
        ),
        (
            json!({"action": "count", "tags": [{"key": "k", "values": ["v", "v"]}]}),
            "IMG.0115",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = search(&w.alpha, body.clone()).await;
        assert_ims_error(status, &answer, code, &body.to_string());
    }
    let path = format!("/v2/{}/images/resource_instances/action", w.alpha.project);
    let (status, answer) = w.alpha.send(Method::POST, &path, None).await;
    assert_ims_error(status, &answer, "IMG.0007", "empty body");
    // Another project's id in the path.
    let path = format!("/v2/{}/images/resource_instances/action", w.beta.project);
    let (status, answer) = w
        .alpha
        .send(Method::POST, &path, Some(json!({"action": "count"})))
        .await;
    assert_ims_error(status, &answer, "IMG.0067", "beta's project");
    // Unsigned: the gateway's shape.
    let r = reqwest::Client::new()
        .post(format!("{}{path}", w.server.url))
        .json(&json!({"action": "count"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
