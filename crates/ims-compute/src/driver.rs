//! The `qemu` driver: each image server is one QEMU process with its root volume as its
//! disk, kept in `<run dir>/<server id>/` (private): the pidfile, the QMP and VNC
//! sockets, QEMU's log and `state.json` (what was started, and whether ims stopped it).
//!
//! The directory is the driver's whole memory, so a new driver on the same run
//! directory (ims restarted) sees every VM: a live process carrying the server's marker
//! is adopted, the directory of a process that died without being stopped is cleaned up
//! and reported gone, and a VM ims stopped stays `stopped` until it is started or
//! deleted. Operations on one server are serialised within the process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ims_blob::private_dir;
use ims_domain::server::{ComputeDriver, ServerId, VmSpec, VmState, VmStatus};
use ims_domain::{Error, Result};
use ims_volume::FsVolumeStore;
use serde::{Deserialize, Serialize};

use crate::process::{is_ours, kill_if_ours, live_pid, marker, settle, wait_gone};
use crate::qmp::{Qmp, QmpError};
use crate::system::{
    Accel, LOG_FILE, Launch, OPERATOR_QMP_SOCKET, PIDFILE, QMP_SOCKET, QemuSystem, SystemError,
    SystemLimits, VNC_SOCKET, log_tail, open_log,
};

const STATE_FILE: &str = "state.json";

/// How the `qemu` driver runs VMs.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The `qemu-system-x86_64` binary: a path, or a name looked up on `PATH`.
    pub binary: PathBuf,
    /// The accelerator; `None` probes `/dev/kvm` once, when the driver is made.
    pub accel: Option<Accel>,
    /// Limits on each QEMU process.
    pub limits: SystemLimits,
    /// How long a guest has to power off after an ACPI power-button press before QEMU is
    /// told to quit.
    pub powerdown_timeout: Duration,
    /// How long QEMU has to exit after `quit` before it is killed.
    pub quit_timeout: Duration,
    /// The wait for each QMP exchange.
    pub qmp_timeout: Duration,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            binary: crate::QEMU_SYSTEM.into(),
            accel: None,
            limits: SystemLimits::default(),
            powerdown_timeout: Duration::from_secs(60),
            quit_timeout: Duration::from_secs(10),
            qmp_timeout: Duration::from_secs(10),
        }
    }
}

/// What `state.json` records of a VM.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    /// The root disk file.
    disk: PathBuf,
    vcpus: u32,
    memory_mib: u64,
    accel: String,
    /// Set when ims stopped the VM: its absence then is not a death.
    stopped: bool,
}

/// What the run directory says about a server.
enum Found {
    /// Nothing: no directory.
    Nothing,
    /// A QEMU of ours runs.
    Live(u32),
    /// No process, and ims stopped it.
    Stopped,
    /// No process, and nobody stopped it: it died.
    Dead,
}

/// The embedded compute driver (see the module documentation).
#[derive(Debug)]
pub struct QemuDriver {
    system: QemuSystem,
    run_dir: PathBuf,
    volumes: Arc<FsVolumeStore>,
    config: QemuConfig,
    version: String,
    locks: Mutex<HashMap<ServerId, Arc<tokio::sync::Mutex<()>>>>,
}

fn system_err(e: SystemError) -> Error {
    match e {
        SystemError::Refused(m) => Error::InvalidInput(m),
        other => Error::internal(other),
    }
}

fn qmp_err(e: QmpError) -> Error {
    Error::Unavailable(e.to_string())
}

/// QEMU's run state as a [`VmState`].
pub fn vm_state(run_state: &str) -> VmState {
    match run_state {
        "running" => VmState::Running,
        "shutdown" | "guest-panicked" => VmState::Stopped,
        _ => VmState::Paused,
    }
}

impl QemuDriver {
    /// A driver keeping its VMs under `run_dir` (created, private), resolving root disks
    /// through `volumes`. Probes the accelerator (unless configured) and the binary's
    /// version.
    pub async fn new(
        config: QemuConfig,
        run_dir: impl Into<PathBuf>,
        volumes: Arc<FsVolumeStore>,
    ) -> Result<Self> {
        let run_dir = run_dir.into();
        private_dir(&run_dir).map_err(Error::internal)?;
        let accel = config.accel.unwrap_or_else(Accel::probe);
        let system = QemuSystem::new(&config.binary, accel, config.limits);
        let version = system.version().await.map_err(system_err)?;
        Ok(QemuDriver {
            system,
            run_dir,
            volumes,
            config,
            version,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// The accelerator the VMs use.
    pub fn accel(&self) -> Accel {
        self.system.accel()
    }

    /// What `qemu-system-x86_64 --version` said.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Server `id`'s directory.
    pub fn server_dir(&self, id: ServerId) -> PathBuf {
        self.run_dir.join(id.to_string())
    }

    /// Server `id`'s QMP socket (QEMU serves one client at a time: hold it briefly).
    pub fn qmp_socket(&self, id: ServerId) -> PathBuf {
        self.server_dir(id).join(QMP_SOCKET)
    }

    /// Server `id`'s operator QMP socket ([`OPERATOR_QMP_SOCKET`]): for tests and
    /// operators (`human-monitor-command`, say), never used by the driver.
    pub fn operator_qmp_socket(&self, id: ServerId) -> PathBuf {
        self.server_dir(id).join(OPERATOR_QMP_SOCKET)
    }

    /// The pid of server `id`'s QEMU, if one of ours runs.
    pub fn pid(&self, id: ServerId) -> Option<u32> {
        live_pid(&marker(&id.to_string()), &self.server_dir(id))
    }

    /// The resident memory of server `id`'s QEMU in bytes (`VmRSS`), if one of ours
    /// runs: what a VM costs the node besides ims itself.
    pub fn rss(&self, id: ServerId) -> Option<u64> {
        let pid = self.pid(id)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(kib << 10)
    }

    /// A QMP session with server `id`'s QEMU.
    pub async fn qmp(&self, id: ServerId) -> Result<Qmp> {
        Qmp::connect(&self.qmp_socket(id), self.config.qmp_timeout)
            .await
            .map_err(qmp_err)
    }

    fn lock(&self, id: ServerId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id).or_default().clone()
    }

    fn read_state(dir: &Path) -> Option<State> {
        let text = std::fs::read(dir.join(STATE_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn write_state(dir: &Path, state: &State) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Error::internal)?;
        file.write_all(&serde_json::to_vec(state).map_err(Error::internal)?)
            .and_then(|()| file.sync_all())
            .map_err(Error::internal)?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).map_err(Error::internal)
    }

    async fn find(&self, id: ServerId) -> Found {
        let dir = self.server_dir(id);
        if !dir.is_dir() {
            return Found::Nothing;
        }
        settle(&dir).await;
        if let Some(pid) = live_pid(&marker(&id.to_string()), &dir) {
            return Found::Live(pid);
        }
        match Self::read_state(&dir) {
            Some(state) if state.stopped => Found::Stopped,
            _ => Found::Dead,
        }
    }

    /// Removes what a process leaves when it ends (pidfile, sockets), keeping the state
    /// and the log.
    fn clear_runtime(dir: &Path) {
        for name in [PIDFILE, QMP_SOCKET, OPERATOR_QMP_SOCKET, VNC_SOCKET] {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }

    fn details(&self, pid: u32, run_state: &str) -> String {
        format!("qemu ({}), pid {pid}: {run_state}", self.system.accel())
    }

    /// The state of a live VM from QMP; a live process whose QMP does not answer (busy
    /// with another client, or hung) still runs, and says so.
    async fn live_status(&self, id: ServerId, pid: u32) -> VmStatus {
        let _ = open_log(&self.server_dir(id).join(LOG_FILE), false);
        let answer = match self.qmp(id).await {
            Ok(mut qmp) => qmp.run_state().await.map_err(qmp_err),
            Err(e) => Err(e),
        };
        match answer {
            Ok(run_state) => VmStatus {
                state: vm_state(&run_state),
                details: self.details(pid, &run_state),
            },
            Err(e) => VmStatus {
                state: VmState::Running,
                details: format!(
                    "qemu ({}), pid {pid}: alive, QMP did not answer ({e})",
                    self.system.accel()
                ),
            },
        }
    }

    /// Reports a VM that died on its own and removes its directory (a stale socket or
    /// pidfile must not be taken for a live VM later).
    fn bury(&self, id: ServerId) -> VmStatus {
        let dir = self.server_dir(id);
        let tail = log_tail(&dir.join(LOG_FILE));
        let _ = std::fs::remove_dir_all(&dir);
        tracing::warn!(server = %id, "QEMU ended without being stopped: {tail}");
        VmStatus {
            state: VmState::Gone,
            details: format!(
                "the QEMU process ended without being stopped; its last output: {tail}"
            ),
        }
    }

    fn gone() -> VmStatus {
        VmStatus {
            state: VmState::Gone,
            details: "no VM".into(),
        }
    }

    async fn status_locked(&self, id: ServerId) -> VmStatus {
        match self.find(id).await {
            Found::Nothing => Self::gone(),
            Found::Live(pid) => self.live_status(id, pid).await,
            Found::Stopped => VmStatus {
                state: VmState::Stopped,
                details: format!("qemu ({}): stopped", self.system.accel()),
            },
            Found::Dead => self.bury(id),
        }
    }

    /// Ends QEMU at once: `quit` over QMP, then SIGKILL.
    async fn kill(&self, id: ServerId, pid: u32) -> Result<()> {
        let (name, dir) = (marker(&id.to_string()), self.server_dir(id));
        if let Ok(mut qmp) = self.qmp(id).await {
            let _ = qmp.execute("quit", None).await;
        }
        if wait_gone(pid, &name, &dir, self.config.quit_timeout).await {
            return Ok(());
        }
        kill_if_ours(pid, &name, &dir);
        if wait_gone(pid, &name, &dir, Duration::from_secs(10)).await {
            return Ok(());
        }
        Err(Error::internal(format!(
            "QEMU {pid} of server {id} survived SIGKILL"
        )))
    }

    /// Asks a running guest to power off, waits for it (or for QEMU to go), then ends
    /// QEMU. A guest that does not run (paused, say, its disk already flushed) cannot
    /// answer the power button, so QEMU is ended at once.
    async fn shut_down(&self, id: ServerId, pid: u32) -> Result<()> {
        let (name, dir) = (marker(&id.to_string()), self.server_dir(id));
        if let Ok(mut qmp) = self.qmp(id).await
            && qmp.run_state().await.is_ok_and(|s| s == "running")
            && qmp.execute("system_powerdown", None).await.is_ok()
        {
            let deadline = tokio::time::Instant::now() + self.config.powerdown_timeout;
            while tokio::time::Instant::now() < deadline && is_ours(pid, &name, &dir) {
                match qmp.run_state().await {
                    Ok(s) if s == "shutdown" => break,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    Err(_) => break,
                }
            }
        }
        self.kill(id, pid).await
    }

    async fn start_fresh(&self, spec: &VmSpec) -> Result<VmStatus> {
        let id = spec.id;
        let disk = self.volumes.disk(
            &spec.disk.location,
            spec.disk.format,
            spec.disk.backing.as_ref(),
        )?;
        // Before QEMU sees it: the header must be the format ims made and point nowhere
        // but at the backing ims names (which the -blockdev names again).
        disk.check()
            .await
            .map_err(|e| Error::UnsupportedMedia(format!("the root disk is refused: {e}")))?;
        let dir = self.server_dir(id);
        let existed = dir.is_dir();
        private_dir(&dir).map_err(Error::internal)?;
        Self::clear_runtime(&dir);
        let name = marker(&id.to_string());
        let launch = Launch {
            name: &name,
            dir: &dir,
            disk: &disk,
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
        };
        let started = match self.system.launch(&launch).await {
            Ok(started) => started,
            Err(e) => {
                if existed {
                    Self::clear_runtime(&dir);
                } else {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Err(system_err(e));
            }
        };
        let state = State {
            disk: disk.path.clone(),
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            accel: self.system.accel().to_string(),
            stopped: false,
        };
        if let Err(e) = Self::write_state(&dir, &state) {
            let _ = self.kill(id, started.pid).await;
            return Err(e);
        }
        // Reap QEMU when it ends while this process lives; after an ims restart init
        // does. Dropping the handle neither kills nor waits.
        let mut child = started.child;
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        tracing::info!(server = %id, pid = started.pid, accel = %self.system.accel(), "VM started");
        Ok(VmStatus {
            state: VmState::Running,
            details: self.details(started.pid, "running"),
        })
    }
}

#[async_trait]
impl ComputeDriver for QemuDriver {
    fn name(&self) -> &'static str {
        "qemu"
    }

    /// A live VM is adopted (continued if paused; restarted if its guest shut down) and
    /// must run the same disk; otherwise a new QEMU starts.
    async fn start(&self, spec: &VmSpec) -> Result<VmStatus> {
        let limits = self.system.limits();
        if spec.vcpus == 0 || spec.vcpus > limits.max_vcpus {
            return Err(Error::InvalidInput(format!(
                "{} virtual CPUs; this node allows 1 to {}",
                spec.vcpus, limits.max_vcpus
            )));
        }
        if !(16..=limits.max_memory_mib).contains(&spec.memory_mib) {
            return Err(Error::InvalidInput(format!(
                "{} MiB of memory; this node allows 16 to {} MiB",
                spec.memory_mib, limits.max_memory_mib
            )));
        }
        let lock = self.lock(spec.id);
        let _held = lock.lock().await;
        if let Found::Live(pid) = self.find(spec.id).await {
            let path = self.volumes.path(&spec.disk.location)?;
            let Some(recorded) = Self::read_state(&self.server_dir(spec.id)).map(|s| s.disk) else {
                // ims stopped between starting QEMU and recording it: what it runs is
                // unknown, so it goes and the VM starts afresh.
                self.kill(spec.id, pid).await?;
                return self.start_fresh(spec).await;
            };
            if recorded != path {
                return Err(Error::Conflict(format!(
                    "server {} runs a VM on another disk",
                    spec.id
                )));
            }
            // One QMP session at a time: QEMU serves a second client only once the
            // first has gone.
            let mut qmp = self.qmp(spec.id).await?;
            let mut run_state = qmp.run_state().await.map_err(qmp_err)?;
            if vm_state(&run_state) == VmState::Paused {
                qmp.execute("cont", None).await.map_err(qmp_err)?;
                run_state = qmp.run_state().await.map_err(qmp_err)?;
            }
            drop(qmp);
            match vm_state(&run_state) {
                VmState::Running => {
                    return Ok(VmStatus {
                        state: VmState::Running,
                        details: self.details(pid, &run_state),
                    });
                }
                VmState::Paused => {
                    return Err(Error::internal(format!(
                        "server {}'s VM stays {run_state} after cont",
                        spec.id
                    )));
                }
                _ => self.kill(spec.id, pid).await?,
            }
        }
        self.start_fresh(spec).await
    }

    async fn status(&self, id: ServerId) -> Result<VmStatus> {
        let lock = self.lock(id);
        let _held = lock.lock().await;
        Ok(self.status_locked(id).await)
    }

    async fn stop(&self, id: ServerId) -> Result<()> {
        let lock = self.lock(id);
        let _held = lock.lock().await;
        let dir = self.server_dir(id);
        match self.find(id).await {
            Found::Nothing | Found::Stopped => return Ok(()),
            Found::Live(pid) => self.shut_down(id, pid).await?,
            Found::Dead => {}
        }
        Self::clear_runtime(&dir);
        match Self::read_state(&dir) {
            Some(mut state) => {
                state.stopped = true;
                Self::write_state(&dir, &state)
            }
            // A start that never got as far as recording the VM: nothing to keep.
            None => std::fs::remove_dir_all(&dir).map_err(Error::internal),
        }
    }

    async fn quiesce(&self, id: ServerId) -> Result<()> {
        let lock = self.lock(id);
        let _held = lock.lock().await;
        match self.find(id).await {
            // Nothing writes the disk of a VM that does not run.
            Found::Stopped => Ok(()),
            Found::Nothing => Err(Error::Gone(format!("server {id} has no VM"))),
            Found::Dead => Err(Error::Gone(self.bury(id).details)),
            Found::Live(_) => {
                let mut qmp = self.qmp(id).await?;
                if qmp.run_state().await.map_err(qmp_err)? == "running" {
                    // Stopping the VM drains and flushes every block device first.
                    qmp.execute("stop", None).await.map_err(qmp_err)?;
                }
                match vm_state(&qmp.run_state().await.map_err(qmp_err)?) {
                    VmState::Running => Err(Error::internal(format!(
                        "server {id}'s VM still runs after stop"
                    ))),
                    _ => Ok(()),
                }
            }
        }
    }

    async fn resume(&self, id: ServerId) -> Result<()> {
        let lock = self.lock(id);
        let _held = lock.lock().await;
        match self.find(id).await {
            Found::Stopped => Err(Error::Conflict(format!(
                "server {id}'s VM is stopped; start it"
            ))),
            Found::Nothing => Err(Error::Gone(format!("server {id} has no VM"))),
            Found::Dead => Err(Error::Gone(self.bury(id).details)),
            Found::Live(_) => {
                let mut qmp = self.qmp(id).await?;
                match qmp.run_state().await.map_err(qmp_err)?.as_str() {
                    "running" => Ok(()),
                    "shutdown" | "guest-panicked" => Err(Error::Conflict(format!(
                        "server {id}'s guest has shut down; start it"
                    ))),
                    _ => qmp.execute("cont", None).await.map(|_| ()).map_err(qmp_err),
                }
            }
        }
    }

    async fn delete(&self, id: ServerId) -> Result<()> {
        let lock = self.lock(id);
        let _held = lock.lock().await;
        if let Found::Live(pid) = self.find(id).await {
            self.kill(id, pid).await?;
        }
        match std::fs::remove_dir_all(self.server_dir(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// Every server directory, with its state; a VM found dead is reported `gone` (with
    /// why) once and cleaned up.
    async fn list(&self) -> Result<Vec<(ServerId, VmStatus)>> {
        let entries = std::fs::read_dir(&self.run_dir).map_err(Error::internal)?;
        let mut ids = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            match name.to_str().and_then(ServerId::parse) {
                Some(id) if id.to_string() == name.to_string_lossy() => ids.push(id),
                _ => tracing::warn!(entry = ?name, "not a server directory; ignored"),
            }
        }
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push((id, self.status(id).await?));
        }
        Ok(out)
    }
}
