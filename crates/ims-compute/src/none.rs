//! The `none` driver, for nodes without QEMU: an image server is its root volume alone.
//! Nothing boots, so the disk is always consistent; every operation succeeds without
//! effect and the status says why nothing runs.

use async_trait::async_trait;
use ims_domain::Result;
use ims_domain::server::{ComputeDriver, ServerId, VmSpec, VmState, VmStatus};

/// What the `none` driver says of every server.
pub const NONE_DETAILS: &str = "no hypervisor: the none driver boots nothing";

/// The driver that runs nothing (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoneDriver;

fn stopped() -> VmStatus {
    VmStatus {
        state: VmState::Stopped,
        details: NONE_DETAILS.into(),
    }
}

#[async_trait]
impl ComputeDriver for NoneDriver {
    fn name(&self) -> &'static str {
        "none"
    }

    async fn start(&self, _spec: &VmSpec) -> Result<VmStatus> {
        Ok(stopped())
    }

    async fn status(&self, _id: ServerId) -> Result<VmStatus> {
        Ok(stopped())
    }

    async fn stop(&self, _id: ServerId) -> Result<()> {
        Ok(())
    }

    async fn quiesce(&self, _id: ServerId) -> Result<()> {
        Ok(())
    }

    async fn resume(&self, _id: ServerId) -> Result<()> {
        Ok(())
    }

    /// Removes nothing: the volume is the domain's to delete.
    async fn delete(&self, _id: ServerId) -> Result<()> {
        Ok(())
    }

    /// The driver holds nothing for any server.
    async fn list(&self) -> Result<Vec<(ServerId, VmStatus)>> {
        Ok(Vec::new())
    }
}
