//! Two `ims serve` processes on one catalog: a node paused past its job's lease (SIGSTOP)
//! loses the job to the other node and, when it resumes, writes nothing more for it.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Api, Server};
use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIZE: usize = 8 << 20;
const CHUNK: usize = 64 << 10;

/// What the source has seen: requests, and bytes sent to the first one.
#[derive(Default)]
struct Source {
    requests: AtomicUsize,
    trickled: AtomicUsize,
}

/// Serves `SIZE` bytes of 0x5a: to the first request slowly (64 KiB every 100 ms, so its
/// import takes more than ten seconds), to every later one at once.
async fn source() -> (u16, Arc<Source>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Source::default());
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let first = state.requests.fetch_add(1, Ordering::SeqCst) == 0;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
                );
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![0x5au8; CHUNK];
                for _ in 0..SIZE / CHUNK {
                    if sock.write_all(&chunk).await.is_err() {
                        return;
                    }
                    if first {
                        state.trickled.fetch_add(CHUNK, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
        }
    });
    (port, seen)
}

async fn wait_until(what: &str, secs: u64, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log(server: &Server) -> String {
    std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default()
}

#[tokio::test]
async fn a_node_paused_past_its_job_lease_writes_nothing_more() {
    let (port, seen) = source().await;
    let env = [
        ("IMS_WEB_DOWNLOAD__ALLOW_PRIVATE", "true"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
        ("IMS_JOBS__LEASE_SECS", "3"),
    ];
    let first = Server::start(&env).await;
    let token = first.admin_token().await;
    let api = Api::new(&first, token.clone());
    let img = api
        .create(json!({"name": "wd", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    let uri = format!("http://127.0.0.1:{port}/disk.raw");
    let r = api
        .req(Method::POST, &format!("/v2/images/{id}/import"))
        .json(&json!({"method": {"name": "web-download", "uri": uri}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_until("the first node's download", 20, async || {
        seen.trickled.load(Ordering::SeqCst) >= 8 * CHUNK
    })
    .await;

    // A second node on the same catalog, with a data dir (and node id) of its own.
    let catalog = match &first.database {
        Some(db) => db.url.clone(),
        None => ims_db::sqlite_url(&first.dir.join("catalog.sqlite")),
    };
    // Every node of a cluster has the same KMS master key and credential key
    // (docs/DEPLOYMENT.md).
    let master = std::fs::read_to_string(first.dir.join("kms-master.key")).unwrap();
    let credential = std::fs::read_to_string(first.dir.join("credential.key")).unwrap();
    let mut second_env = env.to_vec();
    second_env.push(("IMS_DATABASE_URL", &catalog));
    second_env.push(("IMS_KMS__MASTER_KEY", master.trim()));
    second_env.push(("IMS_CREDENTIAL_KEY", credential.trim()));
    let second = Server::start(&second_env).await;
    let api2 = Api::new(&second, token);

    first.signal("-STOP");
    wait_until("the second node to take the job over", 30, async || {
        seen.requests.load(Ordering::SeqCst) >= 2
    })
    .await;
    wait_until("the second node's import", 30, async || {
        api2.show(&id).await["status"] == "active"
    })
    .await;
    let done = api2.show(&id).await;
    assert_eq!(
        done["checksum"],
        hex::encode(md5::Md5::digest(vec![0x5au8; SIZE]))
    );
    assert_eq!(
        second.stored_files().len(),
        1,
        "{:?}",
        second.stored_files()
    );

    first.signal("-CONT");
    wait_until("the first node to notice its loss", 20, async || {
        log(&first).contains("lost the job lease")
    })
    .await;
    // Time for anything it would still write (its download, a retry, an outcome).
    tokio::time::sleep(Duration::from_secs(4)).await;

    // No committed blob of the first node. Known gap (ims-blob): a temp file whose
    // create was in flight on the disk pool when the job's future was dropped can stay
    // in `.tmp` until the node's next start-up recovery removes it.
    let files: Vec<_> = first
        .stored_files()
        .into_iter()
        .filter(|f| !f.contains("/.tmp/"))
        .collect();
    assert!(
        files.is_empty(),
        "the first node left data behind: {files:?}"
    );
    let now = api2.show(&id).await;
    for key in ["status", "checksum", "size", "os_hash_value", "updated_at"] {
        assert_eq!(now[key], done[key], "{key} changed after the loss");
    }
    let tasks: Value = api2
        .req(Method::GET, &format!("/v2/images/{id}/tasks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tasks["tasks"][0]["status"], "success", "{tasks}");
    let first_log = log(&first);
    assert!(
        !first_log.contains("job finished") && !first_log.contains("job failed"),
        "the first node recorded an outcome: {first_log}"
    );
    assert!(log(&second).contains("job finished"));
}
