//! The image-server aggregate (Huawei Workspace's "image instance", seed 002): a VM
//! started from an image on a copy-on-write root volume, customised by its user, and
//! captured back into a new image. What runs the VM is behind the [`ComputeDriver`] port.

pub mod compute;
pub mod jobs;
pub mod model;
pub mod repo;
pub mod rules;
pub mod service;
pub mod views;

use std::fmt;

use uuid::Uuid;

pub use compute::{ComputeDriver, VmDisk, VmSpec, VmState, VmStatus};
pub use jobs::{ServerJobs, ServerSweeper};
pub use model::{
    AuthorizedAccount, ImageRef, ImageServer, RootVolumeSpec, ServerSettings, ServerStatus,
    ServerTag,
};
pub use repo::{ServerQuery, ServerRepo};
pub use service::{NewCapture, NewServer, ServerLimits, ServerPatch, ServerService};
pub use views::{SERVER_JOB_KINDS, ServerJob, ServerJobFilter, SubJob};

/// An image server's id: a UUID, shown hyphenated in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub Uuid);

impl ServerId {
    /// A fresh random id.
    pub fn new() -> Self {
        ServerId(Uuid::new_v4())
    }

    /// Parses 8-4-4-4-12 hyphenated or 32 plain hex digits, either case.
    pub fn parse(s: &str) -> Option<Self> {
        crate::volume::parse_uuid(s).map(ServerId)
    }
}

impl Default for ServerId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}
