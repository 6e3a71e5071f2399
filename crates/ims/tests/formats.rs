//! Format inspection on the upload path, end to end through the OpenStack API: good
//! images become active with qemu's virtual size; unsafe or mismatched ones get 415,
//! stay queued, leave no data behind, and accept a good upload afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::sources::serve_bytes;
use common::{Api, Server};
use serde_json::{Value, json};

/// Runs `qemu-img` in `dir` and returns the path of the file it wrote (`out`).
fn qemu_img(dir: &Path, args: &[&str], out: &str) -> PathBuf {
    let status = Command::new("qemu-img")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("qemu-img is installed by scripts/test");
    assert!(
        status.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    dir.join(out)
}

/// A qcow2 overlay naming `base.qcow2` as its backing file: the classic unsafe image.
fn qcow2_with_backing_file(dir: &Path) -> PathBuf {
    qemu_img(
        dir,
        &["create", "-f", "qcow2", "base.qcow2", "1G"],
        "base.qcow2",
    );
    let args = [
        "create",
        "-f",
        "qcow2",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        "over.qcow2",
    ];
    qemu_img(dir, &args, "over.qcow2")
}

fn qemu_virtual_size(path: &Path) -> u64 {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", path.to_str().unwrap()])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["virtual-size"].as_u64().unwrap()
}

async fn new_image(api: &Api, disk_format: &str) -> String {
    let img = api
        .create(json!({"name": "fmt", "disk_format": disk_format, "container_format": "bare"}))
        .await;
    img["id"].as_str().unwrap().to_string()
}

fn files_of(server: &Server, id: &str) -> Vec<String> {
    server
        .stored_files()
        .into_iter()
        .filter(|f| f.contains(id))
        .collect()
}

/// Uploads `file` and expects a 415 naming `reason`; the image must stay queued with
/// nothing stored, and a good upload must then succeed.
async fn refused_then_recovers(
    server: &Server,
    api: &Api,
    disk_format: &str,
    file: &Path,
    reason: &str,
    good: &Path,
) {
    let id = new_image(api, disk_format).await;
    let r = api.upload(&id, std::fs::read(file).unwrap()).await;
    assert_eq!(r.status(), 415, "{file:?}");
    let body = r.text().await.unwrap();
    assert!(body.contains(reason), "{file:?}: {body}");
    let shown = api.show(&id).await;
    assert_eq!(shown["status"], "queued");
    assert!(shown["virtual_size"].is_null());
    assert!(
        files_of(server, &id).is_empty(),
        "data left behind: {:?}",
        server.stored_files()
    );
    let r = api.upload(&id, std::fs::read(good).unwrap()).await;
    assert_eq!(r.status(), 204);
    let shown = api.show(&id).await;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["virtual_size"], qemu_virtual_size(good));
}

#[tokio::test]
async fn good_images_become_active_with_qemus_virtual_size() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            "qcow2",
            qemu_img(d, &["create", "-f", "qcow2", "a.qcow2", "20G"], "a.qcow2"),
        ),
        (
            "vmdk",
            qemu_img(
                d,
                &[
                    "create",
                    "-f",
                    "vmdk",
                    "-o",
                    "subformat=streamOptimized",
                    "a.vmdk",
                    "3G",
                ],
                "a.vmdk",
            ),
        ),
        (
            "vhd",
            qemu_img(d, &["create", "-f", "vpc", "a.vhd", "1000M"], "a.vhd"),
        ),
        (
            "vhdx",
            qemu_img(d, &["create", "-f", "vhdx", "a.vhdx", "5G"], "a.vhdx"),
        ),
        (
            "vdi",
            qemu_img(d, &["create", "-f", "vdi", "a.vdi", "2G"], "a.vdi"),
        ),
        (
            "raw",
            qemu_img(d, &["create", "-f", "raw", "a.raw", "3M"], "a.raw"),
        ),
    ];
    for (disk_format, file) in cases {
        let id = new_image(&api, disk_format).await;
        let r = api.upload(&id, std::fs::read(&file).unwrap()).await;
        assert_eq!(r.status(), 204, "{disk_format}");
        let shown = api.show(&id).await;
        assert_eq!(shown["status"], "active");
        assert_eq!(
            shown["virtual_size"],
            qemu_virtual_size(&file),
            "{disk_format}"
        );
    }
}

#[tokio::test]
async fn unsafe_and_mismatched_uploads_are_refused_and_leave_nothing() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_qcow2 = qemu_img(
        d,
        &["create", "-f", "qcow2", "good.qcow2", "1G"],
        "good.qcow2",
    );
    let good_vmdk = qemu_img(d, &["create", "-f", "vmdk", "good.vmdk", "1G"], "good.vmdk");
    let backing = qcow2_with_backing_file(d);
    refused_then_recovers(
        &server,
        &api,
        "qcow2",
        &backing,
        "backing file",
        &good_qcow2,
    )
    .await;

    // A qcow2 whose header sets the external data-file bit, crafted by hand.
    let mut bytes = std::fs::read(&good_qcow2).unwrap();
    bytes[79] |= 0x04;
    let data_file = d.join("datafile.qcow2");
    std::fs::write(&data_file, bytes).unwrap();
    refused_then_recovers(
        &server,
        &api,
        "qcow2",
        &data_file,
        "external file",
        &good_qcow2,
    )
    .await;

    // A VMDK descriptor with a flat extent at a host path (CVE-2022-47951).
    let descriptor = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
                      createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/passwd\" 0\n";
    let evil_vmdk = d.join("evil.vmdk");
    std::fs::write(&evil_vmdk, descriptor).unwrap();
    refused_then_recovers(
        &server,
        &api,
        "vmdk",
        &evil_vmdk,
        "names a path",
        &good_vmdk,
    )
    .await;

    // Unlike Glance, a qcow2 declared as raw is refused.
    let raw = qemu_img(d, &["create", "-f", "raw", "good.raw", "1M"], "good.raw");
    refused_then_recovers(&server, &api, "raw", &good_qcow2, "does not match", &raw).await;

    // A polyglot: a qcow2 that also ends in a fixed VHD footer.
    let fixed = qemu_img(
        d,
        &[
            "create",
            "-f",
            "vpc",
            "-o",
            "subformat=fixed",
            "f.vhd",
            "1M",
        ],
        "f.vhd",
    );
    let footer = std::fs::read(&fixed).unwrap();
    let mut both = std::fs::read(&good_qcow2).unwrap();
    both.extend_from_slice(&footer[footer.len() - 512..]);
    let polyglot = d.join("polyglot.qcow2");
    std::fs::write(&polyglot, both).unwrap();
    refused_then_recovers(
        &server,
        &api,
        "qcow2",
        &polyglot,
        "more than one format",
        &good_qcow2,
    )
    .await;
}

#[test]
fn ims_inspect_reports_format_size_and_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inspect = |file: &Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ims"))
            .arg("inspect")
            .args(extra)
            .arg("--json")
            .arg(file)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), report)
    };
    let big = qemu_img(
        d,
        &["create", "-f", "qcow2", "big.qcow2", "100G"],
        "big.qcow2",
    );
    let (code, report) = inspect(&big, &["--format", "qcow2"]);
    assert_eq!(code, Some(0));
    assert_eq!(report["format"], "qcow2");
    assert_eq!(report["virtual_size"], 100u64 << 30);
    assert_eq!(report["safe"], true);

    let over = qcow2_with_backing_file(d);
    let (code, report) = inspect(&over, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(report["safe"], false);
    assert_eq!(report["problems"][0]["check"], "backing_file");

    let (code, report) = inspect(&big, &["--format", "raw"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        report["reason"],
        "Image disk_format raw does not match stream data qcow2"
    );
}

#[tokio::test]
async fn web_download_of_an_unsafe_image_fails_the_import_and_stores_nothing() {
    let env = [
        ("IMS_WEB_DOWNLOAD__ALLOW_PRIVATE", "true"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
    ];
    let server = Server::start(&env).await;
    let api = Api::new(&server, server.admin_token().await);
    let dir = tempfile::tempdir().unwrap();
    let over = qcow2_with_backing_file(dir.path());
    let port = serve_bytes(std::fs::read(over).unwrap()).await;
    let id = new_image(&api, "qcow2").await;
    let r = api
        .req(reqwest::Method::POST, &format!("/v2/images/{id}/import"))
        .json(&json!({"method": {"name": "web-download", "uri": format!("http://127.0.0.1:{port}/over.qcow2")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let tasks = loop {
        let tasks: Value = api
            .req(reqwest::Method::GET, &format!("/v2/images/{id}/tasks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if tasks["tasks"][0]["status"] == "failure" {
            break tasks;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "import did not fail: {tasks}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let message = tasks["tasks"][0]["message"].as_str().unwrap();
    assert!(message.contains("backing file"), "{message}");
    assert_eq!(api.show(&id).await["status"], "queued");
    assert!(
        files_of(&server, &id).is_empty(),
        "{:?}",
        server.stored_files()
    );
}
