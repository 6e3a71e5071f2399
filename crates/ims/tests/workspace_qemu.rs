//! Image servers on the `qemu` driver through the real binary: the server's VM is a real
//! QEMU process running its root volume; bytes written through the VM's monitor end up
//! in the captured image; the VM outlives an ims restart and is adopted; QEMU dying under
//! an active server leaves it `ERROR` with the reason; deleting it leaves no process.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::disk::{qemu_io, run};
use common::signed::Signer;
use common::workspace::{add_administrator, ended, image};
use common::{Api, Server};
use ims_compute::{OPERATOR_QMP_SOCKET, PIDFILE, Qmp, ROOT_DEVICE_PATH};
use reqwest::Method;
use serde_json::{Value, json};

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("IMS_SERVERS__DRIVER", "qemu"),
        ("IMS_SERVERS__MEMORY_MIB", "128"),
    ]
}

fn body(image: &str) -> Value {
    json!({
        "name": "qemu-server",
        "image_ref": {"id": image, "image_type": "private"},
        "vpc_id": "vpc", "subnet_id": "subnet", "product_id": "workspace.x86",
        "authorize_accounts": [{"account": "administrator", "account_type": "USER"}],
        "root_volume": {"type": "SSD", "size": 10}
    })
}

async fn show(signer: &Signer, id: &str) -> (u16, Value) {
    let path = format!("/v1/{}/image-servers/{id}", signer.project);
    signer.send(Method::GET, &path, None).await
}

fn server_dir(server: &Server, id: &str) -> PathBuf {
    server.dir.join("servers").join(id)
}

/// The pid of the server's QEMU, if its pidfile is there.
fn qemu_pid(server: &Server, id: &str) -> Option<i32> {
    std::fs::read_to_string(server_dir(server, id).join(PIDFILE))
        .ok()
        .and_then(|p| p.trim().parse().ok())
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits (at most 10 s) for process `pid` to be gone.
async fn wait_dead(pid: i32) {
    common::wait_until(Duration::from_secs(10), || async {
        if alive(pid) {
            Err(format!("process {pid} still runs"))
        } else {
            Ok(())
        }
    })
    .await;
}

/// Creates a server on `image` and waits for it; its id.
async fn active_server(server: &Server, signer: &Signer, image: &str) -> String {
    add_administrator(server);
    another_server(signer, image).await
}

/// Creates a server on `image` (the authorised account exists) and waits for it; its id.
async fn another_server(signer: &Signer, image: &str) -> String {
    let path = format!("/v1/{}/image-servers", signer.project);
    let (status, created) = signer.send(Method::POST, &path, Some(body(image))).await;
    assert_eq!(status, 200, "{created}");
    let job = ended(signer, created["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    job["sub_jobs"][0]["job_resource_info"]["resource_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_server_runs_in_qemu_is_customised_through_its_monitor_and_captured() {
    let mut server = Server::start(&env()).await;
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let source = image(&api, work.path(), "base", "1G", json!({})).await;
    let signer = Signer::new(&server, "admin", "admin");
    let id = active_server(&server, &signer, &source).await;
    let (_, shown) = show(&signer, &id).await;
    assert_eq!(shown["status"], "ACTIVE", "{shown}");
    assert!(
        shown["status_details"]
            .as_str()
            .unwrap()
            .starts_with("qemu"),
        "{shown}"
    );
    let pid = qemu_pid(&server, &id).expect("a QEMU process");
    assert!(alive(pid));

    // Bytes written by the guest's disk device, through the VM's monitor.
    let mut qmp = Qmp::connect(
        &server_dir(&server, &id).join(OPERATOR_QMP_SOCKET),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let out = qmp
        .human(&format!(
            "qemu-io -d {ROOT_DEVICE_PATH} \"write -P 0xab 2M 64k\""
        ))
        .await
        .unwrap();
    assert!(!out.contains("failed") && !out.contains("rror"), "{out}");
    drop(qmp);

    // ims restarts; the VM keeps running and is adopted.
    server.kill();
    server.spawn().await;
    assert!(alive(pid), "the VM died with ims");
    let (_, shown) = show(&signer, &id).await;
    assert_eq!(shown["status"], "ACTIVE", "{shown}");

    let path = format!(
        "/v1/{}/image-servers/{id}/actions/recreate-image",
        signer.project
    );
    let (status, capture) = signer
        .send(Method::POST, &path, Some(json!({"name": "from-qemu"})))
        .await;
    assert_eq!(status, 200, "{capture}");
    let job = ended(&signer, capture["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(qemu_pid(&server, &id), Some(pid), "the same VM, resumed");
    let made = job["sub_jobs"][0]["job_resource_info"]["resource_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = work.path().join("made.qcow2");
    std::fs::write(&out, api.download(&made).await).unwrap();
    qemu_io(
        &out,
        "qcow2",
        &["read -P 0x11 0 1M".into(), "read -P 0xab 2M 64k".into()],
    );

    // Deleting stops the VM and removes its directory.
    let path = format!("/v1/{}/image-servers/actions/batch-delete", signer.project);
    let (_, deleted) = signer
        .send(Method::PATCH, &path, Some(json!({"items": [id]})))
        .await;
    let job = ended(&signer, deleted["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    wait_dead(pid).await;
    assert!(!server_dir(&server, &id).exists());
}

#[tokio::test]
async fn a_server_boots_from_a_decrypted_copy_of_an_encrypted_image() {
    let server = Server::start(&env()).await;
    let signer = Signer::new(&server, "admin", "admin");
    let key = common::encryption::new_key(&signer, "servers").await;
    let writes = ["write -P 0x3c 4M 64k".to_string()];
    let image =
        common::encryption::sealed_system_image(&server, &signer, "wks", "64M", &writes, &key)
            .await;

    let id = active_server(&server, &signer, &image).await;
    let mut qmp = Qmp::connect(
        &server_dir(&server, &id).join(OPERATOR_QMP_SOCKET),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    // The guest's disk reads the image's bytes in the clear.
    for (check, pattern) in [("4M 64k", "0x3c"), ("0 1M", "0")] {
        let out = qmp
            .human(&format!(
                "qemu-io -d {ROOT_DEVICE_PATH} \"read -P {pattern} {check}\""
            ))
            .await
            .unwrap();
        assert!(
            !out.contains("failed") && !out.contains("rror"),
            "{check}: {out}"
        );
    }
}

#[tokio::test]
async fn qemu_dying_under_an_active_server_leaves_it_error_with_the_reason() {
    let mut server = Server::start(&env()).await;
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let source = image(&api, work.path(), "base", "1G", json!({})).await;
    let signer = Signer::new(&server, "admin", "admin");
    let id = active_server(&server, &signer, &source).await;
    let pid = qemu_pid(&server, &id).expect("a QEMU process");
    run(Command::new("kill").args(["-KILL", &pid.to_string()]));
    wait_dead(pid).await;
    // The start-up recovery of the next ims (or the periodic sweep) notices.
    server.kill();
    server.spawn().await;
    let (_, shown) = show(&signer, &id).await;
    assert_eq!(shown["status"], "ERROR", "{shown}");
    assert!(
        shown["status_details"].as_str().unwrap().contains("gone"),
        "{shown}"
    );
    // An ERROR server can be deleted; its volume goes with it.
    let path = format!("/v1/{}/image-servers/actions/batch-delete", signer.project);
    let (status, deleted) = signer
        .send(Method::PATCH, &path, Some(json!({"items": [id]})))
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        ended(&signer, deleted["job_id"].as_str().unwrap()).await["status"],
        "SUCCESS"
    );
    let volumes = server.admin(&["volume", "list"]);
    assert!(volumes.trim().is_empty(), "{volumes}");
}

/// QEMU processes running server `id`'s VM.
fn vm_count(server: &Server, id: &str) -> usize {
    let marker = server_dir(server, id).display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&marker))
                .unwrap_or(false)
        })
        .count()
}

#[tokio::test]
async fn ims_killed_during_a_create_finishes_it_with_exactly_one_vm() {
    const HOLD: &str = "IMS_JOBS__PER_KIND";
    let mut env = env();
    env.push(("IMS_JOBS__LEASE_SECS", "3"));
    env.push((HOLD, "{ server_create = 0 }"));
    let mut server = Server::start(&env).await;
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let source = image(&api, work.path(), "base", "1G", json!({})).await;
    add_administrator(&server);
    let signer = Signer::new(&server, "admin", "admin");
    let path = format!("/v1/{}/image-servers", signer.project);
    // The first crash comes before the job ran (no worker takes it); the others at
    // moments along the create (the volume's row, its overlay, QEMU's start, the save).
    let kill_after_ms = [None, Some(0), Some(20), Some(60), Some(150)];
    for (round, delay) in kill_after_ms.into_iter().enumerate() {
        let (status, created) = signer.send(Method::POST, &path, Some(body(&source))).await;
        assert_eq!(status, 200, "{created}");
        if let Some(ms) = delay {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        server.kill();
        server.set_env(HOLD, None);
        server.spawn().await;
        let job = ended(&signer, created["job_id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "SUCCESS", "round {round}: {job}");
        let id = job["sub_jobs"][0]["job_resource_info"]["resource_id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, shown) = show(&signer, &id).await;
        assert_eq!(shown["status"], "ACTIVE", "round {round}: {shown}");
        assert_eq!(vm_count(&server, &id), 1, "round {round}: one VM, not two");
        let volumes = server.admin(&["volume", "list"]);
        assert_eq!(
            volumes.lines().count(),
            round + 1,
            "one root volume per server: {volumes}"
        );
    }
}

/// Two nodes on one catalog, each with the QEMU driver: a server whose VM runs on node A
/// is left alone by node B's sweeps (B has no such VM), a capture asked through B runs
/// on A (its job is pinned there: only A can pause the guest and read its disk), and once
/// A stops answering for good, B marks the server `ERROR` with why and can delete it.
#[tokio::test]
async fn servers_on_another_node_are_left_to_it_and_captured_there() {
    let mut env = env();
    env.push(("IMS_JOBS__LEASE_SECS", "3"));
    let mut a = Server::start(&env).await;
    let api = Api::new(&a, a.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let source = image(&api, work.path(), "base", "64M", json!({})).await;
    let signer = Signer::new(&a, "admin", "admin");
    let first = active_server(&a, &signer, &source).await;
    let second = another_server(&signer, &source).await;
    let pids = [&first, &second].map(|id| qemu_pid(&a, id).expect("a QEMU process"));

    let catalog = match &a.database {
        Some(db) => db.url.clone(),
        None => ims_db::sqlite_url(&a.dir.join("catalog.sqlite")),
    };
    let key = |file: &str| std::fs::read_to_string(a.dir.join(file)).unwrap();
    let (master, credential) = (key("kms-master.key"), key("credential.key"));
    env.extend([
        ("IMS_DATABASE_URL", catalog.as_str()),
        ("IMS_KMS__MASTER_KEY", master.trim()),
        ("IMS_CREDENTIAL_KEY", credential.trim()),
    ]);
    let b = Server::start(&env).await;
    let via_b = Signer {
        url: b.url.clone(),
        host: format!("127.0.0.1:{}", b.port),
        ..signer
    };
    // Several of B's sweeps (one per 3 s lease).
    tokio::time::sleep(Duration::from_secs(8)).await;
    for id in [&first, &second] {
        let (_, shown) = show(&via_b, id).await;
        assert_eq!(shown["status"], "ACTIVE", "{shown}");
    }

    let path = format!(
        "/v1/{}/image-servers/{first}/actions/recreate-image",
        via_b.project
    );
    let (status, capture) = via_b
        .send(Method::POST, &path, Some(json!({"name": "captured-on-a"})))
        .await;
    assert_eq!(status, 200, "{capture}");
    let job = ended(&via_b, capture["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let (_, shown) = show(&via_b, &first).await;
    assert_eq!(shown["status"], "BUILT", "{shown}");
    assert!(alive(pids[0]), "the VM runs on after its capture");

    // Node A dies with its VMs (the machine is gone).
    a.kill();
    for pid in pids {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        wait_dead(pid).await;
    }
    common::wait_until(Duration::from_secs(30), || async {
        let (_, shown) = show(&via_b, &second).await;
        match shown["status"].as_str() {
            Some("ERROR") => Ok(shown),
            _ => Err(format!("not marked yet: {shown}")),
        }
    })
    .await;
    let (_, shown) = show(&via_b, &second).await;
    let details = shown["status_details"].as_str().unwrap();
    assert!(details.contains("stopped answering"), "{details}");
    let path = format!("/v1/{}/image-servers/actions/batch-delete", via_b.project);
    let (_, deleted) = via_b
        .send(Method::PATCH, &path, Some(json!({"items": [second]})))
        .await;
    let job = ended(&via_b, deleted["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let (status, _) = show(&via_b, &second).await;
    assert_eq!(status, 404);
}
