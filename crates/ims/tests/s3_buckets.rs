//! IMS bucket flows with a bucket in S3 (s3s-fs on loopback) instead of the embedded
//! directories: `ims bucket put` a qcow2 there, make a data image from it, export the
//! image back, and the IMS codes for a missing bucket, a missing object and an existing
//! target. Buckets not named by the S3 store stay in the embedded store.

mod common;

use common::s3s;

use std::path::Path;
use std::process::{Command, Output};

use common::signed::Signer;
use common::signed::wait_job;
use common::{Server, ims_bucket};
use md5::Digest as _;
use reqwest::Method;
use s3s::S3s;
use serde_json::{Value, json};

fn s3_config(dir: &Path, s3: &S3s) -> std::path::PathBuf {
    let path = dir.join("ims.toml");
    std::fs::write(
        &path,
        format!(
            "[buckets.stores.east]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\
             buckets = [\"image-test\", \"absent-bucket\"]\n",
            s3.endpoint,
            s3s::REGION,
            s3s::ACCESS_KEY,
            s3s::SECRET_KEY
        ),
    )
    .unwrap();
    path
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn data_image_from_an_s3_bucket_and_export_back() {
    let s3 = S3s::start();
    s3.bucket("image-test");
    let work = tempfile::tempdir().unwrap();
    let config = s3_config(work.path(), &s3);
    let config_arg = config.to_str().unwrap();
    // Debug logging everywhere, to show that the secret key never reaches the log.
    let server = Server::start(&[("IMS_CONFIG", config_arg), ("RUST_LOG", "debug")]).await;

    // A qcow2 with 40 MiB of data: its upload is a three-part multipart upload.
    let disk = work.path().join("data1.qcow2");
    let disk_arg = disk.to_str().unwrap();
    run("qemu-img", &["create", "-q", "-f", "qcow2", disk_arg, "1G"]);
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 7 1M 40M", disk_arg],
    );
    let bytes = std::fs::read(&disk).unwrap();
    assert!(bytes.len() > 2 * ims_blob::PART_SIZE);

    ok(ims_bucket(
        Some(&config),
        &server.dir,
        &["put", disk_arg, "image-test:disks/data1.qcow2"],
    ));
    assert_eq!(
        std::fs::read(s3.root.join("image-test/disks/data1.qcow2")).unwrap(),
        bytes,
        "the object is in S3"
    );
    assert!(!server.dir.join("buckets/image-test").exists());
    assert_eq!(
        ok(ims_bucket(
            Some(&config),
            &server.dir,
            &["ls", "image-test:disks/"]
        ))
        .trim(),
        format!("{} disks/data1.qcow2", bytes.len())
    );
    let again = ims_bucket(
        Some(&config),
        &server.dir,
        &["put", disk_arg, "image-test:disks/data1.qcow2"],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let create = ims_bucket(Some(&config), &server.dir, &["create", "image-test"]);
    assert!(!create.status.success());
    assert!(
        String::from_utf8_lossy(&create.stderr).contains("object store's own tools"),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );
    // Other buckets are still the embedded ones.
    // With the server's environment: the command records the bucket in its catalog.
    server.cli(&["bucket", "create", "local-bucket"]);
    assert!(server.dir.join("buckets/local-bucket").is_dir());

    let signer = Signer::new(&server, "admin", "admin");
    let create_from = |url: &str| json!({"name": "from-s3", "image_url": url, "min_disk": 40, "description": "S3"});

    let (status, created) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(create_from("image-test:disks/data1.qcow2")),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let job = wait_job(&signer, created["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let image_id = job["entities"]["image_id"].as_str().unwrap().to_string();
    let api = common::Api::new(&server, server.admin_token().await);
    let image = api.show(&image_id).await;
    assert_eq!(image["status"], "active");
    assert_eq!(image["disk_format"], "qcow2");
    assert_eq!(image["size"], bytes.len() as u64);
    assert_eq!(image["virtual_size"], 1u64 << 30);
    assert_eq!(image["checksum"], hex::encode(md5::Md5::digest(&bytes)));

    // A missing bucket and a missing object, told apart by the S3 adapter.
    for (url, want) in [
        ("absent-bucket:disks/data1.qcow2", "IMG.0069"),
        ("image-test:disks/missing.qcow2", "IMG.0057"),
    ] {
        let (status, body) = signer
            .send(
                Method::POST,
                "/v1/cloudimages/dataimages/action",
                Some(create_from(url)),
            )
            .await;
        assert_eq!((status, code(&body)), (400, want), "{url}: {body}");
    }

    // Export to the S3 bucket, read it back; the same target again is IMG.0070.
    let export = |target: &str| json!({"bucket_url": target, "file_format": "qcow2"});
    let export_path = format!("/v1/cloudimages/{image_id}/file");
    let (status, body) = signer
        .send(
            Method::POST,
            &export_path,
            Some(export("image-test:exports/out.qcow2")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let job = wait_job(&signer, body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let back = work.path().join("back.qcow2");
    ok(ims_bucket(
        Some(&config),
        &server.dir,
        &[
            "get",
            "image-test:exports/out.qcow2",
            back.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read(&back).unwrap(), bytes, "exported unchanged");
    assert!(s3.root.join("image-test/exports/out.qcow2").is_file());
    for (target, want) in [
        ("image-test:exports/out.qcow2", "IMG.0070"),
        ("image-test:disks/data1.qcow2", "IMG.0070"),
        ("absent-bucket:out.qcow2", "IMG.0069"),
    ] {
        let (status, body) = signer
            .send(Method::POST, &export_path, Some(export(target)))
            .await;
        assert_eq!((status, code(&body)), (400, want), "{target}: {body}");
    }
    assert!(
        !s3.files().iter().any(|f| f.starts_with(".upload")),
        "no multipart upload left open: {:?}",
        s3.files()
    );

    let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap();
    assert!(
        log.contains("DEBUG"),
        "debug logging was on (else this proves nothing)"
    );
    assert!(!log.contains(s3s::SECRET_KEY), "the secret key was logged");
}

#[test]
fn a_bucket_in_two_stores_or_an_unknown_default_store_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = |name: &str| {
        format!(
            "[buckets.stores.{name}]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:1\"\n\
             access_key_id = \"A\"\nsecret_access_key = \"S\"\nbuckets = [\"image-test\"]\n"
        )
    };
    for (toml, message) in [
        (
            format!("{}{}", store("east"), store("west")),
            "bucket \"image-test\" is assigned to two stores: east and west",
        ),
        (
            format!("[buckets]\ndefault = \"north\"\n{}", store("east")),
            "buckets.default: no store named \"north\"",
        ),
    ] {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ims"))
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
    }
}

/// ims is SIGKILLed while an export streams into an S3 bucket (the store stalled): after
/// the restart the job runs again and the object is whole.
#[tokio::test]
async fn an_export_cut_short_by_a_crash_finishes_after_the_restart() {
    let s3 = S3s::start();
    s3.bucket("image-test");
    let work = tempfile::tempdir().unwrap();
    let config = s3_config(work.path(), &s3);
    let mut server = Server::start(&[("IMS_CONFIG", config.to_str().unwrap())]).await;
    let disk = work.path().join("export.qcow2");
    let disk_arg = disk.to_str().unwrap();
    run("qemu-img", &["create", "-q", "-f", "qcow2", disk_arg, "1G"]);
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 3 0 160M", disk_arg],
    );
    let bytes = std::fs::read(&disk).unwrap();
    let api = common::Api::new(&server, server.admin_token().await);
    let image_id = api.new_image("to-export", "qcow2").await;
    assert_eq!(api.upload(&image_id, bytes.clone()).await.status(), 204);

    let signer = Signer::new(&server, "admin", "admin");
    let (status, body) = signer
        .send(
            Method::POST,
            &format!("/v1/cloudimages/{image_id}/file"),
            Some(json!({"bucket_url": "image-test:exports/cut.qcow2", "file_format": "qcow2"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The request checked the bucket; the job's 160 MiB stall from here on.
    s3.signal("-STOP");
    let job_id = body["job_id"].as_str().unwrap().to_string();
    common::wait_until(std::time::Duration::from_secs(30), || async {
        let (_, job) = signer
            .send(Method::GET, &format!("/v1/cloudimages/job/{job_id}"), None)
            .await;
        match job["status"].as_str() {
            Some("RUNNING") => Ok(()),
            other => Err(format!("the export has not started: {other:?}")),
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    server.kill();
    s3.signal("-CONT");
    server.spawn().await;
    let job = wait_job(&signer, &job_id).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(
        std::fs::read(s3.root.join("image-test/exports/cut.qcow2")).unwrap(),
        bytes,
        "the object is whole"
    );
    assert!(
        !s3.files().iter().any(|f| f.starts_with(".upload")),
        "no multipart upload left open: {:?}",
        s3.files()
    );
}
