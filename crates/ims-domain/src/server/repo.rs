//! The catalog port image servers are stored through.

use async_trait::async_trait;

use super::{ImageServer, ServerId, ServerStatus};
use crate::error::Result;
use crate::job::Job;

/// One page of a server listing, newest first (Workspace's `offset`/`limit`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerQuery {
    /// Only this project's servers.
    pub project_id: String,
    /// Only servers whose name contains this (Workspace's `server_name`).
    pub name_contains: Option<String>,
    /// Only this server (Workspace's `server_id`).
    pub id: Option<ServerId>,
    /// Servers to skip.
    pub offset: u64,
    /// Servers per page.
    pub limit: u64,
}

/// The image-server catalog. Every change is a compare-and-set on status and revision
/// ([`ImageServer::version`]), written together with the job that carries the change on,
/// when there is one, in one transaction.
#[async_trait]
pub trait ServerRepo: Send + Sync {
    /// Writes a new server and its job.
    async fn insert(&self, server: &ImageServer, job: &Job) -> Result<()>;
    /// Loads a server, whatever its status.
    async fn get(&self, id: ServerId) -> Result<Option<ImageServer>>;
    /// Stores `server` if it is still `expected` at revision `server.version`, with `job`
    /// if given; a `Conflict` otherwise.
    async fn save(
        &self,
        server: &ImageServer,
        expected: ServerStatus,
        job: Option<&Job>,
    ) -> Result<()>;
    /// Stores every server of `batch` if each is still its `expected` status at its
    /// revision, and `job`, in one transaction; a `Conflict` (and nothing written)
    /// otherwise.
    async fn save_all(&self, batch: &[(ImageServer, ServerStatus)], job: &Job) -> Result<()>;
    /// One page of servers (deleted ones never) and how many match in all.
    async fn list(&self, query: &ServerQuery) -> Result<(Vec<ImageServer>, u64)>;
    /// Every server not deleted, of every project (start-up compares them with the VMs
    /// the compute driver holds).
    async fn live(&self) -> Result<Vec<ImageServer>>;
}
