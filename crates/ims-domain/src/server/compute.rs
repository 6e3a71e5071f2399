//! The port image servers run behind. The embedded adapter runs each server as a QEMU
//! process (`ims-compute`); a `none` adapter keeps a server as its volume alone; a larger
//! site would put libvirt or Nova here.
//!
//! Drivers are idempotent on the server id: the job that starts or deletes a server may
//! run again after a crash, and must then find the VM it started (adopt it) rather than
//! start a second one.

use async_trait::async_trait;

use super::ServerId;
use crate::error::Result;
use crate::volume::{Backing, VolumeFormat};

/// The root disk of a VM: a volume, by its store location (the adapter resolves it), and
/// the backing blob ims recorded for it (never one named inside the disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDisk {
    /// The volume's location in the volume store.
    pub location: String,
    /// Its format.
    pub format: VolumeFormat,
    /// The image blob an overlay reads through to.
    pub backing: Option<Backing>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// The server the VM belongs to.
    pub id: ServerId,
    /// Its root disk.
    pub disk: VmDisk,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
}

crate::string_enum! {
    /// What a driver knows of a server's VM.
    VmState {
        /// The guest runs.
        Running = "running",
        /// The guest is paused (its disk is consistent and unchanging).
        Paused = "paused",
        /// The VM exists but does not run (shut down, or a driver that boots nothing).
        Stopped = "stopped",
        /// The driver holds nothing for this server (never started, deleted, or died and
        /// was cleaned up).
        Gone = "gone",
    }
}

/// A VM's state and, for an operator, what the driver says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmStatus {
    /// The state.
    pub state: VmState,
    /// Free text: the accelerator, a reason it stopped, "no hypervisor" for `none`.
    pub details: String,
}

/// What runs image servers.
#[async_trait]
pub trait ComputeDriver: Send + Sync {
    /// The driver's name (`qemu`, `none`), shown in the server's status details.
    fn name(&self) -> &'static str;
    /// Starts the VM for `spec`. A VM already running for `spec.id` is kept (adopted).
    async fn start(&self, spec: &VmSpec) -> Result<VmStatus>;
    /// The state of server `id`'s VM.
    async fn status(&self, id: ServerId) -> Result<VmStatus>;
    /// Shuts the VM down (gracefully, then forced after the driver's timeout); what the
    /// driver holds for it stays, so it can be started again. Already stopped is fine.
    async fn stop(&self, id: ServerId) -> Result<()>;
    /// Pauses the guest with its disk flushed, so the disk can be read as one moment.
    async fn quiesce(&self, id: ServerId) -> Result<()>;
    /// Lets a quiesced guest run again.
    async fn resume(&self, id: ServerId) -> Result<()>;
    /// Stops the VM if it runs and removes everything the driver holds for it; a server
    /// the driver does not know is fine.
    async fn delete(&self, id: ServerId) -> Result<()>;
    /// Every server the driver holds something for, with its state: start-up compares
    /// this with the catalog to adopt VMs and remove strays.
    async fn list(&self) -> Result<Vec<(ServerId, VmStatus)>>;
}
