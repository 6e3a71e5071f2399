//! Volumes through the real binary: `ims admin volume …`, a volume made from an image
//! without copying it, bytes written into the volume with `qemu-io`, a data image made
//! from the volume over IMS (`POST /v2/cloudimages/action` with `volume_id`) and read
//! back through the Glance API, the blob an image leaves to its volumes, quotas, and the
//! bad inputs of the IMS volume mode.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::disk::{qemu_io, run};
use common::signed::Signer;
use common::{Api, Server, call};
use md5::Digest as _;
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;

/// A qcow2 image of `virtual_mib` MiB whose first MiB is 0x11, uploaded through Glance;
/// its id.
async fn qcow2_image(api: &Api, dir: &Path, name: &str, virtual_mib: u64) -> String {
    let file = dir.join(format!("{name}.qcow2"));
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&file)
        .arg(format!("{virtual_mib}M")));
    qemu_io(&file, "qcow2", &["write -P 0x11 0 1M".into()]);
    let image = api
        .create(json!({"name": name, "disk_format": "qcow2", "container_format": "bare"}))
        .await;
    let id = image["id"].as_str().unwrap().to_string();
    let r = api.upload(&id, std::fs::read(&file).unwrap()).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    id
}

fn show(server: &Server, id: &str) -> Value {
    serde_json::from_str(&server.admin(&["volume", "show", id])).unwrap()
}

fn volume_file(server: &Server, volume: &Value) -> PathBuf {
    server
        .dir
        .join("volumes")
        .join(volume["location"].as_str().unwrap())
}

/// Polls an IMS job until it ends; the final job.
async fn ended_job(signer: &Signer, job_id: &str) -> Value {
    let path = format!("/v1/cloudimages/job/{job_id}");
    common::wait_until(Duration::from_secs(60), || async {
        let (status, job) = signer.send(reqwest::Method::GET, &path, None).await;
        match job["status"].as_str() {
            Some("SUCCESS" | "FAIL") if status == 200 => Ok(job),
            _ => Err(format!("{status} {job}")),
        }
    })
    .await
}

#[tokio::test]
async fn a_data_image_from_a_volume_holds_what_was_written_into_the_volume() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let image = qcow2_image(&api, work.path(), "base", 64).await;

    // A 128 MiB volume from the 64 MiB image: an overlay, nothing copied.
    let vid = server.admin(&[
        "volume",
        "create",
        "--name",
        "disk1",
        "--from-image",
        &image,
        "--size",
        "128M",
    ]);
    let volume = show(&server, &vid);
    assert_eq!(volume["status"], "ready", "{volume}");
    assert_eq!(volume["format"], "qcow2");
    assert_eq!(volume["size"], 128 * MIB);
    assert_eq!(volume["source_image"], image.as_str());
    let file = volume_file(&server, &volume);
    if server.local_images() {
        assert!(
            std::fs::metadata(&file).unwrap().len() < MIB,
            "the volume copies the image"
        );
    } else {
        assert!(
            volume["backing"].is_null(),
            "an overlay on a remote blob: {volume}"
        );
    }
    let listed = server.admin(&["volume", "list"]);
    assert!(
        listed.contains(&format!("{vid} ready {} qcow2", 128 * MIB)),
        "{listed}"
    );

    // Known bytes at known offsets, one inside the image's range and one past it.
    qemu_io(
        &file,
        "qcow2",
        &[
            "write -P 0xab 5M 64k".into(),
            "write -P 0xcd 100M 4k".into(),
        ],
    );

    let signer = Signer::new(&server, "admin", "admin");
    let (status, body) = signer
        .send(
            reqwest::Method::POST,
            "/v2/cloudimages/action",
            Some(json!({"name": "from-volume", "volume_id": vid, "description": "data disk"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let job = ended_job(&signer, body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(job["job_type"], "imsVolumeCreateImageJob");
    let new_id = job["entities"]["image_id"].as_str().unwrap().to_string();

    let shown = api.show(&new_id).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["disk_format"], "qcow2");
    assert_eq!(shown["virtual_size"], 128 * MIB);
    assert_eq!(shown["__data_origin"], format!("volume,{vid}"));
    assert_eq!(shown["virtual_env_type"], "DataImage");

    // Download through Glance and find the bytes: the image's own, and the volume's.
    let r = api
        .req(reqwest::Method::GET, &format!("/v2/images/{new_id}/file"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let data = r.bytes().await.unwrap();
    assert_eq!(shown["checksum"], hex::encode(md5::Md5::digest(&data)));
    let saved = work.path().join("saved.qcow2");
    std::fs::write(&saved, &data).unwrap();
    let info = run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&saved));
    let info: Value = serde_json::from_str(&info).unwrap();
    assert!(
        info.get("backing-filename").is_none(),
        "the image is not flat: {info}"
    );
    qemu_io(
        &saved,
        "qcow2",
        &[
            "read -P 0x11 0 1M".into(),
            "read -P 0xab 5M 64k".into(),
            "read -P 0x00 6M 1M".into(),
            "read -P 0xcd 100M 4k".into(),
        ],
    );
    // The volume is untouched by being read.
    assert_eq!(show(&server, &vid)["status"], "ready");
}

#[tokio::test]
async fn an_image_keeps_its_blob_until_its_last_volume_is_expunged() {
    let server = Server::start(&[]).await;
    if !server.local_images() {
        // Volumes are copies when image data is in an object store: nothing pins a blob.
        return;
    }
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let image = qcow2_image(&api, work.path(), "base", 16).await;
    let a = server.admin(&["volume", "create", "--name", "a", "--from-image", &image]);
    let b = server.admin(&["volume", "create", "--name", "b", "--from-image", &image]);
    assert_eq!(
        show(&server, &a)["size"],
        16 * MIB,
        "defaults to the image's virtual size"
    );
    let blobs = server.stored_files();
    assert_eq!(blobs.len(), 1, "{blobs:?}");

    let (status, _) = call(
        &api,
        reqwest::Method::DELETE,
        &format!("/v2/images/{image}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(server.stored_files(), blobs, "the blob went with its image");
    // The volumes still read their backing.
    let file = volume_file(&server, &show(&server, &a));
    qemu_io(&file, "qcow2", &["read -P 0x11 0 1M".into()]);
    // A new volume cannot be made from the deleted image.
    let out = server.admin_output(&["volume", "create", "--name", "c", "--from-image", &image]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not found"), "{err}");

    // A ready volume is deleted before it is expunged.
    let out = server.admin_output(&["volume", "expunge", &a]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("delete it"));
    server.admin(&["volume", "expunge", "--force", &a]);
    assert!(!file.exists(), "the expunged volume's file stays");
    assert_eq!(server.stored_files(), blobs, "b still needs the blob");
    server.admin(&["volume", "delete", &b]);
    server.admin(&["volume", "expunge", &b]);
    assert!(
        server.stored_files().is_empty(),
        "{:?}",
        server.stored_files()
    );
    let expunged = server.admin(&["volume", "list", "--status", "expunged"]);
    assert_eq!(expunged.lines().count(), 2, "{expunged}");
    assert!(server.admin(&["volume", "list"]).is_empty());

    // A restart's orphan collection keeps blobs volumes use (and only those).
    let image = qcow2_image(&api, work.path(), "again", 16).await;
    server.admin(&["volume", "create", "--name", "d", "--from-image", &image]);
    let (status, _) = call(
        &api,
        reqwest::Method::DELETE,
        &format!("/v2/images/{image}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let kept = server.stored_files();
    assert_eq!(kept.len(), 1);
    let mut server = server;
    server.kill();
    server.spawn().await;
    assert_eq!(server.stored_files(), kept);
}

#[tokio::test]
async fn the_admin_cli_manages_blank_volumes_and_their_life_cycle() {
    let server = Server::start(&[]).await;
    let raw = server.admin(&[
        "volume", "create", "--name", "scratch", "--size", "10M", "--format", "raw",
    ]);
    let vol = show(&server, &raw);
    assert_eq!(
        (vol["format"].as_str(), vol["size"].as_u64()),
        (Some("raw"), Some(10 * MIB))
    );
    let file = volume_file(&server, &vol);
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.len(), 10 * MIB);
    use std::os::unix::fs::MetadataExt;
    assert!(meta.blocks() * 512 < MIB, "a blank raw volume is sparse");
    assert_eq!(meta.mode() & 0o777, 0o600);

    let chosen = "0a0b0c0d-0000-4000-8000-000000000001";
    let q = server.admin(&[
        "volume", "create", "--name", "q", "--size", "1000", "--id", chosen,
    ]);
    assert_eq!(q, chosen);
    let out = server.admin_output(&[
        "volume", "create", "--name", "again", "--size", "1M", "--id", chosen,
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(show(&server, &q)["size"], 1024, "sizes are whole sectors");

    // Resize up only.
    server.admin(&["volume", "resize", &raw, "20M"]);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 20 * MIB);
    assert_eq!(show(&server, &raw)["size"], 20 * MIB);
    let out = server.admin_output(&["volume", "resize", &raw, "5M"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only grows"));
    server.admin(&["volume", "resize", &q, "1G"]);
    let qfile = volume_file(&server, &show(&server, &q));
    let info = run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&qfile));
    assert_eq!(
        serde_json::from_str::<Value>(&info).unwrap()["virtual-size"],
        1 << 30
    );

    // Delete (soft), recover, delete, expunge.
    server.admin(&["volume", "delete", &raw]);
    assert_eq!(show(&server, &raw)["status"], "deleted");
    assert!(file.exists(), "a deleted volume keeps its data");
    let out = server.admin_output(&["volume", "resize", &raw, "30M"]);
    assert!(!out.status.success(), "a deleted volume was resized");
    server.admin(&["volume", "recover", &raw]);
    assert_eq!(show(&server, &raw)["status"], "ready");
    server.admin(&["volume", "delete", &raw]);
    server.admin(&["volume", "expunge", &raw]);
    assert!(!file.exists());
    let out = server.admin_output(&["volume", "show", &raw]);
    assert!(!out.status.success(), "an expunged volume is shown");

    // Bad input.
    for args in [
        &["volume", "create", "--name", "x"][..],
        &["volume", "create", "--name", "x", "--size", "0"],
        &["volume", "create", "--name", "", "--size", "1M"],
        &[
            "volume", "create", "--name", "x", "--size", "1M", "--format", "vmdk",
        ],
        &["volume", "show", "not-a-uuid"],
        &[
            "volume",
            "create",
            "--name",
            "x",
            "--from-image",
            "00000000-0000-0000-0000-000000000000",
        ],
    ] {
        let out = server.admin_output(args);
        assert!(!out.status.success(), "{args:?} succeeded");
    }
}

#[tokio::test]
async fn volume_quotas_hold_per_project() {
    let server = Server::start(&[
        ("IMS_VOLUMES__QUOTA_COUNT", "2"),
        ("IMS_VOLUMES__QUOTA_SIZE_TOTAL", &(30 * MIB).to_string()),
    ])
    .await;
    let a = server.admin(&["volume", "create", "--name", "a", "--size", "10M"]);
    let out = server.admin_output(&["volume", "create", "--name", "big", "--size", "21M"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("volume size quota"));
    server.admin(&["volume", "create", "--name", "b", "--size", "10M"]);
    let out = server.admin_output(&["volume", "resize", &a, "21M"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("volume size quota"));
    server.admin(&["volume", "resize", &a, "20M"]);
    let out = server.admin_output(&["volume", "create", "--name", "c", "--size", "1M"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("volume count quota"));
    // Another project has quotas of its own; a deleted volume still counts, an expunged
    // one no longer does.
    server.admin(&["project", "create", "other"]);
    server.admin(&[
        "volume",
        "create",
        "--name",
        "c",
        "--size",
        "1M",
        "--project",
        "other",
    ]);
    server.admin(&["volume", "delete", &a]);
    let out = server.admin_output(&["volume", "create", "--name", "c", "--size", "1M"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("volume count quota"));
    server.admin(&["volume", "expunge", &a]);
    server.admin(&["volume", "create", "--name", "c", "--size", "1M"]);
}

#[tokio::test]
async fn the_ims_volume_mode_refuses_bad_volumes_and_kills_the_image_on_failure() {
    let server = Server::start(&[]).await;
    let signer = Signer::new(&server, "admin", "admin");
    let create = |body: Value| {
        let signer = &signer;
        async move {
            signer
                .send(reqwest::Method::POST, "/v2/cloudimages/action", Some(body))
                .await
        }
    };
    // Missing, malformed, another project's: not found, IMS's bad parameter.
    server.add_member("p2", "bob", "Secret-pass1");
    let theirs = server.admin(&[
        "volume",
        "create",
        "--name",
        "t",
        "--size",
        "1M",
        "--project",
        "p2",
    ]);
    let bob = Signer::new(&server, "bob", "p2");
    let mine = server.admin(&["volume", "create", "--name", "m", "--size", "1M"]);
    for id in ["00000000-0000-0000-0000-000000000000", "nope"] {
        let (status, body) = create(json!({"name": "x", "volume_id": id})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("IMG.0001")),
            "{body}"
        );
    }
    let (status, body) = bob
        .send(
            reqwest::Method::POST,
            "/v2/cloudimages/action",
            Some(json!({"name": "x", "volume_id": mine})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("IMG.0001")),
        "{body}"
    );
    assert!(!body.to_string().contains(&*server.project_id("admin")));
    // Bad names, a KMS key, a mode mix.
    for (body, code) in [
        (json!({"volume_id": theirs}), "IMG.0003"),
        (json!({"name": "", "volume_id": theirs}), "IMG.0003"),
        (
            json!({"name": "x", "volume_id": theirs, "cmk_id": "k"}),
            "IMG.0095",
        ),
        (
            json!({"name": "x", "volume_id": theirs, "image_url": "b:o", "min_disk": 40}),
            "IMG.0001",
        ),
    ] {
        let (status, resp) = create(body.clone()).await;
        assert_eq!(
            (status, resp["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {resp}"
        );
    }
    // A deleted volume is not ready: wrong status.
    server.admin(&["volume", "delete", &mine]);
    let (status, body) = create(json!({"name": "x", "volume_id": mine})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("IMG.0046")),
        "{body}"
    );
    server.admin(&["volume", "recover", &mine]);

    // A volume whose data vanished: the job fails and the image ends killed, not stuck.
    std::fs::remove_file(volume_file(&server, &show(&server, &mine))).unwrap();
    let (status, body) = create(json!({"name": "lost", "volume_id": mine})).await;
    assert_eq!(status, 200, "{body}");
    let job = ended_job(&signer, body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "FAIL", "{job}");
    let image = job["entities"]["image_id"].as_str().unwrap();
    let api = Api::new(&server, server.admin_token().await);
    assert_eq!(api.show(image).await["status"], "killed");
    // A raw volume streams as it is.
    let raw = server.admin(&[
        "volume", "create", "--name", "r", "--size", "2M", "--format", "raw",
    ]);
    let rfile = volume_file(&server, &show(&server, &raw));
    qemu_io(&rfile, "raw", &["write -P 0x5a 1M 4k".into()]);
    let (_, body) =
        create(json!({"name": "raw", "volume_id": raw, "os_version": "Ubuntu 22.04 server 64bit"}))
            .await;
    let job = ended_job(&signer, body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let id = job["entities"]["image_id"].as_str().unwrap();
    let shown = api.show(id).await;
    assert_eq!(
        (shown["disk_format"].as_str(), shown["size"].as_u64()),
        (Some("raw"), Some(2 * MIB))
    );
    assert_eq!(shown["virtual_env_type"], "FusionCompute");
    let data = api.download(id).await;
    assert_eq!(&data[..], &std::fs::read(&rfile).unwrap()[..]);
}

#[tokio::test]
async fn an_image_from_a_volume_killed_mid_stream_finishes_after_a_restart() {
    let mut server = Server::start(&[("IMS_JOBS__LEASE_SECS", "3")]).await;
    // A 2 GiB raw volume with known bytes spread over it.
    let vid = server.admin(&[
        "volume", "create", "--name", "big", "--size", "2G", "--format", "raw",
    ]);
    let file = volume_file(&server, &show(&server, &vid));
    let writes: Vec<String> = (0..8u64)
        .map(|n| format!("write -P 0x{:02x} {}M 1M", 0x21 + n, n * 256 + 3))
        .collect();
    qemu_io(&file, "raw", &writes);
    let md5 = {
        let mut hasher = md5::Md5::new();
        let mut f = std::fs::File::open(&file).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hex::encode(hasher.finalize())
    };

    let signer = Signer::new(&server, "admin", "admin");
    let (status, body) = signer
        .send(
            reqwest::Method::POST,
            "/v2/cloudimages/action",
            Some(json!({"name": "big", "volume_id": vid})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/v1/cloudimages/job/{}", body["job_id"].as_str().unwrap());
    common::wait_until(Duration::from_secs(30), || async {
        let (_, job) = signer.send(reqwest::Method::GET, &path, None).await;
        let percent = job["entities"]["process_percent"].as_f64().unwrap_or(0.0);
        match job["status"].as_str() {
            Some("RUNNING") if percent > 0.0 && percent < 100.0 => Ok(()),
            Some("INIT" | "RUNNING") => Err(format!("not yet streaming: {job}")),
            _ => panic!("the job ended before the crash: {job}"),
        }
    })
    .await;
    // While the image is being made, the volume does not change: no resize, delete or
    // expunge.
    for change in [
        &["volume", "resize", &vid, "3G"][..],
        &["volume", "delete", &vid],
        &["volume", "expunge", &vid, "--force"],
    ] {
        let out = server.admin_output(change);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{change:?} went through mid-read");
        assert!(
            err.contains("is being read into image"),
            "{change:?}: {err}"
        );
    }
    assert_eq!(show(&server, &vid)["status"], "ready");
    server.kill();
    server.spawn().await;

    let job = ended_job(&signer, body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let image_id = job["entities"]["image_id"].as_str().unwrap();
    let api = Api::new(&server, server.admin_token().await);
    let image = api.show(image_id).await;
    assert_eq!(image["status"], "active");
    assert_eq!(
        image["checksum"], md5,
        "the image is not the volume's content"
    );
    let files = server.stored_files();
    assert_eq!(
        files.iter().filter(|f| f.contains(image_id)).count(),
        1,
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.contains("/.tmp/")), "{files:?}");
    // The volume is intact and still usable.
    assert_eq!(show(&server, &vid)["status"], "ready");
    qemu_io(
        &file,
        "raw",
        &["read -P 0x21 3M 1M".into(), "read -P 0x28 1795M 1M".into()],
    );
}

#[tokio::test]
async fn a_create_a_crash_cut_short_ends_in_error_with_its_data_removed() {
    let mut server = Server::start(&[]).await;
    if server.database.is_some() {
        // The catalog is rewound below with the sqlite3 tool.
        return;
    }
    let vid = server.admin(&["volume", "create", "--name", "cut", "--size", "1M"]);
    let fresh = server.admin(&["volume", "create", "--name", "fresh", "--size", "1M"]);
    let file = volume_file(&server, &show(&server, &vid));
    server.kill();
    // As a process that died between making the file and recording it would leave it:
    // `creating` since long ago; and one whose create is still young.
    let catalog = server.dir.join("catalog.sqlite");
    for (id, at) in [
        (&vid, "2000-01-01T00:00:00.000000Z"),
        (&fresh, "2999-01-01T00:00:00.000000Z"),
    ] {
        run(Command::new("sqlite3").arg(&catalog).arg(format!(
            "UPDATE volumes SET status = 'creating', updated_at = '{at}', version = version + 1 WHERE id = '{id}'"
        )));
    }
    server.spawn().await;
    let cut = show(&server, &vid);
    assert_eq!(cut["status"], "error", "{cut}");
    assert!(!file.exists(), "the abandoned volume's data stays");
    assert_eq!(
        show(&server, &fresh)["status"],
        "creating",
        "a young create was failed"
    );
    // An operator cleans both up.
    server.admin(&["volume", "expunge", &vid]);
    server.admin(&["volume", "expunge", &fresh]);
    assert!(server.admin(&["volume", "list"]).is_empty());
}
