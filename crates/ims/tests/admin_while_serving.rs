//! `ims admin` and `ims bucket` run against the data dir of a running `ims serve`
//! (issue 12, item 7): while the server converts an export, CLI commands must leave its
//! conversion scratch space alone, so the export finishes with the right bytes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::signed::Signer;
use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

/// Large enough that spooling and converting take a while; the data is not all zeros,
/// so qemu-img writes real clusters.
const IMAGE_SIZE: usize = 768 << 20;

/// Pseudo-random bytes (xorshift), cheap to make and not compressible to nothing.
fn disk_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Files in the server's scratch directories (`<data-dir>/scratch/*/*`).
fn scratch_files(data: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(data.join("scratch"))
        .into_iter()
        .flatten()
    {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).into_iter().flatten() {
            files.push(f.unwrap().path());
        }
    }
    files.sort();
    files
}

/// The pid of a running `qemu-img convert` on anonymous scratch files, if any.
fn converting() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let is_convert = args.iter().any(|a| a.ends_with(b"qemu-img"))
                && args.contains(&&b"convert"[..])
                && args.contains(&&b"/dev/fd/4"[..]);
            is_convert.then_some(pid)
        })
}

async fn job(signer: &Signer, id: &str) -> Value {
    let (status, job) = signer
        .send(Method::GET, &format!("/v1/cloudimages/job/{id}"), None)
        .await;
    assert_eq!(status, 200, "{job}");
    job
}

fn finished(job: &Value) -> bool {
    job["status"] == "SUCCESS" || job["status"] == "FAIL"
}

fn qemu_img(args: &[&str]) -> std::process::Output {
    Command::new("qemu-img").args(args).output().unwrap()
}

#[tokio::test]
async fn admin_and_bucket_commands_leave_a_running_export_intact() {
    let server = Server::start(&[]).await;
    let work = tempfile::tempdir().unwrap();
    let api = Api::new(&server, server.admin_token().await);
    let admin = Signer::new(&server, "admin", "admin");
    server.cli(&["bucket", "create", "exports", "--project", "admin"]);

    let data = disk_bytes(IMAGE_SIZE);
    let source = work.path().join("source.raw");
    std::fs::write(&source, &data).unwrap();
    let image = api
        .create(json!({"name": "big", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = image["id"].as_str().unwrap().to_string();
    assert_eq!(api.upload(&id, data).await.status(), 204);
    assert_eq!(api.show(&id).await["status"], "active");

    // Something of the server's own in its scratch directory, as a witness: a CLI
    // command that empties the directory takes it too.
    let node = std::fs::read_to_string(server.dir.join("node-id")).unwrap();
    let witness = server.dir.join("scratch").join(node.trim()).join("witness");
    std::fs::write(&witness, b"the server's").unwrap();

    let (status, body) = admin
        .send(
            Method::POST,
            &format!("/v1/cloudimages/{id}/file"),
            Some(json!({"bucket_url": "exports:big.qcow2", "file_format": "qcow2"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let job_id = body["job_id"].as_str().unwrap().to_string();

    // Wait until qemu-img converts (its scratch files have no names: it reads and
    // writes them as /dev/fd/3 and /dev/fd/4); meanwhile the scratch directory holds
    // nothing but the witness.
    let deadline = Instant::now() + Duration::from_secs(60);
    let in_use = loop {
        let named: Vec<PathBuf> = scratch_files(&server.dir)
            .into_iter()
            .filter(|f| *f != witness)
            .collect();
        assert!(named.is_empty(), "a scratch file has a name: {named:?}");
        if let Some(pid) = converting() {
            break pid;
        }
        let j = job(&admin, &job_id).await;
        assert!(
            !finished(&j),
            "the export ended before it used scratch: {j}"
        );
        assert!(Instant::now() < deadline, "no conversion started: {j}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    // While it converts, the operator runs commands against the same data dir.
    let commands: [&[&str]; 4] = [
        &["admin", "project", "list"],
        &["bucket", "owners"],
        &["admin", "user", "list"],
        &["bucket", "ls", "exports"],
    ];
    let mut ran_while_converting = 0;
    for args in commands.iter().cycle().take(12) {
        let out = server.cli_output(args);
        assert!(
            out.status.success(),
            "ims {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if finished(&job(&admin, &job_id).await) {
            break;
        }
        ran_while_converting += 1;
    }
    assert!(
        ran_while_converting > 0,
        "the export finished before any command ran beside it (qemu-img was {in_use})"
    );
    assert!(
        witness.exists(),
        "a CLI command emptied the server's scratch directory"
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let j = job(&admin, &job_id).await;
        if finished(&j) {
            break j;
        }
        assert!(Instant::now() < deadline, "export stuck: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["status"], "SUCCESS", "{done}");

    // The exported object is a sound qcow2 with exactly the image's bytes.
    let exported = server.dir.join("buckets/exports/big.qcow2");
    let (source, exported) = (source.to_str().unwrap(), exported.to_str().unwrap());
    let check = qemu_img(&["check", "-f", "qcow2", exported]);
    assert!(check.status.success(), "{check:?}");
    let compare = qemu_img(&["compare", "-f", "raw", "-F", "qcow2", source, exported]);
    assert!(compare.status.success(), "{compare:?}");
    // Only the witness is left: the conversion cleaned up after itself.
    assert_eq!(scratch_files(&server.dir), vec![witness]);
}

/// `ims serve` on `dir` with `node_id`, and the server's database (PostgreSQL runs);
/// stderr piped, so a test can wait for the start or read why it failed.
fn serve_as(server: &Server, node_id: &str) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ims"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&server.dir)
        .env("IMS_NODE_ID", node_id)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(db) = &server.database {
        cmd.env("IMS_DATABASE_URL", &db.url);
    }
    cmd.spawn().unwrap()
}

/// Reads the child's stderr until a line contains `needle` or the stream ends; all of it.
fn stderr_until(child: &mut std::process::Child, needle: &str) -> String {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(needle) {
            break;
        }
    }
    seen
}

#[tokio::test]
async fn servers_share_a_data_dir_only_under_distinct_node_ids() {
    let server = Server::start(&[("IMS_NODE_ID", "alpha")]).await;
    assert!(server.dir.join("scratch/alpha").is_dir());
    assert!(
        !server.dir.join("node-id").exists(),
        "a configured id is not persisted"
    );
    let witness = server.dir.join("scratch/alpha/witness");
    std::fs::write(&witness, b"alpha's").unwrap();

    // The same id again is refused: it would take over alpha's leases and scratch.
    let mut twin = serve_as(&server, "alpha");
    let said = stderr_until(&mut twin, "ims is serving");
    assert!(!twin.wait().unwrap().success(), "{said}");
    assert!(said.contains("already running as node alpha"), "{said}");

    // Ids that would name other processes' files, or leave the scratch directory, too.
    for bad in ["cli-7", "../alpha", ".hidden", "a b"] {
        let mut child = serve_as(&server, bad);
        let said = stderr_until(&mut child, "ims is serving");
        assert!(!child.wait().unwrap().success(), "{bad}: {said}");
        assert!(said.contains("node_id"), "{bad}: {said}");
    }

    // Another id runs beside it, with a scratch directory of its own.
    let mut beta = serve_as(&server, "beta");
    let said = stderr_until(&mut beta, "ims is serving");
    let started = said.contains("ims is serving");
    beta.kill().unwrap();
    beta.wait().unwrap();
    assert!(started, "{said}");
    assert!(server.dir.join("scratch/beta").is_dir());
    assert!(
        witness.exists(),
        "beta's start emptied alpha's scratch directory"
    );
    // Alpha still serves.
    let r = reqwest::get(format!("{}/healthcheck", server.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
