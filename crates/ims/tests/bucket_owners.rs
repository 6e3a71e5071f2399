//! Buckets belong to projects (issue 11, H2), tested as the review's attacks: tenant B
//! imports tenant A's staged object; A exports a private image and B imports the export;
//! B exports into A's bucket. Each now fails exactly as if the bucket did not exist. Also:
//! a shared bucket is readable but not writable, a bucket without owner is for
//! administrators only, and buckets from before owners existed go to the admin project.

mod common;

use common::s3s;

use common::Server;
use common::signed::Signer;
use common::signed::wait_job;
use reqwest::Method;
use serde_json::{Value, json};

/// A raw disk whose first bytes are a secret.
fn secret_disk(dir: &std::path::Path, secret: &str) -> std::path::PathBuf {
    let mut bytes = secret.as_bytes().to_vec();
    bytes.resize(1 << 20, 0x5a);
    let path = dir.join(format!("{}.raw", secret.len()));
    std::fs::write(&path, &bytes).unwrap();
    path
}

fn data_image(url: &str) -> Value {
    json!({"name": "imported", "image_url": url, "min_disk": 40})
}

/// Imports `url` as a data image; the finished job.
async fn import(signer: &Signer, url: &str) -> Value {
    let (status, body) = signer
        .send(
            Method::POST,
            "/v1/cloudimages/dataimages/action",
            Some(data_image(url)),
        )
        .await;
    assert_eq!(status, 200, "{url}: {body}");
    let job = wait_job(signer, body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{url}: {job}");
    job
}

/// The answer to `path` with `body` (which names `bucket`) must be the answer for a
/// bucket that does not exist: same status, same code, same message but for the name.
async fn as_if_missing(signer: &Signer, method: Method, path: &str, body: Value, bucket: &str) {
    const MISSING: &str = "never-created";
    let (status, denied) = signer.send(method.clone(), path, Some(body.clone())).await;
    let missing_body: Value =
        serde_json::from_str(&body.to_string().replace(bucket, MISSING)).unwrap();
    let (missing_status, missing) = signer.send(method, path, Some(missing_body)).await;
    assert_eq!(missing["error"]["code"], "IMG.0069", "{missing}");
    assert_eq!(
        (status, denied.to_string().replace(bucket, MISSING)),
        (missing_status, missing.to_string()),
        "{path} on {bucket}: {denied}"
    );
}

/// `alice` (member of tenant-a), `bob` (member of tenant-b) and their signers.
async fn tenants(server: &Server) -> (Signer, Signer) {
    for (user, project) in [("alice", "tenant-a"), ("bob", "tenant-b")] {
        server.add_member(project, user, "pw-12345");
    }
    (
        Signer::new(server, "alice", "tenant-a"),
        Signer::new(server, "bob", "tenant-b"),
    )
}

async fn download(server: &Server, user: &str, project: &str, image: &str) -> (u16, Vec<u8>) {
    let token = server.token(user, "pw-12345", project).await;
    let r = reqwest::Client::new()
        .get(format!("{}/v2/images/{image}/file", server.url))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_reviews_three_bucket_attacks_fail_as_if_the_bucket_did_not_exist() {
    let server = Server::start(&[]).await;
    let (alice, bob) = tenants(&server).await;
    let work = tempfile::tempdir().unwrap();
    const SECRET: &str = "TENANT-A CONFIDENTIAL DB DUMP";
    let disk = secret_disk(work.path(), SECRET);
    let disk = disk.to_str().unwrap();
    for (bucket, project) in [
        ("tenant-a-private", "tenant-a"),
        ("exports", "tenant-a"),
        ("tenant-b-disks", "tenant-b"),
    ] {
        server.cli(&["bucket", "create", bucket, "--project", project]);
    }
    server.cli(&["bucket", "put", disk, "tenant-a-private:backup/db.raw"]);
    server.cli(&["bucket", "put", disk, "tenant-b-disks:own.raw"]);

    // (1) Bob imports the object tenant A staged: every import path answers as if the
    // bucket were missing. Alice, the owner, imports it.
    let staged = "tenant-a-private:backup/db.raw";
    as_if_missing(
        &bob,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image(staged),
        "tenant-a-private",
    )
    .await;
    as_if_missing(
        &bob,
        Method::POST,
        "/v2/cloudimages/action",
        json!({"name": "sys", "image_url": staged, "min_disk": 40, "os_version": "Ubuntu 22.04 server 64bit"}),
        "tenant-a-private",
    )
    .await;
    as_if_missing(
        &bob,
        Method::POST,
        "/v2/cloudimages/action",
        json!({"name": "sys", "image_url": "tenant-b-disks:own.raw", "min_disk": 40,
               "data_images": [{"name": "d", "image_url": staged, "min_disk": 40}]}),
        "tenant-a-private",
    )
    .await;
    let (status, queued) = bob
        .send(
            Method::POST,
            "/v2/images",
            Some(json!({"name": "q", "disk_format": "raw", "container_format": "bare"})),
        )
        .await;
    assert_eq!(status, 201, "{queued}");
    as_if_missing(
        &bob,
        Method::PUT,
        &format!("/v1/cloudimages/{}/upload", queued["id"].as_str().unwrap()),
        json!({"image_url": staged}),
        "tenant-a-private",
    )
    .await;
    let job = import(&alice, staged).await;
    let alices = job["entities"]["image_id"].as_str().unwrap().to_string();

    // (2) Alice exports her private image into her bucket; Bob cannot import the export.
    let (status, body) = alice
        .send(
            Method::POST,
            &format!("/v1/cloudimages/{alices}/file"),
            Some(json!({"bucket_url": "exports:a/disk.qcow2", "file_format": "qcow2"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let job = wait_job(&alice, body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    as_if_missing(
        &bob,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image("exports:a/disk.qcow2"),
        "exports",
    )
    .await;

    // (3) Bob exports his own image into Alice's bucket: refused, nothing planted.
    let job = import(&bob, "tenant-b-disks:own.raw").await;
    let bobs = job["entities"]["image_id"].as_str().unwrap().to_string();
    assert_eq!(download(&server, "bob", "tenant-b", &bobs).await.0, 200);
    as_if_missing(
        &bob,
        Method::POST,
        &format!("/v1/cloudimages/{bobs}/file"),
        json!({"bucket_url": "tenant-a-private:backup/planted.qcow2", "file_format": "qcow2"}),
        "tenant-a-private",
    )
    .await;
    assert!(
        !server
            .dir
            .join("buckets/tenant-a-private/backup/planted.qcow2")
            .exists()
    );
    // And the secret is Alice's alone: Bob has no image with it and cannot see hers.
    assert_eq!(download(&server, "bob", "tenant-b", &alices).await.0, 404);
    let (status, data) = download(&server, "alice", "tenant-a", &alices).await;
    assert_eq!(status, 200);
    assert!(data.starts_with(SECRET.as_bytes()));
}

#[tokio::test]
async fn shared_buckets_are_read_only_and_unowned_buckets_are_for_admins() {
    let server = Server::start(&[]).await;
    let (alice, bob) = tenants(&server).await;
    let work = tempfile::tempdir().unwrap();
    let disk = secret_disk(work.path(), "shared data");
    let disk = disk.to_str().unwrap();
    server.cli(&["bucket", "create", "team-a", "--project", "tenant-a"]);
    server.cli(&["bucket", "create", "staging"]);
    server.cli(&["bucket", "put", disk, "team-a:disk.raw"]);
    server.cli(&["bucket", "put", disk, "staging:disk.raw"]);

    // Shared with tenant-b: Bob reads (imports) but cannot write (export).
    server.cli(&["bucket", "share", "team-a", "--project", "tenant-b"]);
    let job = import(&bob, "team-a:disk.raw").await;
    let bobs = job["entities"]["image_id"].as_str().unwrap().to_string();
    as_if_missing(
        &bob,
        Method::POST,
        &format!("/v1/cloudimages/{bobs}/file"),
        json!({"bucket_url": "team-a:from-bob.qcow2", "file_format": "qcow2"}),
        "team-a",
    )
    .await;
    let a_id = server.project_id("tenant-a");
    let b_id = bob.project.clone();
    let listed = server.cli(&["bucket", "owners"]);
    assert!(
        listed.lines().any(|l| l == format!("team-a {a_id} {b_id}")),
        "{listed}"
    );
    // The share ends: Bob is back to "no such bucket".
    server.cli(&["bucket", "unshare", "team-a", "--project", "tenant-b"]);
    as_if_missing(
        &bob,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image("team-a:disk.raw"),
        "team-a",
    )
    .await;
    let again = server.cli_output(&["bucket", "unshare", "team-a", "--project", "tenant-b"]);
    assert!(!again.status.success(), "no such share");

    // A bucket without owner: no project's members use it, an administrator does.
    as_if_missing(
        &alice,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image("staging:disk.raw"),
        "staging",
    )
    .await;
    let admin = Signer::new(&server, "admin", "admin");
    import(&admin, "staging:disk.raw").await;
    // Assigned to tenant-a, Alice uses it; creating it again for someone else is refused.
    server.cli(&["bucket", "assign", "staging", "--project", "tenant-a"]);
    import(&alice, "staging:disk.raw").await;
    let steal = server.cli_output(&["bucket", "create", "staging", "--project", "tenant-b"]);
    assert!(!steal.status.success());
    assert!(String::from_utf8_lossy(&steal.stderr).contains("exists already"));
    server.cli(&["bucket", "create", "staging", "--project", "tenant-a"]);
    server.cli(&["bucket", "assign", "staging", "--no-project"]);
    as_if_missing(
        &alice,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image("staging:disk.raw"),
        "staging",
    )
    .await;
    // Unknown projects and buckets are refused by the commands.
    assert!(
        !server
            .cli_output(&["bucket", "share", "team-a", "--project", "nobody"])
            .status
            .success()
    );
    assert!(
        !server
            .cli_output(&["bucket", "share", "never-made", "--project", "tenant-b"])
            .status
            .success()
    );
}

#[tokio::test]
async fn buckets_from_before_owners_belong_to_the_admin_project() {
    let mut server = Server::start(&[]).await;
    let (alice, _bob) = tenants(&server).await;
    server.cli(&["bucket", "create", "alices", "--project", "tenant-a"]);
    server.kill();
    // Made by hand (or by an ims without owners), with an object in it.
    let work = tempfile::tempdir().unwrap();
    let disk = secret_disk(work.path(), "legacy");
    std::fs::create_dir_all(server.dir.join("buckets/legacy/d")).unwrap();
    std::fs::copy(&disk, server.dir.join("buckets/legacy/d/disk.raw")).unwrap();
    server.spawn().await;

    let admin_project = server.project_id("admin");
    let a_id = alice.project.clone();
    let listed = server.cli(&["bucket", "owners"]);
    let owners: Vec<&str> = listed.lines().map(str::trim_end).collect();
    assert_eq!(
        owners,
        [format!("alices {a_id}"), format!("legacy {admin_project}")],
        "{listed}"
    );
    as_if_missing(
        &alice,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image("legacy:d/disk.raw"),
        "legacy",
    )
    .await;
    // A member (not admin) of the admin project uses it.
    server.admin(&[
        "user",
        "create",
        "ops",
        "--password",
        "pw-12345",
        "--project",
        "admin",
    ]);
    let ops = Signer::new(&server, "ops", "admin");
    import(&ops, "legacy:d/disk.raw").await;
}

/// `[buckets]` for the S3 server: every bucket there (the default store), `image-test`
/// named, and `owners` appended.
fn s3_config(path: &std::path::Path, s3: &s3s::S3s, owners: &str) {
    std::fs::write(
        path,
        format!(
            "[buckets]\ndefault = \"east\"\n[buckets.stores.east]\nkind = \"s3\"\nendpoint = \"{}\"\n\
             region = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\
             buckets = [\"image-test\"]\n{owners}",
            s3.endpoint,
            s3s::REGION,
            s3s::ACCESS_KEY,
            s3s::SECRET_KEY
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn s3_buckets_get_their_owners_from_the_configuration() {
    let s3 = s3s::S3s::start();
    s3.bucket("image-test");
    s3.bucket("unowned-s3");
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("ims.toml");
    s3_config(&config, &s3, "");
    let mut server = Server::start(&[("IMS_CONFIG", config.to_str().unwrap())]).await;
    let (alice, bob) = tenants(&server).await;
    // The owners need their projects: configured once the projects exist.
    server.kill();
    s3_config(
        &config,
        &s3,
        "[buckets.owners]\nimage-test = \"tenant-a\"\n",
    );
    server.spawn().await;
    let disk = secret_disk(work.path(), "in s3");
    let disk = disk.to_str().unwrap();
    server.cli(&["bucket", "put", disk, "image-test:disk.raw"]);
    server.cli(&["bucket", "put", disk, "unowned-s3:disk.raw"]);
    assert!(s3.root.join("unowned-s3/disk.raw").is_file());

    import(&alice, "image-test:disk.raw").await;
    as_if_missing(
        &bob,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image("image-test:disk.raw"),
        "image-test",
    )
    .await;
    // Every other name reaches the S3 store with the server's keys (the review's confused
    // deputy): without an owner, only administrators use it.
    as_if_missing(
        &alice,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image("unowned-s3:disk.raw"),
        "unowned-s3",
    )
    .await;
    import(
        &Signer::new(&server, "admin", "admin"),
        "unowned-s3:disk.raw",
    )
    .await;

    // The configuration decides the owner; shares come from the catalog.
    let assign = server.cli_output(&["bucket", "assign", "image-test", "--project", "tenant-b"]);
    assert!(!assign.status.success());
    assert!(String::from_utf8_lossy(&assign.stderr).contains("[buckets.owners]"));
    server.cli(&["bucket", "share", "image-test", "--project", "tenant-b"]);
    import(&bob, "image-test:disk.raw").await;
    as_if_missing(
        &bob,
        Method::POST,
        "/v1/cloudimages/dataimages/action",
        data_image("unowned-s3:disk.raw"),
        "unowned-s3",
    )
    .await;

    // An owner that is no project stops the start, saying which.
    server.kill();
    s3_config(&config, &s3, "[buckets.owners]\nimage-test = \"ghost\"\n");
    let out = server.cli_output(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("buckets.owners.image-test"), "{stderr}");
}

#[tokio::test]
async fn a_share_ended_before_the_job_runs_stops_the_job() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("ims.toml");
    std::fs::write(&config, "").unwrap();
    let mut server = Server::start(&[("IMS_CONFIG", config.to_str().unwrap())]).await;
    let (alice, bob) = tenants(&server).await;
    let disk = secret_disk(work.path(), "queued");
    server.cli(&["bucket", "create", "team-a", "--project", "tenant-a"]);
    server.cli(&["bucket", "put", disk.to_str().unwrap(), "team-a:disk.raw"]);
    server.cli(&["bucket", "share", "team-a", "--project", "tenant-b"]);
    // Imports are queued but not run (a per-kind limit of 0) while the share ends.
    server.kill();
    std::fs::write(&config, "[jobs]\nper_kind = { data_image_from_file = 0 }\n").unwrap();
    server.spawn().await;
    let mut jobs = Vec::new();
    for signer in [&alice, &bob] {
        let (status, body) = signer
            .send(
                Method::POST,
                "/v1/cloudimages/dataimages/action",
                Some(data_image("team-a:disk.raw")),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        jobs.push(body["job_id"].as_str().unwrap().to_string());
    }
    let (_, queued) = bob
        .send(
            Method::GET,
            &format!("/v1/cloudimages/job/{}", jobs[1]),
            None,
        )
        .await;
    assert_eq!(queued["status"], "INIT", "{queued}");
    server.cli(&["bucket", "unshare", "team-a", "--project", "tenant-b"]);
    server.kill();
    std::fs::write(&config, "").unwrap();
    server.spawn().await;
    assert_eq!(wait_job(&alice, &jobs[0]).await["status"], "SUCCESS");
    let failed = wait_job(&bob, &jobs[1]).await;
    assert_eq!(failed["status"], "FAIL", "{failed}");
    assert!(
        failed["fail_reason"]
            .as_str()
            .is_some_and(|r| r.contains("bucket team-a not found")),
        "{failed}"
    );
}
