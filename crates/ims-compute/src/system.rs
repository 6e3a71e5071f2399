//! The one way ims runs `qemu-system-x86_64`.
//!
//! Like `ims-qemu` for `qemu-img`, every argument is explicit: no default devices, no
//! user configuration file, no network, a display only on a VNC unix socket in the VM's
//! private directory, control only on a QMP unix socket next to it, and the root disk as
//! one `-blockdev` whose every node (the volume file, its format, the backing file ims
//! recorded, or explicitly none) is named, so QEMU never follows a reference it finds in
//! a disk header. QEMU runs under a seccomp sandbox (no exec, no privilege changes), with
//! no core dumps (they would hold guest memory) and an address-space limit.
//!
//! The process is started in its own session (`setsid`), so it is nobody's controlling
//! terminal's and outlives ims; ims finds it again by its pidfile and the marker in its
//! command line (`-name ims-<server id>,…` and the pidfile path), and never signals a
//! process that does not carry both.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ims_format::Format;
use ims_qemu::Disk;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::qmp::Qmp;

/// The pidfile QEMU writes (and holds locked while it runs) in the VM's directory.
pub const PIDFILE: &str = "qemu.pid";
/// The QMP socket in the VM's directory.
pub const QMP_SOCKET: &str = "qmp.sock";
/// A second QMP socket in the VM's directory, for operators and tests: QEMU serves one
/// client per socket at a time, so whoever uses this one never holds up ims's own.
pub const OPERATOR_QMP_SOCKET: &str = "qmp-operator.sock";
/// The VNC socket in the VM's directory.
pub const VNC_SOCKET: &str = "vnc.sock";
/// QEMU's standard output and error, in the VM's directory.
pub const LOG_FILE: &str = "qemu.log";
/// The block node of the root disk, for QMP and HMP commands (`qemu-io root "…"` needs
/// the device to share writes, which it does not; use [`ROOT_DEVICE_PATH`]).
pub const ROOT_NODE: &str = "root";
/// The qdev id of the root disk's device.
pub const ROOT_DEVICE: &str = "root-disk";
/// The device whose block backend is the guest's view of the root disk: the target for
/// `qemu-io -d <this> "write …"` over HMP, which writes exactly as the guest would.
pub const ROOT_DEVICE_PATH: &str = "/machine/peripheral/root-disk/virtio-backend";

/// The log is cut back to nothing at each start, and by status calls once it passes
/// this (QEMU appends, so a truncation is safe).
pub const LOG_MAX: u64 = 1 << 20;
/// The longest path a unix socket address holds (`sun_path` less its final NUL).
const SUN_PATH_MAX: usize = 107;

/// How QEMU runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
    /// QEMU's own translator: slower, works anywhere.
    Tcg,
}

impl Accel {
    /// KVM when `/dev/kvm` can be opened for reading and writing (what QEMU needs),
    /// otherwise TCG.
    pub fn probe() -> Accel {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            Ok(_) => Accel::Kvm,
            Err(_) => Accel::Tcg,
        }
    }

    /// QEMU's name of the accelerator.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits on every QEMU process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemLimits {
    /// The most virtual CPUs a VM may have.
    pub max_vcpus: u32,
    /// The most guest memory a VM may have, in MiB.
    pub max_memory_mib: u64,
    /// Address space QEMU may use beyond guest memory (code, threads, translation
    /// cache), in MiB: `RLIMIT_AS` is guest memory plus this. A 128 MiB guest maps about
    /// 600 MiB (KVM) to 750 MiB (TCG, 64 MiB cache) in all.
    pub overhead_mib: u64,
    /// TCG's translation cache in MiB (QEMU's default is 1 GiB of address space).
    pub tcg_cache_mib: u64,
    /// How long QEMU may take to answer on its QMP socket after it is started.
    pub start_timeout: Duration,
    /// The guest CPU model (`-cpu`); `None` keeps QEMU's default (`qemu64`), which runs
    /// everywhere. `host` passes the host's CPU through under KVM, but fails to start
    /// under nested KVM that refuses some MSRs (seen here: MSR 0x10a).
    pub cpu_model: Option<&'static str>,
    /// Whether QEMU runs under its seccomp sandbox (`-sandbox on,…`); only a QEMU built
    /// without seccomp needs this off.
    pub sandbox: bool,
}

impl Default for SystemLimits {
    fn default() -> Self {
        SystemLimits {
            max_vcpus: 8,
            max_memory_mib: 16 << 10,
            overhead_mib: 2 << 10,
            tcg_cache_mib: 256,
            start_timeout: Duration::from_secs(30),
            cpu_model: None,
            sandbox: true,
        }
    }
}

/// Why QEMU could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The request breaks a limit or names something unusable (a path QEMU's option
    /// syntax cannot carry, a vCPU count over the maximum).
    #[error("{0}")]
    Refused(String),
    /// QEMU exited or did not come up; the message ends with its last output.
    #[error("qemu-system failed: {0}")]
    Failed(String),
    /// Starting the process or reading its files failed.
    #[error("qemu-system could not run: {0}")]
    Io(#[from] std::io::Error),
}

/// One VM to start.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The marker: QEMU's `-name` is `<name>,process=<name>`, found again in
    /// `/proc/<pid>/cmdline`.
    pub name: &'a str,
    /// The VM's private directory (pidfile, sockets, log).
    pub dir: &'a Path,
    /// The root disk, already checked by the caller.
    pub disk: &'a Disk,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
}

/// The qemu-system runner.
#[derive(Debug, Clone)]
pub struct QemuSystem {
    binary: PathBuf,
    accel: Accel,
    limits: SystemLimits,
}

/// A started QEMU: its pid and the process handle (only to reap it when it ends).
#[derive(Debug)]
pub struct Started {
    /// QEMU's pid.
    pub pid: u32,
    /// The process; dropping it neither kills nor waits.
    pub child: Child,
}

impl QemuSystem {
    /// A runner of `binary` with `accel` under `limits`.
    pub fn new(binary: impl Into<PathBuf>, accel: Accel, limits: SystemLimits) -> Self {
        QemuSystem {
            binary: binary.into(),
            accel,
            limits,
        }
    }

    /// The accelerator every VM uses.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// The limits.
    pub fn limits(&self) -> &SystemLimits {
        &self.limits
    }

    /// The first line of `qemu-system-x86_64 --version`, which also proves the binary
    /// runs.
    pub async fn version(&self) -> Result<String, SystemError> {
        let run = Command::new(&self.binary)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .map_err(|_| SystemError::Failed("--version did not answer".into()))??;
        if !out.status.success() {
            return Err(SystemError::Failed(format!(
                "--version exited with {}",
                out.status
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().next().unwrap_or_default().trim().to_string())
    }

    /// The `-name` argument of a marker.
    pub fn name_arg(name: &str) -> String {
        format!("{name},process={name}")
    }

    /// QEMU's arguments for `vm` (after the binary).
    pub fn args(&self, vm: &Launch<'_>) -> Result<Vec<OsString>, SystemError> {
        if vm.vcpus == 0 || vm.vcpus > self.limits.max_vcpus {
            return Err(SystemError::Refused(format!(
                "{} virtual CPUs; this node allows 1 to {}",
                vm.vcpus, self.limits.max_vcpus
            )));
        }
        if !(16..=self.limits.max_memory_mib).contains(&vm.memory_mib) {
            return Err(SystemError::Refused(format!(
                "{} MiB of memory; this node allows 16 to {} MiB",
                vm.memory_mib, self.limits.max_memory_mib
            )));
        }
        if vm.name.is_empty()
            || !vm
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(SystemError::Refused(format!("bad VM name {:?}", vm.name)));
        }
        let qmp = socket_arg(vm.dir, QMP_SOCKET)?;
        let operator = socket_arg(vm.dir, OPERATOR_QMP_SOCKET)?;
        let vnc = socket_arg(vm.dir, VNC_SOCKET)?;
        let accel = match self.accel {
            Accel::Kvm => "kvm".to_string(),
            Accel::Tcg => format!("tcg,tb-size={}", self.limits.tcg_cache_mib),
        };
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["-nodefaults", "-no-user-config"]);
        push(&["-name", &Self::name_arg(vm.name)]);
        push(&["-machine", "q35", "-accel", &accel]);
        if let Some(model) = &self.limits.cpu_model {
            push(&["-cpu", model]);
        }
        push(&["-m", &vm.memory_mib.to_string()]);
        push(&["-smp", &vm.vcpus.to_string()]);
        push(&["-display", "none", "-vnc", &format!("unix:{vnc}")]);
        push(&["-device", "VGA", "-nic", "none"]);
        // A guest that powers off leaves QEMU in `shutdown`, seen as stopped, instead of
        // vanishing like a crash would.
        push(&["-no-shutdown"]);
        if self.limits.sandbox {
            push(&[
                "-sandbox",
                "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            ]);
        }
        push(&["-qmp", &format!("unix:{qmp},server=on,wait=off")]);
        push(&["-qmp", &format!("unix:{operator},server=on,wait=off")]);
        push(&["-msg", "timestamp=on"]);
        args.push("-pidfile".into());
        args.push(vm.dir.join(PIDFILE).into());
        args.push("-blockdev".into());
        args.push(blockdev(vm.disk)?.into());
        args.push("-device".into());
        args.push(format!("virtio-blk-pci,drive={ROOT_NODE},id={ROOT_DEVICE},bootindex=0").into());
        Ok(args)
    }

    /// Starts `vm` in its own session under the resource limits, its output appended to
    /// the log in its directory, and waits until QEMU answers on QMP. A QEMU that exits
    /// first is reported with the end of its log; one that does not answer in time is
    /// killed.
    pub async fn launch(&self, vm: &Launch<'_>) -> Result<Started, SystemError> {
        let args = self.args(vm)?;
        let log = open_log(&vm.dir.join(LOG_FILE), true)?;
        let address_space = (vm.memory_mib + self.limits.overhead_mib) << 20;
        // `setsid` (not a group leader, so it does not fork) then `prlimit`, both exec:
        // the child's pid is QEMU's.
        let mut child = Command::new("setsid")
            .arg("prlimit")
            .arg("--core=0")
            .arg(format!("--as={address_space}"))
            .arg("--")
            .arg(&self.binary)
            .args(args)
            .current_dir(vm.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| SystemError::Failed("QEMU exited at once".into()))?;
        let socket = vm.dir.join(QMP_SOCKET);
        let deadline = tokio::time::Instant::now() + self.limits.start_timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(SystemError::Failed(format!(
                    "QEMU exited with {status}: {}",
                    log_tail(&vm.dir.join(LOG_FILE))
                )));
            }
            if socket.exists()
                && let Ok(mut qmp) = Qmp::connect(&socket, Duration::from_secs(2)).await
                && qmp.run_state().await.is_ok()
            {
                return Ok(Started { pid, child });
            }
            if tokio::time::Instant::now() >= deadline {
                child.start_kill().ok();
                child.wait().await.ok();
                return Err(SystemError::Failed(format!(
                    "QEMU did not answer on QMP within {:?}: {}",
                    self.limits.start_timeout,
                    log_tail(&vm.dir.join(LOG_FILE))
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `<dir>/<name>` as a socket option value: it must fit a unix socket address and carry
/// no comma (QEMU's option separator).
fn socket_arg(dir: &Path, name: &str) -> Result<String, SystemError> {
    let path = dir.join(name);
    let text = path
        .to_str()
        .ok_or_else(|| SystemError::Refused(format!("{} is not UTF-8", path.display())))?;
    if text.contains(',') {
        return Err(SystemError::Refused(format!(
            "the run directory {} holds a comma",
            dir.display()
        )));
    }
    if text.len() > SUN_PATH_MAX {
        return Err(SystemError::Refused(format!(
            "{text} is longer than a unix socket path may be ({SUN_PATH_MAX} bytes); use a shorter run directory"
        )));
    }
    Ok(text.to_string())
}

/// One file node, by absolute path.
fn file_node(path: &Path) -> Result<Value, SystemError> {
    let text = path
        .to_str()
        .ok_or_else(|| SystemError::Refused(format!("{} is not UTF-8", path.display())))?;
    Ok(json!({ "driver": "file", "filename": text }))
}

fn driver(format: Format) -> Result<&'static str, SystemError> {
    match format {
        Format::Qcow2 | Format::Raw => Ok(format.qemu_name().unwrap_or("raw")),
        other => Err(SystemError::Refused(format!("a {other} root disk"))),
    }
}

/// The root disk as a `-blockdev` JSON object: the volume's format and file, and for a
/// qcow2 file its backing spelled out (the blob ims recorded, read-only, itself with no
/// backing) or `null`, which tells QEMU there is none whatever the header says. JSON
/// needs no escaping rules of its own for paths.
pub fn blockdev(disk: &Disk) -> Result<String, SystemError> {
    let mut node = json!({
        "node-name": ROOT_NODE,
        "driver": driver(disk.format)?,
        "discard": "unmap",
        "file": file_node(&disk.path)?,
    });
    if disk.format == Format::Qcow2 {
        node["backing"] = match &disk.backing {
            Some((path, format)) => {
                let mut backing = json!({
                    "driver": driver(*format)?,
                    "read-only": true,
                    "file": file_node(path)?,
                });
                if *format == Format::Qcow2 {
                    backing["backing"] = Value::Null;
                }
                backing
            }
            None => Value::Null,
        };
    } else if disk.backing.is_some() {
        return Err(SystemError::Refused(
            "a raw disk cannot have a backing file".into(),
        ));
    }
    Ok(node.to_string())
}

/// Opens (creating, private) the log for appending; `fresh` empties it first.
pub(crate) fn open_log(path: &Path, fresh: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    if fresh || file.metadata()?.len() > LOG_MAX {
        file.set_len(0)?;
    }
    Ok(file)
}

/// The last 2 KiB of a log, on one line.
pub(crate) fn log_tail(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return "no log".into();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(2048)));
    let mut tail = Vec::new();
    let _ = file.take(2048).read_to_end(&mut tail);
    let text = String::from_utf8_lossy(&tail);
    let text = text.trim();
    if text.is_empty() {
        "no output".into()
    } else {
        text.replace('\n', " | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> QemuSystem {
        QemuSystem::new("qemu-system-x86_64", Accel::Tcg, SystemLimits::default())
    }

    fn overlay() -> Disk {
        Disk {
            path: "/d/v,1.qcow2".into(),
            format: Format::Qcow2,
            backing: Some(("/d/images/b\"x".into(), Format::Raw)),
        }
    }

    #[test]
    fn blockdev_names_every_node() {
        let v: Value = serde_json::from_str(&blockdev(&overlay()).unwrap()).unwrap();
        assert_eq!(v["driver"], "qcow2");
        assert_eq!(v["file"]["filename"], "/d/v,1.qcow2");
        assert_eq!(v["backing"]["driver"], "raw");
        assert_eq!(v["backing"]["read-only"], true);
        assert_eq!(v["backing"]["file"]["filename"], "/d/images/b\"x");
        let alone = Disk {
            backing: None,
            ..overlay()
        };
        let v: Value = serde_json::from_str(&blockdev(&alone).unwrap()).unwrap();
        assert!(v["backing"].is_null() && v.as_object().unwrap().contains_key("backing"));
        let raw = Disk {
            format: Format::Raw,
            backing: None,
            ..overlay()
        };
        let v: Value = serde_json::from_str(&blockdev(&raw).unwrap()).unwrap();
        assert!(!v.as_object().unwrap().contains_key("backing"));
        let vmdk = Disk {
            format: Format::Vmdk,
            ..overlay()
        };
        assert!(blockdev(&vmdk).is_err());
    }

    #[test]
    fn arguments_are_explicit_and_private() {
        let disk = overlay();
        let dir = Path::new("/run/ims/servers/x");
        let vm = Launch {
            name: "ims-x",
            dir,
            disk: &disk,
            vcpus: 2,
            memory_mib: 128,
        };
        let args: Vec<String> = system()
            .args(&vm)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].clone()
        };
        assert_eq!(&args[..2], ["-nodefaults", "-no-user-config"]);
        assert_eq!(after("-name"), "ims-x,process=ims-x");
        assert_eq!(after("-nic"), "none");
        assert_eq!(after("-vnc"), "unix:/run/ims/servers/x/vnc.sock");
        assert_eq!(
            after("-qmp"),
            "unix:/run/ims/servers/x/qmp.sock,server=on,wait=off"
        );
        assert_eq!(after("-accel"), "tcg,tb-size=256");
        assert_eq!(after("-m"), "128");
        assert_eq!(after("-smp"), "2");
        assert!(after("-sandbox").contains("spawn=deny"));
        assert!(!args.iter().any(|a| a == "-netdev" || a == "-net"));
    }

    #[test]
    fn limits_and_unusable_paths_are_refused() {
        let disk = overlay();
        let base = Launch {
            name: "ims-x",
            dir: Path::new("/run/x"),
            disk: &disk,
            vcpus: 1,
            memory_mib: 64,
        };
        let s = system();
        assert!(s.args(&base).is_ok());
        for bad in [
            Launch {
                vcpus: 0,
                ..base.clone()
            },
            Launch {
                vcpus: 9,
                ..base.clone()
            },
            Launch {
                memory_mib: 8,
                ..base.clone()
            },
            Launch {
                memory_mib: 64 << 10,
                ..base.clone()
            },
            Launch {
                dir: Path::new("/run/a,b"),
                ..base.clone()
            },
            Launch {
                name: "x,y",
                ..base.clone()
            },
        ] {
            assert!(
                matches!(s.args(&bad), Err(SystemError::Refused(_))),
                "{bad:?}"
            );
        }
        let long = "/x".repeat(60);
        let long = Launch {
            dir: Path::new(&long),
            ..base
        };
        assert!(s.args(&long).is_err());
    }
}
