//! Request-size limits and concurrency rules, each tested as the attack it stops, against
//! the real binary on loopback: unbounded sort keys (H3), oversized property values (M3),
//! unbounded sharing batches (M4), parallel creates past the count quota (M7), unchecked
//! tags on IMS imports (L5) and lost updates between concurrent PATCHes (L6).

mod common;

use std::time::{Duration, Instant};

use common::signed::Signer;
use common::{Api, Server};
use common::{patch, raw_image};
use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The server's peak resident memory so far, in KiB (`VmHWM`).
fn peak_rss_kib(server: &Server) -> u64 {
    let pid = server.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The message of a Glance error body (`{"code": "400 Bad Request", "message": …}`).
async fn glance_message(r: reqwest::Response) -> String {
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["title"], "Bad Request", "{body}");
    body["message"].as_str().unwrap().to_string()
}

/// H3: one GET with thousands of sort keys and a marker used to build SQL quadratic in
/// the number of keys (about 1 GB at 2,000 keys). Now every such request is a quick 400
/// in each API's shape, the server's memory stays flat, and normal lists keep working
/// while the attack runs.
#[tokio::test]
async fn thousands_of_sort_keys_are_refused_fast_with_flat_memory() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let signer = Signer::new(&server, "admin", "admin");
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(raw_image(&api, &format!("img-{n}")).await);
    }
    let marker = &ids[1];
    // 3,000 keys keep the URI under hyper's 64 KiB limit.
    let keys = "sort_key=name&".repeat(3000);
    let glance_attack = format!("/v2/images?{keys}marker={marker}");
    let sort_attack = format!(
        "/v2/images?sort={}&marker={marker}",
        vec!["name:asc"; 3000].join(",")
    );
    let ims_attack = format!("/v2/cloudimages?{keys}marker={marker}");
    let before = peak_rss_kib(&server);
    let started = Instant::now();
    let attacks = (0..8).map(|n| {
        let (api, signer) = (&api, &signer);
        let (glance_attack, sort_attack, ims_attack) = (&glance_attack, &sort_attack, &ims_attack);
        async move {
            let t = Instant::now();
            if n % 3 == 2 {
                let (status, body) = signer.send(Method::GET, ims_attack, None).await;
                assert_eq!(status, 400, "{body}");
                assert_eq!(body["error"]["code"], "IMG.0001", "{body}");
            } else {
                let path = if n % 3 == 0 {
                    glance_attack
                } else {
                    sort_attack
                };
                let r = api
                    .req(Method::GET, path)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                let message = glance_message(r).await;
                assert!(message.contains("sort keys"), "{message}");
            }
            t.elapsed()
        }
    });
    let normal = async {
        let mut answered = 0;
        while started.elapsed() < Duration::from_millis(500) || answered < 5 {
            let r = api
                .req(Method::GET, "/v2/images?sort_key=name&sort_dir=asc")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["images"].as_array().unwrap().len(), 3);
            answered += 1;
        }
        answered
    };
    let (latencies, answered) = tokio::join!(futures::future::join_all(attacks), normal);
    assert!(answered >= 5);
    for latency in latencies {
        assert!(
            latency < Duration::from_secs(2),
            "an attack took {latency:?}"
        );
    }
    let grown = peak_rss_kib(&server).saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "peak memory grew by {grown} KiB during the attack"
    );

    // Repeated keys within the limit collapse to one key each: paging still works.
    let r = api
        .req(
            Method::GET,
            &format!(
                "/v2/images?sort_key=name&sort_key=name&sort_key=id&sort_dir=asc&marker={}",
                ids[0]
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let names: Vec<String> = r.json::<Value>().await.unwrap()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["img-1", "img-2"]);

    // Filters, tags and `in:` values are capped too.
    let tags = "tag=t&".repeat(21);
    let values = vec!["x"; 101].join(",");
    for path in [
        format!("/v2/images?{tags}"),
        format!("/v2/images?name=in:{values}"),
        format!(
            "/v2/images?{}",
            (0..21)
                .map(|n| format!("p{n}=v"))
                .collect::<Vec<_>>()
                .join("&")
        ),
    ] {
        let r = api.req(Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    // ListTags (IMS) goes through the same rule.
    let (status, body) = signer
        .send(Method::GET, &format!("/v1/cloudimages/tags?{tags}"), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "IMG.0001", "{body}");
}

/// M3: property values had no length limit (three 11 MB values through IMS, 1.9 MB
/// through Glance), and every list page carried them.
#[tokio::test]
async fn oversized_property_values_are_refused_in_every_api() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let signer = Signer::new(&server, "admin", "admin");

    // Glance create and PATCH: one byte over the column size is a 400.
    let r = api
        .req(Method::POST, "/v2/images")
        .json(
            &json!({"name": "big", "disk_format": "raw", "container_format": "bare",
                      "note": "x".repeat(65_536)}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let id = raw_image(&api, "props").await;
    let r = patch(
        &api,
        &id,
        json!([{"op": "add", "path": "/note", "value": "x".repeat(1_900_000)}]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let message = glance_message(r).await;
    assert!(message.contains("at most 65535"), "{message}");
    // Exactly the column size is fine.
    let r = patch(
        &api,
        &id,
        json!([{"op": "add", "path": "/note", "value": "x".repeat(65_535)}]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Values within the limit, but together past the per-image budget: 413.
    let many: Vec<Value> = (0..5)
        .map(|n| json!({"op": "add", "path": format!("/p{n}"), "value": "y".repeat(60_000)}))
        .collect();
    let r = patch(&api, &id, Value::Array(many)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // IMS PATCH of an active image: an IMG error, and the image is unchanged.
    let r = api.upload(&id, vec![0u8; 1024]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // A body past `[http] json_body_max` is refused before it is read (IMG.0059)...
    let (status, body) = signer
        .send(
            Method::PATCH,
            &format!("/v2/cloudimages/{id}"),
            Some(json!([{"op": "add", "path": "/huge", "value": "z".repeat(11_000_000)}])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "IMG.0059", "{body}");
    // ...and a value past the property limit in a body within it by the domain (IMG.0001).
    let (status, body) = signer
        .send(
            Method::PATCH,
            &format!("/v2/cloudimages/{id}"),
            Some(json!([{"op": "add", "path": "/huge", "value": "z".repeat(1_000_000)}])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "IMG.0001", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("at most 65535"), "{message}");
    let shown = api.show(&id).await;
    assert!(shown.get("huge").is_none());
    assert_eq!(shown["note"].as_str().unwrap().len(), 65_535);
}

/// M4: `/v1/cloudimages/members` batches were unbounded (a 350 KB body kept the catalog
/// busy for 434 s) and applied pair by pair, so a failure left half a batch behind.
#[tokio::test]
async fn sharing_batches_are_bounded_and_atomic() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let signer = Signer::new(&server, "admin", "admin");
    let mut ids = Vec::new();
    for n in 0..2 {
        let id = raw_image(&api, &format!("share-{n}")).await;
        let r = patch(
            &api,
            &id,
            json!([{"op": "replace", "path": "/visibility", "value": "shared"}]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        ids.push(id);
    }
    let projects: Vec<String> = (0..2000).map(|n| format!("project-{n}")).collect();

    // Oversized: refused at once, nothing written.
    let t = Instant::now();
    let (status, body) = signer
        .send(
            Method::DELETE,
            "/v1/cloudimages/members",
            Some(json!({"images": ids, "projects": projects})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "IMG.0001", "{body}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let fake_images: Vec<String> = (0..101).map(|_| uuid_like()).collect();
    let (status, body) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/members",
            Some(json!({"images": fake_images, "projects": ["p1"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Repeats count once: 150 mentions of 2 projects are a batch of 2.
    let repeated: Vec<&str> = ["p1", "p2"].iter().cycle().take(150).copied().collect();
    let (status, body) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/members",
            Some(json!({"images": [ids[0], ids[0]], "projects": repeated})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(members(&api, &ids[0]).await, ["p1", "p2"]);

    // Atomic: the second image does not exist, so the first gets no new member either.
    let (status, body) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/members",
            Some(json!({"images": [ids[1], uuid_like()], "projects": ["p3"]})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(members(&api, &ids[1]).await.is_empty());
    // The same pair without the bad image applies.
    let (status, body) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/members",
            Some(json!({"images": [ids[1]], "projects": ["p3"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(members(&api, &ids[1]).await, ["p3"]);
}

/// An image id that names no image.
fn uuid_like() -> String {
    ims_domain::image::ImageId::new().to_string()
}

async fn members(api: &Api, id: &str) -> Vec<String> {
    let r = api
        .req(Method::GET, &format!("/v2/images/{id}/members"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut out: Vec<String> = r.json::<Value>().await.unwrap()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// M7: the count quota was checked before the insert, so 12 parallel creates with a
/// quota of 3 all succeeded. Now exactly 3 do, in Glance and in IMS.
#[tokio::test]
async fn parallel_creates_cannot_exceed_the_count_quota() {
    let server = Server::start(&[("IMS_IMAGES__QUOTA_IMAGE_COUNT", "3")]).await;
    let api = Api::new(&server, server.admin_token().await);
    let creates = (0..12).map(|n| {
        let api = &api;
        async move {
            api.req(Method::POST, "/v2/images")
                .json(&json!({"name": format!("q{n}"), "disk_format": "raw", "container_format": "bare"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(creates).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::PAYLOAD_TOO_LARGE)
        .count();
    assert_eq!((created, refused), (3, 9), "{statuses:?}");
    let r = api.req(Method::GET, "/v2/images").send().await.unwrap();
    let listed = r.json::<Value>().await.unwrap()["images"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed, 3);

    // IMS data-image imports count against the same quota, atomically.
    let bucket = server.dir.join("buckets/quota");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("disk.raw"), vec![0u8; 4096]).unwrap();
    let signer = Signer::new(&server, "admin", "admin");
    let (status, body) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(json!({"name": "over", "image_url": "quota:disk.raw", "min_disk": 40})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "IMG.0015", "{body}");
}

/// L5: IMS import paths stored tags without the tag rule (a 100,001-character tag
/// starting with `=`, a NUL), while Glance refused them.
#[tokio::test]
async fn ims_imports_refuse_bad_tags() {
    let server = Server::start(&[]).await;
    let bucket = server.dir.join("buckets/tags");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("disk.raw"), vec![0u8; 4096]).unwrap();
    let signer = Signer::new(&server, "admin", "admin");
    let long = format!("={}", "a".repeat(100_000));
    let long_plain = "b".repeat(256);
    for (path, body) in [
        (
            "/v1/cloudimages/dataimages/action",
            json!({"name": "d", "image_url": "tags:disk.raw", "min_disk": 40, "tags": [long]}),
        ),
        (
            "/v1/cloudimages/dataimages/action",
            json!({"name": "d", "image_url": "tags:disk.raw", "min_disk": 40, "tags": ["a\u{0}b"]}),
        ),
        (
            "/v1/cloudimages/dataimages/action",
            json!({"name": "d", "image_url": "tags:disk.raw", "min_disk": 40, "tags": [long_plain]}),
        ),
        (
            "/v2/cloudimages/action",
            json!({"name": "s", "image_url": "tags:disk.raw", "min_disk": 40, "os_version": "Ubuntu 22.04 server 64bit",
                   "image_tags": [{"key": "", "value": "v"}]}),
        ),
        (
            "/v2/cloudimages/action",
            json!({"name": "s", "image_url": "tags:disk.raw", "min_disk": 40, "os_version": "Ubuntu 22.04 server 64bit",
                   "tags": ["=x"]}),
        ),
        (
            "/v2/cloudimages/action",
            json!({"name": "s", "image_url": "tags:disk.raw", "min_disk": 40, "os_version": "Ubuntu 22.04 server 64bit",
                   "data_images": [{"name": "dd", "image_url": "tags:disk.raw", "min_disk": 40, "tags": ["=y"]}]}),
        ),
    ] {
        let (status, answer) = signer.send(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["code"], "IMG.0115", "{answer}");
    }
    let (_, listed) = signer.send(Method::GET, "/v2/cloudimages", None).await;
    assert_eq!(listed["images"].as_array().unwrap().len(), 0, "{listed}");
    // A key/value tag longer than a plain tag is still fine.
    let (status, answer) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(
                json!({"name": "ok", "image_url": "tags:disk.raw", "min_disk": 40,
                        "tags": [format!("{}={}", "k".repeat(128), "v".repeat(255))]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// L6: saves compared only the status, so of two concurrent PATCHes of different
/// attributes one was silently undone. Now each PATCH either survives or gets a 409.
#[tokio::test]
async fn concurrent_patches_of_different_fields_all_survive_or_conflict() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let id = raw_image(&api, "contended").await;
    let patches = (0..16).map(|n| {
        let (api, id) = (&api, &id);
        async move {
            let op = if n == 0 {
                json!([{"op": "replace", "path": "/protected", "value": true}])
            } else {
                json!([{"op": "add", "path": format!("/field{n}"), "value": format!("v{n}")}])
            };
            (n, patch(api, id, op).await.status())
        }
    });
    let results = futures::future::join_all(patches).await;
    let image = api.show(&id).await;
    let mut applied = 0;
    for (n, status) in results {
        match status {
            StatusCode::OK => {
                applied += 1;
                if n == 0 {
                    assert_eq!(image["protected"], true, "{image}");
                } else {
                    assert_eq!(image[format!("field{n}")], format!("v{n}"), "{image}");
                }
            }
            StatusCode::CONFLICT => {}
            other => panic!("PATCH {n}: {other}"),
        }
    }
    assert!(applied >= 1);
    // Clean up the protection so the image can go.
    let r = patch(
        &api,
        &id,
        json!([{"op": "replace", "path": "/protected", "value": false}]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A body refused before it is read (past `json_body_max`) still gets its answer: the
/// server reads the rest while it answers instead of closing on a client that is still
/// sending, which clients report as a broken pipe or a reset, not as the error.
#[tokio::test]
async fn refused_bodies_are_answered_not_reset() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let signer = Signer::new(&server, "admin", "admin");
    let id = raw_image(&api, "refused").await;
    let huge = json!({"name": "big", "note": "x".repeat(8_000_000)});
    for _ in 0..10 {
        let r = api.req(Method::POST, "/v2/images").json(&huge).send().await;
        let r = r.expect("a refused Glance body is answered");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let patch = json!([{"op": "add", "path": "/huge", "value": "z".repeat(8_000_000)}]);
        let path = format!("/v2/cloudimages/{id}");
        let (status, body) = signer.send(Method::PATCH, &path, Some(patch)).await;
        assert_eq!((status, &body["error"]["code"]), (400, &json!("IMG.0059")));
    }
    // A client that is certainly still sending when the answer is ready: a chunked body
    // whose later part arrives after a pause, past the socket buffers' reach.
    for _ in 0..3 {
        let chunks = futures::stream::iter(0..8u8).then(|n| async move {
            if n == 2 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1 << 20]))
        });
        let r = api
            .req(Method::POST, "/v2/images")
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .expect("a refused streamed body is answered");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
