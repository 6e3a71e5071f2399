//! Encrypted-image helpers shared by the encryption and KMS tests: KMS calls, IMS data
//! images with a `cmk_id`, copies, and reads of image data.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::signed::Signer;
use super::{Api, Server};

pub const SEGMENT: usize = 1 << 16;
/// Written into the file at every 4 KiB; must not appear in the store.
pub const MARKER: &[u8] = b"PLAINTEXT-MARKER-15";

pub fn content() -> Vec<u8> {
    let len = 5 * SEGMENT + 1234;
    let mut data: Vec<u8> = (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for at in (0..len - MARKER.len()).step_by(4096) {
        data[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    data
}

pub async fn kms(signer: &Signer, op: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1.0/{}/kms/{op}", signer.project);
    signer.send(Method::POST, &path, Some(body)).await
}

pub async fn new_key(signer: &Signer, alias: &str) -> String {
    let (status, made) = kms(signer, "create-key", json!({"key_alias": alias})).await;
    assert_eq!(status, 200, "{made}");
    made["key_info"]["key_id"].as_str().unwrap().to_string()
}

/// Waits for an IMS job to end; returns it.
pub async fn job_end(signer: &Signer, created: &Value) -> Value {
    let path = format!(
        "/v1/cloudimages/job/{}",
        created["job_id"].as_str().expect("a job id")
    );
    super::wait_until(Duration::from_secs(60), || async {
        let (_, job) = signer.send(Method::GET, &path, None).await;
        match job["status"].as_str() {
            Some("SUCCESS" | "FAIL") => Ok(job),
            _ => Err(format!("still running: {job}")),
        }
    })
    .await
}

pub fn image_of(job: &Value) -> String {
    job["entities"]["image_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no image id: {job}"))
        .to_string()
}

/// A server, the admin's signer and API, the content in bucket `enc`, and a new key.
pub async fn setup() -> (Server, Signer, Api, Vec<u8>, String) {
    setup_with(&[]).await
}

/// [`setup`] with `env` for the server.
pub async fn setup_with(env: &[(&str, &str)]) -> (Server, Signer, Api, Vec<u8>, String) {
    let server = Server::start(env).await;
    let signer = Signer::new(&server, "admin", "admin");
    let api = Api::new(&server, server.admin_token().await);
    let data = content();
    let bucket = server.dir.join("buckets/enc");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("disk.raw"), &data).unwrap();
    let key = new_key(&signer, "images").await;
    (server, signer, api, data, key)
}

/// Seed 000's body with `cmk_id`; the ended job.
pub async fn sealed_image(signer: &Signer, cmk_id: &str) -> Value {
    let (status, created) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(
                json!({"name": "sealed", "image_url": "enc:disk.raw", "min_disk": 40,
                        "cmk_id": cmk_id}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    job_end(signer, &created).await
}

/// A system-disk image encrypted under `cmk_id`, imported through IMS from a qcow2 file
/// of `size` made in bucket `bucket` with `writes` (qemu-io commands) applied; its id.
pub async fn sealed_system_image(
    server: &Server,
    signer: &Signer,
    bucket: &str,
    size: &str,
    writes: &[String],
    cmk_id: &str,
) -> String {
    let dir = server.dir.join("buckets").join(bucket);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sys.qcow2");
    super::disk::run(
        std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&file)
            .arg(size),
    );
    if !writes.is_empty() {
        super::disk::qemu_io(&file, "qcow2", writes);
    }
    let (status, made) = signer
        .send(
            Method::POST,
            "/v2/cloudimages/action",
            Some(
                json!({"name": "sealed-sys", "image_url": format!("{bucket}:sys.qcow2"),
                        "min_disk": 1, "os_version": "Ubuntu 22.04 server 64bit",
                        "cmk_id": cmk_id}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let job = job_end(signer, &made).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    image_of(&job)
}

/// `GET …/file` of image `id`, optionally with a `Range` header.
pub async fn get_file(api: &Api, id: &str, range: Option<(usize, usize)>) -> reqwest::Response {
    try_get_file(api, id, range).await.unwrap()
}

/// As [`get_file`]; a response cut off before its headers (a body that fails at once)
/// is an error.
pub async fn try_get_file(
    api: &Api,
    id: &str,
    range: Option<(usize, usize)>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = api.req(Method::GET, &format!("/v2/images/{id}/file"));
    if let Some((first, last)) = range {
        req = req.header("Range", format!("bytes={first}-{last}"));
    }
    req.send().await
}

pub async fn copy(signer: &Signer, source: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1/cloudimages/{source}/copy");
    signer.send(Method::POST, &path, Some(body)).await
}

/// Status and body of a ranged read; status 0 when the response was cut off before its
/// headers, and only the bytes that arrived when its body was cut off.
pub async fn ranged(api: &Api, id: &str, first: usize, last: usize) -> (u16, Vec<u8>) {
    match try_get_file(api, id, Some((first, last))).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (
                status,
                r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            )
        }
        Err(_) => (0, Vec::new()),
    }
}
