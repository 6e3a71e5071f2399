//! A real `ims` process on a loopback port of its choosing with a temporary data
//! directory, and the helpers the integration tests share.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

// Directory modules beside this file: `common.rs` is also a test target of its own.
#[path = "common/disk.rs"]
pub mod disk;
#[path = "common/encryption.rs"]
pub mod encryption;
#[path = "../../ims-blob/tests/support/s3s.rs"]
pub mod s3s;
#[path = "common/signed.rs"]
pub mod signed;
#[path = "common/sources.rs"]
pub mod sources;
#[path = "common/workspace.rs"]
pub mod workspace;
#[path = "common/zstack.rs"]
pub mod zstack;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running server.
pub struct Server {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub url: String,
    pub port: u16,
    /// The catalog's PostgreSQL database when `IMS_TEST_DATABASE_URL` is set (created for
    /// this server, dropped with it); `None` on SQLite.
    pub database: Option<ScratchDatabase>,
    /// The S3 server holding image data when `IMS_TEST_IMAGE_STORE=s3` (started for this
    /// server); `None` with the embedded store.
    pub image_store: Option<s3s::S3s>,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

/// With `IMS_TEST_IMAGE_STORE=s3`, the suite keeps image data in s3s-fs: each server gets
/// one of its own, named in the environment, unless the test configures stores itself.
fn test_image_store(env: &mut Vec<(String, String)>) -> Option<s3s::S3s> {
    if std::env::var("IMS_TEST_IMAGE_STORE").as_deref() != Ok("s3")
        || env
            .iter()
            .any(|(k, _)| k == "IMS_CONFIG" || k.starts_with("IMS_IMAGE_STORES__"))
    {
        return None;
    }
    let s3 = s3s::S3s::start();
    env.extend(image_store_env(&s3));
    Some(s3)
}

/// The environment giving a server bucket `images` of `s3` (created here) as its one
/// image store, named `s3`, with 5 MiB parts.
pub fn image_store_env(s3: &s3s::S3s) -> [(String, String); 2] {
    s3.bucket("images");
    [
        ("IMS_IMAGE_STORES__DEFAULT".into(), "s3".into()),
        (
            "IMS_IMAGE_STORES__STORES".into(),
            format!(
                "{{ s3 = {{ kind = \"s3\", endpoint = \"{}\", region = \"{}\", \
                 bucket = \"images\", part_size_mib = 5, access_key_id = \"{}\", \
                 secret_access_key = \"{}\" }} }}",
                s3.endpoint,
                s3s::REGION,
                s3s::ACCESS_KEY,
                s3s::SECRET_KEY
            ),
        ),
    ]
}

/// A database of its own on the test PostgreSQL server.
pub struct ScratchDatabase {
    /// The server `IMS_TEST_DATABASE_URL` names.
    pub server_url: String,
    /// The database, as `IMS_DATABASE_URL`.
    pub url: String,
}

impl ScratchDatabase {
    /// A fresh database when tests run on PostgreSQL.
    pub async fn create(prefix: &str) -> Option<ScratchDatabase> {
        let server_url = ims_db::scratch::server_url()?;
        let url = ims_db::scratch::create(&server_url, prefix)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "creating a test database on the server in {}: {e}",
                    ims_db::scratch::ENV
                )
            });
        Some(ScratchDatabase { server_url, url })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which may not block on async work: a thread
        // of its own with a runtime of its own drops the database (best effort).
        let (server, url) = (self.server_url.clone(), self.url.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(ims_db::scratch::drop(&server, &url)).err()
        })
        .join();
        if let Ok(Some(e)) = done {
            eprintln!("could not drop test database {}: {e}", self.url);
        }
    }
}

/// Runs `ims [--config CONFIG] bucket --data-dir DATA ARGS…` with the test's own
/// environment (no server needed).
pub fn ims_bucket(config: Option<&Path>, data: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ims"));
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("bucket")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// Polls `probe` every 50 ms until it answers `Ok`, for at most `timeout`; panics with
/// the last `Err` (what the probe saw) when time runs out.
pub async fn wait_until<T, F, Fut>(timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(done) => return done,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "gave up after {timeout:?}: {seen}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Server {
    /// Starts a server with extra `IMS_*` environment.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // A test that brings its own catalog (IMS_DATABASE_URL) keeps it.
        let database = if env.iter().any(|(k, _)| k == "IMS_DATABASE_URL") {
            None
        } else {
            ScratchDatabase::create("ims_test").await
        };
        if let Some(db) = &database {
            env.push(("IMS_DATABASE_URL".into(), db.url.clone()));
        }
        let image_store = test_image_store(&mut env);
        let mut s = Server {
            child: None,
            dir,
            url: String::new(),
            port: 0,
            database,
            image_store,
            env,
            _tmp: Some(tmp),
        };
        s.spawn().await;
        s
    }

    /// (Re)starts the process on the same data dir. The first start takes a port the
    /// system picks (`--listen 127.0.0.1:0`) and learns it from `--addr-file`; a restart
    /// binds that port again, as a restarted server would, so clients made before it
    /// (tokens, signers) keep working.
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let addr_file = self.dir.join("serve.addr");
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(env!("CARGO_BIN_EXE_ims"))
            .args(["serve", "--data-dir"])
            .arg(&self.dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--addr-file")
            .arg(&addr_file)
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr: std::net::SocketAddr = loop {
            if let Ok(written) = std::fs::read_to_string(&addr_file) {
                break written.trim().parse().unwrap();
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "ims serve did not start (exit: {exited:?}): {}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.port = addr.port();
        self.url = format!("http://{addr}");
        // The address is written once ims serves: one health check confirms it.
        let r = reqwest::get(format!("{}/healthcheck", self.url))
            .await
            .unwrap();
        assert!(r.status().is_success(), "health check: {}", r.status());
    }

    /// SIGKILL, as a crash.
    /// Sets (or, with `None`, removes) a variable of the environment that the next
    /// [`Server::spawn`] starts ims with.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.env.push((key.to_string(), value.to_string()));
        }
    }

    /// Runs `ims serve` on this data dir (and catalog) with `env` added, for a start that
    /// must be refused: its output once it exits (a start that serves instead fails the
    /// test after 30 s).
    pub async fn refused_start(&self, env: &[(&str, &str)]) -> std::process::Output {
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_ims"))
                .kill_on_drop(true)
                .args(["serve", "--data-dir"])
                .arg(&self.dir)
                .args(["--listen", "127.0.0.1:0"])
                .envs(
                    self.database
                        .as_ref()
                        .map(|d| ("IMS_DATABASE_URL".to_string(), d.url.clone())),
                )
                .envs(env.iter().copied())
                .output(),
        )
        .await
        .expect("ims serve exits instead of serving")
        .unwrap();
        assert!(!out.status.success(), "the start was not refused");
        out
    }

    /// Sends `sig` (`-STOP`, `-CONT`, …) to the server process.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(status.success(), "kill {sig} {pid}");
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// The admin password from the generated clouds.yaml.
    pub fn admin_password(&self) -> String {
        let yaml = std::fs::read_to_string(self.dir.join("clouds.yaml")).unwrap();
        yaml.lines()
            .find_map(|l| l.trim().strip_prefix("password: "))
            .unwrap()
            .to_string()
    }

    /// Runs `ims admin …` against this server's data dir and catalog (with the server's
    /// environment, so also its database).
    pub fn admin(&self, args: &[&str]) -> String {
        let out = self.admin_output(args);
        assert!(
            out.status.success(),
            "ims admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Like [`Self::admin`], but returns the outcome instead of requiring success.
    pub fn admin_output(&self, args: &[&str]) -> std::process::Output {
        self.cli_output(&[&["admin"], args].concat())
    }

    /// Runs `ims ARGS…` (any command) against this server's data dir, with the server's
    /// environment (its database and configuration).
    pub fn cli_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_ims"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .unwrap()
    }

    /// Like [`Self::cli_output`], but requires success and returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "ims {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Creates project `project` with `user` (password `password`) as its member; the
    /// project's id.
    pub fn add_member(&self, project: &str, user: &str, password: &str) -> String {
        let id = self.admin(&["project", "create", project]);
        self.admin(&[
            "user",
            "create",
            user,
            "--password",
            password,
            "--project",
            project,
            "--role",
            "member",
        ]);
        id
    }

    /// The id of project `name`.
    pub fn project_id(&self, name: &str) -> String {
        let suffix = format!(" {name}");
        self.admin(&["project", "list"])
            .lines()
            .find_map(|l| l.strip_suffix(&suffix).map(str::to_string))
            .unwrap_or_else(|| panic!("no project {name}"))
    }

    /// `POST /v3/auth/tokens` for a project-scoped password token; the answer as it came.
    pub async fn issue_token(
        &self,
        user: &str,
        password: &str,
        project: &str,
    ) -> reqwest::Response {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}},
                          "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        reqwest::Client::new()
            .post(format!("{}/v3/auth/tokens", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A project-scoped token.
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let r = self.issue_token(user, password, project).await;
        assert_eq!(r.status(), 201);
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }

    /// An admin token.
    pub async fn admin_token(&self) -> String {
        self.token("admin", &self.admin_password(), "admin").await
    }

    /// Files under the image store, temp files included.
    /// Whether image data is in `<data-dir>/images/` (not in an S3 store).
    pub fn local_images(&self) -> bool {
        self.image_store.is_none()
    }

    /// The file behind a ZStack `installPath`: a path, or an `s3://bucket/key` URL of the
    /// test's S3 store (s3s-fs keeps `bucket/key` under its root).
    pub fn install_file(&self, install: &str) -> PathBuf {
        match (install.strip_prefix("s3://"), &self.image_store) {
            (Some(object), Some(s3)) => s3.root.join(object),
            _ => PathBuf::from(install),
        }
    }

    pub fn stored_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.image_store {
            Some(s3) => {
                walk(&s3.root.join("images"), &mut out);
                out.retain(|f| !f.contains("/.upload"));
            }
            None => walk(&self.dir.join("images"), &mut out),
        }
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path().display().to_string());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The process first: the database is dropped after it (field order), unused.
        self.kill();
        // VMs outlive ims on purpose (a restart adopts them); a test's must not.
        ims_compute::kill_leftovers(&self.dir.join("servers"));
    }
}

/// A small HTTP client bound to one server and token.
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl Api {
    pub fn new(server: &Server, token: String) -> Api {
        Api {
            http: reqwest::Client::new(),
            url: server.url.clone(),
            token,
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("x-auth-token", &self.token)
    }

    pub async fn create(&self, body: Value) -> Value {
        let r = self
            .req(reqwest::Method::POST, "/v2/images")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create failed");
        r.json().await.unwrap()
    }

    /// A new `queued` image of `disk_format` (`bare` container) named `name`; its id.
    pub async fn new_image(&self, name: &str, disk_format: &str) -> String {
        let made = self
            .create(serde_json::json!({"name": name, "disk_format": disk_format, "container_format": "bare"}))
            .await;
        made["id"].as_str().unwrap().to_string()
    }

    /// `DELETE /v2/images/{id}`; its status.
    pub async fn delete(&self, id: &str) -> reqwest::StatusCode {
        self.req(reqwest::Method::DELETE, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn show(&self, id: &str) -> Value {
        let r = self
            .req(reqwest::Method::GET, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The image's data as `GET /v2/images/{id}/file` serves it.
    pub async fn download(&self, id: &str) -> Vec<u8> {
        let r = self
            .req(reqwest::Method::GET, &format!("/v2/images/{id}/file"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }

    pub async fn upload(&self, id: &str, data: Vec<u8>) -> reqwest::Response {
        self.req(reqwest::Method::PUT, &format!("/v2/images/{id}/file"))
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .unwrap()
    }
}

/// The media type of Glance's JSON patches.
pub const JSON_PATCH: &str = "application/openstack-images-v2.1-json-patch";

/// Sends a request asking for JSON errors; the status and the JSON body (`Null` if none).
pub async fn call(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = api.req(method, path).header("accept", "application/json");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `PATCH /v2/images/{id}` with the JSON patch `ops`, asking for JSON errors.
pub async fn patch(api: &Api, id: &str, ops: Value) -> reqwest::Response {
    api.req(reqwest::Method::PATCH, &format!("/v2/images/{id}"))
        .header("accept", "application/json")
        .header("content-type", JSON_PATCH)
        .body(ops.to_string())
        .send()
        .await
        .unwrap()
}

/// Creates a raw, bare image named `name` in the caller's project; its id.
pub async fn raw_image(api: &Api, name: &str) -> String {
    let image = api
        .create(json!({"name": name, "disk_format": "raw", "container_format": "bare"}))
        .await;
    image["id"].as_str().unwrap().to_string()
}

/// The image's import tasks, as `GET /v2/images/{id}/tasks` lists them.
pub async fn image_tasks(api: &Api, id: &str) -> Value {
    let r = api
        .req(reqwest::Method::GET, &format!("/v2/images/{id}/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The image's newest import task once it has ended (`success` or `failure`): the
/// image may be settled a moment before its task says so.
pub async fn ended_import(api: &Api, id: &str) -> Value {
    wait_until(Duration::from_secs(60), move || async move {
        let t = image_tasks(api, id).await;
        match t["tasks"][0]["status"].as_str() {
            Some("success" | "failure") => Ok(t["tasks"][0].clone()),
            _ => Err(format!("the import has not ended: {t}")),
        }
    })
    .await
}

/// Waits (a minute at most) until the image's status is `want`; the image.
pub async fn wait_status(api: &Api, id: &str, want: &str) -> Value {
    wait_until(Duration::from_secs(60), move || async move {
        let image = api.show(id).await;
        if image["status"] == want {
            Ok(image)
        } else {
            Err(format!("image stuck in {}", image["status"]))
        }
    })
    .await
}

// ---------------------------------------------------------------------------------
// Waiting on a condition instead of sleeping a fixed time.

/// Calls `check` every 50 ms until it yields a value and returns it; fails the test,
/// naming `what`, when `limit` passes first.
pub async fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Server {
    /// Bytes of writes in progress: the files under the image store's `.tmp` directory,
    /// or the parts of multipart uploads in the S3 image store (not ims's journal).
    pub fn bytes_being_written(&self) -> u64 {
        let mut files = Vec::new();
        match &self.image_store {
            Some(s3) => {
                walk(&s3.root, &mut files);
                files.retain(|f| f.contains(".upload") && !f.contains("/.uploads/"));
            }
            None => walk(&self.dir.join("images/.tmp"), &mut files),
        }
        files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// A loopback HTTP source that answers every request with `size` bytes of 0x5a, one
/// 1 MiB chunk every `delay` (a download that lasts), and counts the requests it got.
pub struct SlowSource {
    pub port: u16,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowSource {
    pub async fn start(size: usize, delay: Duration) -> SlowSource {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                    );
                    if sock.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![0x5au8; 1 << 20];
                    let mut left = size;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if sock.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                        tokio::time::sleep(delay).await;
                    }
                });
            }
        });
        SlowSource { port, requests }
    }

    /// Connections accepted so far (one per fetch).
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A URL on this source.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Api {
    /// `GET path`, which must answer 200, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// Starts a `web-download` import of `uri` into image `id`.
    pub async fn web_download(&self, id: &str, uri: &str) -> reqwest::Response {
        self.req(reqwest::Method::POST, &format!("/v2/images/{id}/import"))
            .json(&json!({"method": {"name": "web-download", "uri": uri}}))
            .send()
            .await
            .unwrap()
    }

    /// The status and message of the image's newest Glance task (empty when none).
    pub async fn newest_task(&self, id: &str) -> (String, String) {
        let r = self
            .req(reqwest::Method::GET, &format!("/v2/images/{id}/tasks"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let tasks: Value = r.json().await.unwrap();
        let text = |field: &str| {
            tasks["tasks"][0][field]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        (text("status"), text("message"))
    }
}
