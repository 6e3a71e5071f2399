//! The embedded compute drivers behind [`ims_domain::server::ComputeDriver`]:
//! - [`QemuDriver`] runs each image server as a QEMU process on its root volume, through
//!   the one `qemu-system-x86_64` wrapper ([`QemuSystem`]) and a small QMP client
//!   ([`Qmp`]); its VMs outlive ims and are adopted when it starts again;
//! - [`NoneDriver`] boots nothing, for nodes without QEMU;
//! - [`detect`] picks one from configuration and what the node has.

mod driver;
mod none;
mod process;
mod qmp;
mod system;

pub use driver::{QemuConfig, QemuDriver, vm_state};
pub use none::{NONE_DETAILS, NoneDriver};
pub use process::kill_leftovers;
pub use qmp::{Qmp, QmpError};
pub use system::{
    Accel, LOG_FILE, LOG_MAX, Launch, OPERATOR_QMP_SOCKET, PIDFILE, QMP_SOCKET, QemuSystem,
    ROOT_DEVICE, ROOT_DEVICE_PATH, ROOT_NODE, Started, SystemError, SystemLimits, VNC_SOCKET,
    blockdev,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ims_domain::server::ComputeDriver;
use ims_domain::{Error, Result};
use ims_volume::FsVolumeStore;

/// The QEMU binary looked for on `PATH` unless another is configured.
pub const QEMU_SYSTEM: &str = "qemu-system-x86_64";

/// Which driver the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// `qemu` when its binary is found and runs, else `none`.
    #[default]
    Auto,
    /// `qemu`, or an error.
    Qemu,
    /// `none`.
    None,
}

impl std::str::FromStr for DriverChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(DriverChoice::Auto),
            "qemu" => Ok(DriverChoice::Qemu),
            "none" => Ok(DriverChoice::None),
            other => Err(format!(
                "unknown compute driver {other:?} (auto, qemu, none)"
            )),
        }
    }
}

/// The driver chosen, and why, for the start-up log and the server's status details.
pub struct Detection {
    /// The driver.
    pub driver: Arc<dyn ComputeDriver>,
    /// Why it was chosen (`qemu-system-x86_64 … with kvm`, `… not found on PATH`).
    pub reason: String,
}

impl std::fmt::Debug for Detection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detection")
            .field("driver", &self.driver.name())
            .field("reason", &self.reason)
            .finish()
    }
}

/// The QEMU binary `wanted` names: itself if it is a path, else the first file of that
/// name on `PATH`.
pub fn find_binary(wanted: &Path) -> Option<PathBuf> {
    if wanted.components().count() > 1 {
        return wanted.is_file().then(|| wanted.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(wanted))
        .find(|candidate| candidate.is_file())
}

/// Picks the compute driver: `qemu` with `config` (its binary looked up as
/// [`find_binary`] does), keeping its VMs in `run_dir` and resolving disks through
/// `volumes`; or `none`, with the reason.
pub async fn detect(
    choice: DriverChoice,
    mut config: QemuConfig,
    run_dir: PathBuf,
    volumes: Arc<FsVolumeStore>,
) -> Result<Detection> {
    if choice == DriverChoice::None {
        return Ok(Detection {
            driver: Arc::new(NoneDriver),
            reason: "the none driver is configured".into(),
        });
    }
    let missing = |reason: String| -> Result<Detection> {
        if choice == DriverChoice::Qemu {
            return Err(Error::NotSupported(format!(
                "the qemu compute driver is configured, but {reason}"
            )));
        }
        Ok(Detection {
            driver: Arc::new(NoneDriver),
            reason: format!("{reason}; image servers boot nothing"),
        })
    };
    let Some(found) = find_binary(&config.binary) else {
        return missing(format!("{} was not found", config.binary.display()));
    };
    config.binary = found.clone();
    match QemuDriver::new(config, run_dir, volumes).await {
        Ok(driver) => {
            let reason = format!(
                "{} ({}) with {}",
                found.display(),
                driver.version(),
                driver.accel()
            );
            Ok(Detection {
                driver: Arc::new(driver),
                reason,
            })
        }
        Err(e) => missing(format!("{} does not run: {e}", found.display())),
    }
}
