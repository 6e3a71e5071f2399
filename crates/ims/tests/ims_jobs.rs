//! IMS jobs survive a crash: a 2 GiB data image import killed mid-stream is taken up again
//! once its lease lapses and finishes, leaving exactly one copy of the data.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::signed::Signer;
use md5::Digest as _;
use serde_json::json;

#[tokio::test]
async fn a_data_image_job_killed_mid_stream_resumes_and_finishes() {
    let mut server = Server::start(&[("IMS_JOBS__LEASE_SECS", "3")]).await;
    // A 2 GiB raw disk in the embedded bucket (the size), written and hashed in
    // 1 MiB blocks so the test itself stays small.
    let bucket = server.dir.join("buckets/crash");
    std::fs::create_dir_all(&bucket).unwrap();
    let block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(bucket.join("big.raw")).unwrap());
    let mut hasher = md5::Md5::new();
    for n in 0u64..2048 {
        let mut chunk = block.clone();
        chunk[..8].copy_from_slice(&n.to_le_bytes());
        if n == 0 {
            chunk[510] = 0;
        }
        hasher.update(&chunk);
        std::io::Write::write_all(&mut file, &chunk).unwrap();
    }
    std::io::Write::flush(&mut file).unwrap();
    drop(file);
    let md5 = hex::encode(hasher.finalize());

    let signer = Signer::new(&server, "admin", "admin");
    let (status, created) = signer
        .send(
            reqwest::Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(json!({"name": "crash", "image_url": "crash:big.raw", "min_disk": 40})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let job_path = format!(
        "/v1/cloudimages/job/{}",
        created["job_id"].as_str().unwrap()
    );
    // The heartbeat (every lease/3 = 1 s) reports how far the stream has come.
    let started = Instant::now();
    // Until a worker claims it the job is INIT; it must never be seen ending before the
    // crash.
    let running = loop {
        let (_, job) = signer.send(reqwest::Method::GET, &job_path, None).await;
        assert!(
            job["status"] == "INIT" || job["status"] == "RUNNING",
            "{job}"
        );
        if job["status"] == "RUNNING"
            && job["entities"]["process_percent"].as_f64().unwrap_or(0.0) > 0.0
        {
            break job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no progress reported: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(running["entities"]["process_percent"].as_f64().unwrap() < 100.0);
    server.kill();

    server.spawn().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let job = loop {
        let (status, job) = signer.send(reqwest::Method::GET, &job_path, None).await;
        assert_eq!(status, 200, "{job}");
        if job["status"] == "SUCCESS" || job["status"] == "FAIL" {
            break job;
        }
        assert!(Instant::now() < deadline, "job stuck: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let image_id = job["entities"]["image_id"].as_str().unwrap();
    let api = common::Api::new(&server, server.admin_token().await);
    let image = api.show(image_id).await;
    assert_eq!(image["status"], "active");
    assert_eq!(image["checksum"], md5);
    assert_eq!(image["disk_format"], "raw");
    let files: Vec<String> = server
        .stored_files()
        .into_iter()
        .filter(|f| !f.contains("/buckets/"))
        .collect();
    assert_eq!(
        files.iter().filter(|f| f.contains(image_id)).count(),
        1,
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.contains("/.tmp/")),
        "partial writes remain: {files:?}"
    );
}
