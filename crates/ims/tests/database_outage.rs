//! The catalog database stops and comes back while clients keep calling: every request
//! either succeeds or fails cleanly with 503 in Glance's error body (never a 500, never a
//! hang past the acquire timeout), service resumes by itself once the database is back,
//! and no image or job is left stuck mid-transfer.
//!
//! The test needs a PostgreSQL cluster it may stop, so it starts its own with
//! `scripts/pg` (never the shared `IMS_TEST_DATABASE_URL` server). It runs whenever
//! PostgreSQL server binaries are installed (scripts/test installs them and runs it once,
//! in the PostgreSQL pass). Without them it fails when `IMS_TEST_DATABASE_URL` is set (a
//! PostgreSQL run must not silently lose it) and is skipped with a message otherwise, so
//! `cargo test` still works on a machine with SQLite only.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `scripts/pg` can start a cluster without installing anything.
fn postgres_installed() -> bool {
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| d.join("pg_ctl").is_file() && d.join("initdb").is_file())
    });
    on_path
        || std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .any(|v| v.path().join("bin/pg_ctl").is_file())
}

/// A cluster of this test's own, removed at the end.
struct Cluster {
    dir: PathBuf,
    url: String,
}

impl Cluster {
    fn pg(&self, cmd: &str) -> String {
        let out = Command::new(repo().join("scripts/pg"))
            .arg(cmd)
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/pg {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn start(dir: PathBuf) -> Cluster {
        let mut c = Cluster {
            dir,
            url: String::new(),
        };
        let line = c.pg("start");
        c.url = line
            .trim()
            .strip_prefix("export IMS_TEST_DATABASE_URL=")
            .unwrap()
            .to_string();
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/pg"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// What the clients saw.
#[derive(Default)]
struct Outcomes {
    ok: usize,
    unavailable: usize,
    /// Anything else: status and body.
    bad: Vec<(u16, String)>,
}

impl Outcomes {
    fn record(&mut self, status: u16, body: String) {
        match status {
            200..=299 => self.ok += 1,
            503 => {
                // Glance's error body, asked for as JSON.
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if v["code"] == "503 Service Unavailable" && v["title"] == "Service Unavailable" {
                    self.unavailable += 1;
                } else {
                    self.bad.push((status, body));
                }
            }
            _ => self.bad.push((status, body)),
        }
    }
}

/// One client: create an image, upload a little data, list; again and again.
async fn client(api: Arc<Api>, stop: Arc<AtomicBool>, seen: Arc<std::sync::Mutex<Outcomes>>) {
    let send = |req: reqwest::RequestBuilder| async move {
        let started = Instant::now();
        let r = req
            .header("accept", "application/json")
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("the server answers (no hang, no dropped connection)");
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a request took {:?} ({status})",
            started.elapsed()
        );
        (status, body)
    };
    while !stop.load(Ordering::Relaxed) {
        let (status, body) = send(
            api.req(Method::POST, "/v2/images")
                .json(&json!({"name": "load", "disk_format": "raw", "container_format": "bare"})),
        )
        .await;
        seen.lock().unwrap().record(status, body.clone());
        if status == 201 {
            let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            let (status, body) = send(
                api.req(Method::PUT, &format!("/v2/images/{id}/file"))
                    .header("content-type", "application/octet-stream")
                    .body(vec![7u8; 256 << 10]),
            )
            .await;
            seen.lock().unwrap().record(status, body);
        }
        let (status, body) = send(api.req(Method::GET, "/v2/images?limit=5")).await;
        seen.lock().unwrap().record(status, body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_images(api: &Api) -> Vec<Value> {
    let r = api
        .req(Method::GET, "/v2/images?limit=1000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["images"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_database_restart_under_load_gives_503s_then_recovers_with_nothing_stuck() {
    if !postgres_installed() {
        assert!(
            ims_db::scratch::server_url().is_none(),
            "IMS_TEST_DATABASE_URL is set but no PostgreSQL server binaries were found \
             (scripts/pg start installs them)"
        );
        eprintln!(
            "SKIPPED: no PostgreSQL server binaries (pg_ctl, initdb); scripts/test installs \
             them and runs this test in its PostgreSQL pass"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(tmp.path().join("pg"));
    let db_url = ims_db::scratch::create(&cluster.url, "outage")
        .await
        .unwrap();
    let source = common::SlowSource::start(12 << 20, Duration::from_millis(500)).await;
    let server = Server::start(&[
        ("IMS_DATABASE_URL", db_url.as_str()),
        ("IMS_DATABASE__ACQUIRE_TIMEOUT_SECS", "2"),
        ("IMS_JOBS__LEASE_SECS", "3"),
        ("IMS_WEB_DOWNLOAD__ALLOW_PRIVATE", "true"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
    ])
    .await;
    let api = Arc::new(Api::new(&server, server.admin_token().await));

    // A job that is still downloading when the database goes away (about 6 s).
    let import = api
        .create(json!({"name": "import", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let import_id = import["id"].as_str().unwrap().to_string();
    let r = api
        .req(Method::POST, &format!("/v2/images/{import_id}/import"))
        .json(&json!({"method": {"name": "web-download",
                                 "uri": source.url("/disk.raw")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::Mutex::new(Outcomes::default()));
    let clients: Vec<_> = (0..4)
        .map(|_| tokio::spawn(client(api.clone(), stop.clone(), seen.clone())))
        .collect();

    common::wait_for(
        "the load and the download to run before the outage",
        Duration::from_secs(30),
        async || (seen.lock().unwrap().ok > 0 && source.requests() > 0).then_some(()),
    )
    .await;
    tokio::task::spawn_blocking({
        let dir = cluster.dir.clone();
        move || {
            let out = Command::new(repo().join("scripts/pg"))
                .arg("halt")
                .arg(&dir)
                .output()
                .unwrap();
            assert!(out.status.success());
        }
    })
    .await
    .unwrap();
    // Past the token-validation cache (10 s), so authentication meets the outage too.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let r = reqwest::get(format!("{}/healthcheck", server.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "the health check reports the outage");
    let during = seen.lock().unwrap().unavailable;
    assert!(during > 0, "clients met the outage");

    tokio::task::spawn_blocking({
        let dir = cluster.dir.clone();
        move || {
            let out = Command::new(repo().join("scripts/pg"))
                .arg("start")
                .arg(&dir)
                .output()
                .unwrap();
            assert!(out.status.success());
        }
    })
    .await
    .unwrap();
    // Service resumes by itself.
    let back = Instant::now();
    let ok_at_restart = seen.lock().unwrap().ok;
    while seen.lock().unwrap().ok < ok_at_restart + 10 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "no recovery 30 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let outcomes = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        outcomes.bad.is_empty(),
        "only successes and Glance 503s: {:?}",
        &outcomes.bad[..outcomes.bad.len().min(5)]
    );

    // Nothing stuck: abandoned uploads go back to queued once their lease (3 s) lapses,
    // and the import job is taken up again and finishes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let images = all_images(&api).await;
        let stuck: Vec<String> = images
            .iter()
            .filter(|i| i["status"] != "active" && i["status"] != "queued")
            .map(|i| format!("{} {}", i["name"], i["status"]))
            .collect();
        if stuck.is_empty() {
            let import = images
                .iter()
                .find(|i| i["id"] == import_id.as_str())
                .unwrap();
            assert_eq!(import["size"], 12 << 20);
            break;
        }
        assert!(Instant::now() < deadline, "stuck after recovery: {stuck:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = reqwest::get(format!("{}/healthcheck", server.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eprintln!(
        "outage: {} successes, {} clean 503s",
        outcomes.ok, outcomes.unavailable
    );
    drop(server);
    let _ = ims_db::scratch::drop(&cluster.url, &db_url).await;
}
