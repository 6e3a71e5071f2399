//! Finding and ending QEMU processes ims started, and only those.
//!
//! A pid read from a pidfile may have been reused by another program since, so before a
//! process counts as a VM (or is signalled) its `/proc/<pid>/cmdline` must carry the
//! VM's `-name` marker and the pidfile path of its directory. A zombie has an empty
//! command line and so counts as gone.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::system::{PIDFILE, QemuSystem};

/// The pid in `dir`'s pidfile, if any.
pub(crate) fn read_pid(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(PIDFILE)).ok()?;
    text.trim().parse().ok().filter(|&p| p > 1)
}

/// Whether `pid` is on its way out: its memory is gone (empty command line) but it is
/// not yet a zombie, so it may still hold its files and their locks (the disk's).
/// Kernel threads look the same, but a QEMU's recorded pid is rarely reused by one, and
/// waiting for it is bounded.
pub(crate) fn exiting(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    let empty = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.is_empty());
    empty && !matches!(state, Some('Z' | 'X') | None)
}

/// Waits (up to five seconds) for a process of `dir`'s pidfile that is exiting to be
/// done, so that a VM found dead has let go of its disk.
pub(crate) async fn settle(dir: &Path) {
    let Some(pid) = read_pid(dir) else { return };
    for _ in 0..250 {
        if !exiting(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `pid` is the QEMU named `name` whose pidfile is in `dir`.
pub(crate) fn is_ours(pid: u32, name: &str, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let name_arg = QemuSystem::name_arg(name);
    let pidfile = dir.join(PIDFILE);
    let pair = |flag: &str, value: &[u8]| {
        args.windows(2)
            .any(|w| w[0] == flag.as_bytes() && w[1] == value)
    };
    pair("-name", name_arg.as_bytes()) && pair("-pidfile", pidfile.as_os_str().as_encoded_bytes())
}

/// The live QEMU of `dir`, if there is one.
pub(crate) fn live_pid(name: &str, dir: &Path) -> Option<u32> {
    read_pid(dir).filter(|&pid| is_ours(pid, name, dir))
}

/// Sends SIGKILL to `pid` if it is still ours.
pub(crate) fn kill_if_ours(pid: u32, name: &str, dir: &Path) {
    if is_ours(pid, name, dir) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

/// Waits until `pid` is no longer ours (ended, or a zombie), up to `timeout`.
pub(crate) async fn wait_gone(pid: u32, name: &str, dir: &Path, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !is_ours(pid, name, dir) && !exiting(pid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The marker of a server's VM: `ims-<server id>`.
pub(crate) fn marker(id: &str) -> String {
    format!("ims-{id}")
}

/// Kills, at once and without asking the guest, every QEMU recorded under `run_dir`
/// that is still ims's (marker checked), and waits up to five seconds for each to end.
/// Returns how many it signalled. For tests and for tearing a node down; a running ims
/// leaves its VMs running on purpose.
pub fn kill_leftovers(run_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        let Some(id) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let name = marker(&id);
        let Some(pid) = live_pid(&name, &dir) else {
            continue;
        };
        kill_if_ours(pid, &name, &dir);
        killed += 1;
        for _ in 0..250 {
            if !is_ours(pid, &name, &dir) && !exiting(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    killed
}
