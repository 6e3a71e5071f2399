//! A real `ims` process on a free loopback port with a temporary data directory.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

// A directory module beside this file: `common.rs` is also a test target of its own.
#[path = "common/signed.rs"]
pub mod signed;

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
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts a server with extra `IMS_*` environment.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let port = free_port();
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
        let mut s = Server {
            child: None,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            port,
            database,
            env,
            _tmp: Some(tmp),
        };
        s.spawn().await;
        s
    }

    /// (Re)starts the process on the same data dir and port.
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ims"))
            .args(["serve", "--data-dir"])
            .arg(&self.dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(format!("{}/healthcheck", self.url)).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "server did not start: {}",
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// SIGKILL, as a crash.
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
        Command::new(env!("CARGO_BIN_EXE_ims"))
            .arg("admin")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .unwrap()
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

    /// A project-scoped token.
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}},
                          "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let r = reqwest::Client::new()
            .post(format!("{}/v3/auth/tokens", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }

    /// An admin token.
    pub async fn admin_token(&self) -> String {
        self.token("admin", &self.admin_password(), "admin").await
    }

    /// Files under the image store, temp files included.
    pub fn stored_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.dir.join("images"), &mut out);
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

    pub async fn show(&self, id: &str) -> Value {
        let r = self
            .req(reqwest::Method::GET, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
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
    /// Bytes of writes in progress: the files under the image store's `.tmp` directory.
    pub fn bytes_being_written(&self) -> u64 {
        let mut files = Vec::new();
        walk(&self.dir.join("images/.tmp"), &mut files);
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

impl Server {
    /// Creates `project` and `user` (password `pw-<user>`) holding `member` there.
    pub fn add_member(&self, project: &str, user: &str) {
        self.admin(&["project", "create", project]);
        let password = format!("pw-{user}");
        self.admin(&[
            "user",
            "create",
            user,
            "--password",
            &password,
            "--project",
            project,
            "--role",
            "member",
        ]);
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
