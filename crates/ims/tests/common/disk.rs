//! Disk image tools run by the tests (`qemu-img`, `qemu-io`).

use std::path::Path;
use std::process::Command;

/// Runs `cmd`, which must succeed; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `qemu-io -f FORMAT -c CMD… FILE`; every command must succeed (a `read -P` whose
/// pattern differs prints "Pattern verification failed" and changes nothing else, so
/// the output is checked too). Its output.
pub fn qemu_io(file: &Path, format: &str, cmds: &[String]) -> String {
    let mut cmd = Command::new("qemu-io");
    cmd.args(["-f", format]);
    for c in cmds {
        cmd.args(["-c", c]);
    }
    let out = run(cmd.arg(file));
    assert!(!out.contains("failed"), "qemu-io {cmds:?}: {out}");
    out
}
