//! Three `ims serve` nodes on one catalog (the suite's PostgreSQL database in its
//! PostgreSQL pass, one SQLite file otherwise) and one S3 image store (s3s-fs), as behind
//! a load balancer (issue 16): any node serves what another wrote; a revoked token, a
//! replayed signature and a failing password count on every node; a node SIGKILLed
//! mid-import has its job finished by another exactly once; and nodes whose clocks are
//! 30 s off take no live job from each other.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::s3s::S3s;
use common::signed::Signer;
use common::{Api, Server, SlowSource, image_store_env, wait_status, wait_until};
use md5::Digest as _;
use reqwest::Method;
use serde_json::json;

/// The nodes and the store they share.
struct Cluster {
    nodes: Vec<Server>,
    s3: S3s,
    /// What every node after the first is started with: the first node's catalog, KMS
    /// master key and credential key (as `IMS_*` variables).
    joins: Vec<(String, String)>,
}

/// Three nodes; `skews` gives each node's clock error in seconds (a test fault the
/// catalog's clock corrects), `env` is added to every node's.
async fn cluster(env: &[(&str, &str)], skews: [i64; 3]) -> Cluster {
    let s3 = S3s::start();
    let mut shared: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    shared.extend(image_store_env(&s3));
    shared.push(("IMS_JOBS__LEASE_SECS".into(), "3".into()));
    let mut nodes: Vec<Server> = Vec::new();
    let mut joins = Vec::new();
    for skew in skews {
        let mut node_env = shared.clone();
        node_env.push(("IMS_TEST_CLOCK_SKEW_SECS".into(), skew.to_string()));
        let as_refs: Vec<(&str, &str)> = node_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let node = Server::start(&as_refs).await;
        if nodes.is_empty() {
            // Every further node joins the first one's catalog, with its KMS master key
            // (identical on every node: docs/DEPLOYMENT.md).
            let catalog = match &node.database {
                Some(db) => db.url.clone(),
                None => ims_db::sqlite_url(&node.dir.join("catalog.sqlite")),
            };
            let key = |file: &str| {
                let text = std::fs::read_to_string(node.dir.join(file)).unwrap();
                text.trim().to_string()
            };
            joins = vec![
                ("IMS_DATABASE_URL".into(), catalog),
                ("IMS_KMS__MASTER_KEY".into(), key("kms-master.key")),
                ("IMS_CREDENTIAL_KEY".into(), key("credential.key")),
            ];
            shared.extend(joins.iter().cloned());
        }
        nodes.push(node);
    }
    Cluster { nodes, s3, joins }
}

impl Cluster {
    /// Committed image objects in the store (not the upload journal, not parts).
    fn objects(&self) -> Vec<String> {
        self.s3
            .files()
            .into_iter()
            .filter(|f| f.starts_with("images/") && !f.contains(".upload"))
            .collect()
    }

    /// Multipart uploads in progress, or their journal entries.
    fn uploads(&self) -> Vec<String> {
        self.s3
            .files()
            .into_iter()
            .filter(|f| f.contains(".upload"))
            .collect()
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn get_images(server: &Server, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/v2/images", server.url))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn any_node_serves_what_another_wrote_and_guards_hold_on_all() {
    let c = cluster(
        &[
            ("IMS_AUTH__FAILURES_BEFORE_BACKOFF", "3"),
            ("IMS_HTTP__REPLAY_GRACE_SECS", "1"),
        ],
        [0, 0, 30],
    )
    .await;
    let [n1, n2, n3] = &c.nodes[..] else {
        unreachable!()
    };
    // Only the first node bootstraps (and writes clouds.yaml with the admin password).
    let password = n1.admin_password();
    let token = n1.admin_token().await;
    let (api1, api2, api3) = (
        Api::new(n1, token.clone()),
        Api::new(n2, token.clone()),
        Api::new(n3, token.clone()),
    );

    // Uploaded through node 1 (multipart: 12 MiB in 5 MiB parts), read through the
    // others, the skewed one included.
    let bytes = data(12 << 20);
    let id = api1.new_image("shared", "raw").await;
    assert_eq!(api1.upload(&id, bytes.clone()).await.status(), 204);
    assert_eq!(api2.download(&id).await, bytes);
    assert_eq!(api3.download(&id).await, bytes);
    assert_eq!(api3.show(&id).await["status"], "active");
    assert_eq!(c.objects().len(), 1, "{:?}", c.objects());
    // A token issued by the skewed node is good everywhere.
    let t3 = n3.token("admin", &password, "admin").await;
    assert_eq!(get_images(n1, &t3).await, 200);

    // A token revoked through node 1 stops working on the others, whose validations
    // are cached for at most 10 s.
    let victim = n1.admin_token().await;
    for n in [n2, n3] {
        assert_eq!(get_images(n, &victim).await, 200);
    }
    let r = reqwest::Client::new()
        .delete(format!("{}/v3/auth/tokens", n1.url))
        .header("x-auth-token", &token)
        .header("x-subject-token", &victim)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let revoked = Instant::now();
    assert_eq!(get_images(n1, &victim).await, 401);
    for n in [n2, n3] {
        wait_until(Duration::from_secs(15), || async {
            match get_images(n, &victim).await {
                401 => Ok(()),
                s => Err(format!("node at {} still answers {s}", n.url)),
            }
        })
        .await;
    }
    assert!(
        revoked.elapsed() < Duration::from_secs(11),
        "{:?}",
        revoked.elapsed()
    );

    // A signed write replayed to another node after the grace is refused there.
    let signer = Signer::new(n1, "admin", "admin");
    let rename = json!([{"op": "replace", "path": "/name", "value": "renamed"}]);
    let once = signer.prepare(
        Method::PATCH,
        &format!("/v2/cloudimages/{id}"),
        Some(rename),
    );
    let (status, body) = once.send_to(&n1.url).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = once.send_to(&n2.url).await;
    assert_eq!(status, 401, "a replay on another node was accepted: {body}");
    let fresh = signer.prepare(Method::GET, &format!("/v2/cloudimages?id={id}"), None);
    assert_eq!(fresh.send_to(&n2.url).await.0, 200);

    // Failed passwords counted on one node make the account wait on the others.
    for _ in 0..3 {
        assert_eq!(
            n1.issue_token("admin", "wrong", "admin").await.status(),
            401
        );
    }
    let r = n2.issue_token("admin", &password, "admin").await;
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body.to_string().contains("Too many failed attempts"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        n3.issue_token("admin", &password, "admin").await.status(),
        201
    );
}

/// Starts a web-download import of a slow 32 MiB source into a new image through `api`.
async fn slow_import(api: &Api, source: &SlowSource) -> String {
    let id = api.new_image("slow", "raw").await;
    let r = api.web_download(&id, &source.url("/disk.raw")).await;
    assert_eq!(r.status(), 202);
    id
}

const SLOW_SIZE: usize = 32 << 20;

fn slow_md5() -> String {
    hex::encode(md5::Md5::digest(vec![0x5au8; SLOW_SIZE]))
}

fn web_download_env() -> [(&'static str, &'static str); 2] {
    [
        ("IMS_WEB_DOWNLOAD__ALLOW_PRIVATE", "true"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
    ]
}

#[tokio::test]
async fn a_node_killed_mid_import_has_its_job_finished_by_another() {
    let mut c = cluster(&web_download_env(), [0, 0, 0]).await;
    let source = SlowSource::start(SLOW_SIZE, Duration::from_millis(150)).await;
    let token = c.nodes[0].admin_token().await;
    // Only node 3 runs while the import is asked for, so node 3 claims its job.
    c.nodes[0].signal("-STOP");
    c.nodes[1].signal("-STOP");
    let api3 = Api::new(&c.nodes[2], token.clone());
    let id = slow_import(&api3, &source).await;
    // Killed once its multipart upload is journaled (a kill between the upload's
    // creation and its journal entry leaves an upload only the bucket's lifecycle rule
    // removes: docs/DEPLOYMENT.md).
    wait_until(Duration::from_secs(20), || async {
        match c.uploads().iter().any(|f| f.contains(".uploads/")) {
            false => Err("node 3 has not journaled its upload".to_string()),
            true => Ok(()),
        }
    })
    .await;
    c.nodes[2].kill();
    c.nodes[0].signal("-CONT");
    c.nodes[1].signal("-CONT");

    let api1 = Api::new(&c.nodes[0], token.clone());
    let done = wait_status(&api1, &id, "active").await;
    assert_eq!(done["checksum"], slow_md5().as_str());
    assert_eq!(done["size"], SLOW_SIZE as u64);
    assert_eq!(source.requests(), 2, "exactly one takeover");
    let api2 = Api::new(&c.nodes[1], token);
    assert_eq!(api2.newest_task(&id).await.0, "success");
    assert_eq!(api2.download(&id).await.len(), SLOW_SIZE);
    assert_eq!(c.objects().len(), 1, "{:?}", c.objects());
    // The killed node's multipart upload is journaled; when it starts again it aborts it.
    assert!(!c.uploads().is_empty(), "the killed upload left no journal");
    // A node whose credential key differs from the catalog's would fail every signed
    // request: it is not allowed to start.
    let mut wrong_key: Vec<(&str, &str)> = c
        .joins
        .iter()
        .filter(|(k, _)| k != "IMS_CREDENTIAL_KEY")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let other_key = "ab".repeat(32);
    wrong_key.push(("IMS_CREDENTIAL_KEY", &other_key));
    let out = c.nodes[2].refused_start(&wrong_key).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("credential key is not the one"), "{err}");
    c.nodes[2].spawn().await;
    wait_until(Duration::from_secs(20), || async {
        match c.uploads() {
            left if left.is_empty() => Ok(()),
            left => Err(format!("uploads left: {left:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn nodes_with_clocks_30s_off_take_no_live_job() {
    // Node 3 runs 30 s behind (its leases would look long lapsed to the others), node 2
    // 30 s ahead (every lease would look lapsed to it): both follow the catalog's clock.
    let c = cluster(&web_download_env(), [0, 30, -30]).await;
    let source = SlowSource::start(SLOW_SIZE, Duration::from_millis(150)).await;
    let token = c.nodes[0].admin_token().await;
    c.nodes[0].signal("-STOP");
    c.nodes[1].signal("-STOP");
    let id = slow_import(&Api::new(&c.nodes[2], token.clone()), &source).await;
    wait_until(Duration::from_secs(20), || async {
        match source.requests() {
            0 => Err("node 3 has not started downloading".to_string()),
            _ => Ok(()),
        }
    })
    .await;
    c.nodes[0].signal("-CONT");
    c.nodes[1].signal("-CONT");
    let done = wait_status(&Api::new(&c.nodes[1], token), &id, "active").await;
    assert_eq!(done["checksum"], slow_md5().as_str());
    assert_eq!(source.requests(), 1, "a live job was taken over");
    assert_eq!(c.objects().len(), 1, "{:?}", c.objects());
}
