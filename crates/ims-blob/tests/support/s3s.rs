//! A real S3 server for tests: `s3s-fs` on a loopback port of its choosing, serving the
//! subdirectories of a temporary directory as buckets and checking SigV4 signatures.
//!
//! The binary is `$IMS_TEST_S3S_FS`, or `<repo>/.tools/s3s/bin/s3s-fs` where
//! `scripts/test` installs it. A missing binary fails the test: it is never skipped.

#![allow(dead_code, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "IMSTESTACCESSKEY0001";
pub const SECRET_KEY: &str = "ims-test-secret-key-never-logged-0123456";
pub const REGION: &str = "us-east-1";

/// A running s3s-fs.
pub struct S3s {
    child: Child,
    pub endpoint: String,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

/// Where the s3s-fs binary is; panics with instructions when it is not there.
pub fn binary() -> PathBuf {
    let path = match std::env::var_os("IMS_TEST_S3S_FS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/s3s/bin/s3s-fs"),
    };
    assert!(
        path.is_file(),
        "s3s-fs not found at {}: run scripts/test (it installs it), or \
         `cargo install s3s-fs@0.14.1 --locked --features binary --root .tools/s3s`, \
         or point IMS_TEST_S3S_FS at the binary",
        path.display()
    );
    path
}

impl S3s {
    /// Starts the server with an empty root on a port it picks (`--port 0`) and waits
    /// until its log says where it listens.
    pub fn start() -> S3s {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let log_path = dir.path().join("s3s.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // s3s-fs logs to stdout, and only errors unless RUST_LOG says more.
        let mut child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&root)
            .env("RUST_LOG", "s3s_fs=info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(20);
        let endpoint = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(endpoint) = listening_at(&text) {
                break endpoint;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("s3s-fs exited with {status}: {text}");
            }
            assert!(Instant::now() < deadline, "s3s-fs did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        S3s {
            child,
            endpoint,
            root,
            _dir: dir,
        }
    }

    /// Creates a bucket (a directory under the root).
    pub fn bucket(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to the server: a stalled store, and its recovery.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} s3s-fs");
    }

    /// Regular files under the root, relative to it, s3s-fs's own bookkeeping included.
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }
}

/// The URL in s3s-fs's "server is running at http://…" log line, once the line is
/// whole (a line being written may end mid-port).
fn listening_at(log: &str) -> Option<String> {
    let (_, rest) = log.split_once("server is running at ")?;
    let url = &rest[..rest.find(char::is_whitespace)?];
    url.starts_with("http://").then(|| url.to_string())
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            walk(base, &path, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

impl Drop for S3s {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
