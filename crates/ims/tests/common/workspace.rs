//! Workspace image-server helpers shared by the workspace tests.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::disk::{qemu_io, run};
use super::signed::Signer;
use super::{Api, Server};

/// Polls a Workspace job until it ends; the final job.
pub async fn ended(signer: &Signer, job_id: &str) -> Value {
    let path = format!("/v1/{}/image-server-jobs/{job_id}", signer.project);
    super::wait_until(Duration::from_secs(120), || async {
        let (status, job) = signer.send(Method::GET, &path, None).await;
        match job["status"].as_str() {
            Some("SUCCESS" | "FAILED") if status == 200 => Ok(job),
            _ => Err(format!("{status} {job}")),
        }
    })
    .await
}

/// User `administrator`, a member of the admin project (the seed's authorised account).
pub fn add_administrator(server: &Server) {
    server.admin(&[
        "user",
        "create",
        "administrator",
        "--password",
        "Secret-pass1",
        "--project",
        "admin",
        "--role",
        "member",
    ]);
}

/// A qcow2 image of `size` whose first MiB is 0x11, uploaded through Glance with `extra`
/// attributes; its id.
pub async fn image(api: &Api, dir: &Path, name: &str, size: &str, extra: Value) -> String {
    let file = dir.join(format!("{name}.qcow2"));
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&file)
        .arg(size));
    qemu_io(&file, "qcow2", &["write -P 0x11 0 1M".into()]);
    let mut body = json!({"name": name, "disk_format": "qcow2", "container_format": "bare"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let created = api.create(body).await;
    let id = created["id"].as_str().unwrap().to_string();
    let r = api.upload(&id, std::fs::read(&file).unwrap()).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    id
}
