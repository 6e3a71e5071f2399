//! Shared by the test binaries: running `scripts/pykmip-server` and reading what it prints.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ims_kmip::KmipConfig;

/// The test PKI the script makes (PEM contents).
pub struct Pki {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub foreign_cert: Vec<u8>,
    pub foreign_key: Vec<u8>,
    pub server_cert: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl Pki {
    fn read(vars: &HashMap<String, String>) -> Pki {
        let read = |k: &str| std::fs::read(var(vars, k)).unwrap_or_else(|e| panic!("{k}: {e}"));
        Pki {
            ca: read("PYKMIP_CA"),
            cert: read("PYKMIP_CLIENT_CERT"),
            key: read("PYKMIP_CLIENT_KEY"),
            foreign_cert: read("PYKMIP_FOREIGN_CERT"),
            foreign_key: read("PYKMIP_FOREIGN_KEY"),
            server_cert: read("PYKMIP_SERVER_CERT"),
            server_key: read("PYKMIP_SERVER_KEY"),
        }
    }

    /// A client configuration for 127.0.0.1:`port` with the client certificate.
    pub fn config(&self, port: u16) -> KmipConfig {
        KmipConfig::new(
            "127.0.0.1",
            port,
            self.ca.clone(),
            self.cert.clone(),
            self.key.clone(),
        )
    }
}

/// A value the script printed.
pub fn var<'a>(vars: &'a HashMap<String, String>, k: &str) -> &'a str {
    vars.get(k)
        .unwrap_or_else(|| panic!("scripts/pykmip-server printed no {k}: {vars:?}"))
}

/// Runs the script; a failure fails the test with the script's output.
pub fn run_script(args: &[&str]) -> HashMap<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pykmip-server");
    let out = Command::new(&script)
        .args(args)
        .env("PYKMIP_OWNER_PID", std::process::id().to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/pykmip-server {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Runs the script and reads the PKI it printed.
pub fn script_pki(args: &[&str]) -> (Pki, HashMap<String, String>) {
    let vars = run_script(args);
    (Pki::read(&vars), vars)
}

/// A directory for this process under the target's scratch space (`kind/<pid>`); those of
/// test processes that are gone are removed first.
pub fn scratch_dir(kind: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(kind);
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok();
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
