//! Job retries, black-box: an IMS data image imported from a bucket in an S3 store whose
//! GETs fail with 503 (a transient failure). The job is tried again after a growing
//! back-off; once the store answers, it succeeds; if the store keeps failing, the job
//! fails for good after a bounded number of attempts and leaves no data behind. The
//! attempts are counted, with their times, by the test's own store.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use common::signed::Signer;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The object's size: 1 MiB of zeros (a raw disk).
const SIZE: usize = 1 << 20;

/// A minimal S3 endpoint for one object: HEAD answers its size; a GET answers 503
/// `SlowDown` for the first `failing` GETs (all of them when `None`), then the data.
/// Records when each GET came.
#[derive(Clone)]
struct FlakyStore {
    port: u16,
    gets: Arc<Mutex<Vec<Instant>>>,
}

impl FlakyStore {
    async fn start(failing: Option<usize>) -> FlakyStore {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let gets = Arc::new(Mutex::new(Vec::new()));
        let store = FlakyStore { port, gets };
        let serving = store.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(sock, failing));
            }
        });
        store
    }

    /// Answers the requests of one connection (kept alive) until it closes.
    async fn serve(self, mut sock: tokio::net::TcpStream, failing: Option<usize>) {
        let mut buf = Vec::new();
        loop {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                let mut more = [0u8; 4096];
                match sock.read(&mut more).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&more[..n]),
                }
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end + 4);
            let method = head.split(' ').next().unwrap_or_default().to_string();
            let answer = match method.as_str() {
                "HEAD" => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nContent-Type: application/octet-stream\r\nETag: \"zeros\"\r\n\r\n"
                )
                .into_bytes(),
                "GET" => {
                    let n = {
                        let mut gets = self.gets.lock().unwrap();
                        gets.push(Instant::now());
                        gets.len()
                    };
                    if failing.is_none_or(|f| n <= f) {
                        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                            <Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                        format!(
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes()
                    } else {
                        let mut ok = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nContent-Type: application/octet-stream\r\nETag: \"zeros\"\r\n\r\n"
                        )
                        .into_bytes();
                        ok.extend(std::iter::repeat_n(0u8, SIZE));
                        ok
                    }
                }
                _ => b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n".to_vec(),
            };
            if sock.write_all(&answer).await.is_err() {
                return;
            }
        }
    }

    /// When each GET came.
    fn gets(&self) -> Vec<Instant> {
        self.gets.lock().unwrap().clone()
    }
}

/// A server whose bucket `flaky` lives in `store`.
async fn server_with(store: &FlakyStore) -> Server {
    let stores = format!(
        "{{ flaky = {{ kind = \"s3\", endpoint = \"http://127.0.0.1:{}\", access_key_id = \"AK\", secret_access_key = \"SK\", buckets = [\"flaky\"] }} }}",
        store.port
    );
    Server::start(&[("IMS_BUCKETS__STORES", stores.as_str())]).await
}

/// Creates a data image from `flaky:disk.raw` as the admin (who may use every bucket) and
/// returns the job's path.
async fn import(signer: &Signer) -> String {
    let (status, created) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(json!({"name": "flaky", "image_url": "flaky:disk.raw", "min_disk": 40})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    format!(
        "/v1/cloudimages/job/{}",
        created["job_id"].as_str().unwrap()
    )
}

async fn finished(signer: &Signer, job_path: &str) -> Value {
    common::wait_for("the job to end", Duration::from_secs(60), async || {
        let (status, job) = signer.send(Method::GET, job_path, None).await;
        assert_eq!(status, 200, "{job}");
        (job["status"] == "SUCCESS" || job["status"] == "FAIL").then_some(job)
    })
    .await
}

/// Seconds between consecutive GETs.
fn gaps(gets: &[Instant]) -> Vec<f64> {
    gets.windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect()
}

#[tokio::test]
async fn a_transient_failure_is_retried_after_a_pause_and_then_succeeds() {
    let store = FlakyStore::start(Some(1)).await;
    let server = server_with(&store).await;
    let signer = Signer::new(&server, "admin", "admin");
    let job_path = import(&signer).await;
    let job = finished(&signer, &job_path).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let gets = store.gets();
    assert_eq!(gets.len(), 2, "one failed attempt, one good one");
    let gap = gaps(&gets)[0];
    assert!(gap >= 1.0, "the retry waited only {gap:.2} s");
    let image_id = job["entities"]["image_id"].as_str().unwrap();
    let api = common::Api::new(&server, server.admin_token().await);
    let image = api.show(image_id).await;
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], SIZE);
}

#[tokio::test]
async fn a_job_that_keeps_failing_gives_up_after_its_attempts_and_leaves_nothing() {
    let store = FlakyStore::start(None).await;
    let server = server_with(&store).await;
    let signer = Signer::new(&server, "admin", "admin");
    let job_path = import(&signer).await;
    let job = finished(&signer, &job_path).await;
    assert_eq!(job["status"], "FAIL", "{job}");
    let gets = store.gets();
    let gaps = gaps(&gets);
    eprintln!("GETs {gaps:.2?} s apart");
    // A few attempts, not one and not a storm.
    assert!(
        (2..=5).contains(&gets.len()),
        "{} attempts, {gaps:.2?} s apart",
        gets.len()
    );
    // Backed off: no attempt right after the previous one, and the pauses grow.
    assert!(gaps.iter().all(|g| *g >= 1.0), "{gaps:.2?}");
    assert!(
        gaps.windows(2).all(|w| w[1] > w[0] * 1.3),
        "the pauses do not grow: {gaps:.2?}"
    );
    // No attempt after the job failed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.gets().len(), gets.len(), "attempts after FAIL");
    // The image is not usable and nothing of it is stored.
    let image_id = job["entities"]["image_id"].as_str().unwrap();
    let api = common::Api::new(&server, server.admin_token().await);
    let r = api
        .req(Method::GET, &format!("/v2/images/{image_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let image: Value = r.json().await.unwrap();
    // As after any failed IMS import (docs/API-COMPAT.md): killed, no data kept.
    assert_eq!(image["status"], "killed", "{image}");
    assert!(image["checksum"].is_null(), "{image}");
    assert!(
        job["fail_reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{job}"
    );
    let files = server.stored_files();
    assert!(files.is_empty(), "no data left behind: {files:?}");
}

#[tokio::test]
async fn a_job_whose_node_keeps_crashing_fails_after_its_attempts_and_the_image_is_queued() {
    // 40 MiB at 1 MiB per 50 ms: each fetch lasts about 2 s, long enough to crash it.
    let source = common::SlowSource::start(40 << 20, Duration::from_millis(50)).await;
    let mut server = Server::start(&[
        ("IMS_WEB_DOWNLOAD__ALLOW_PRIVATE", "true"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
        ("IMS_JOBS__LEASE_SECS", "3"),
    ])
    .await;
    let api = common::Api::new(&server, server.admin_token().await);
    let img = api
        .create(json!({"name": "crashy", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    let r = api.web_download(&id, &source.url("/disk.raw")).await;
    assert_eq!(r.status(), 202);
    // Crash the node each time an attempt has data on disk, until the job gives up.
    let mut crashes = 0;
    let message = loop {
        assert!(
            crashes <= 6,
            "the job never gave up after {crashes} crashes"
        );
        let api = common::Api::new(&server, server.admin_token().await);
        let outcome = common::wait_for(
            "an attempt or the end",
            Duration::from_secs(30),
            async || {
                let (status, message) = api.newest_task(&id).await;
                if status == "failure" || status == "success" {
                    return Some(Err((status, message)));
                }
                (source.requests() > crashes && server.bytes_being_written() > 0).then_some(Ok(()))
            },
        )
        .await;
        match outcome {
            Ok(()) => {
                server.kill();
                crashes += 1;
                server.spawn().await;
            }
            Err((status, message)) => {
                assert_eq!(status, "failure", "{message}");
                break message;
            }
        }
    };
    eprintln!("{crashes} crashes, then: {message}");
    assert!((2..=5).contains(&crashes), "{crashes} crashes: {message}");
    assert_eq!(source.requests(), crashes, "the last claim fetched nothing");
    assert!(message.contains("interrupted"), "{message}");
    let api = common::Api::new(&server, server.admin_token().await);
    let image = api.show(&id).await;
    assert_eq!(image["status"], "queued", "{image}");
    assert!(image["checksum"].is_null(), "{image}");
    let files = server.stored_files();
    assert!(files.is_empty(), "no data left behind: {files:?}");
}
