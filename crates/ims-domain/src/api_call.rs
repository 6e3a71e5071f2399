//! Records of asynchronous API calls: what a client polls for when a call outlives its
//! request (ZStack's api-jobs). Kept in the catalog, not in memory, so that any node can
//! answer a poll and a restart loses nothing. A record links to the durable job doing
//! the work, when there is one, and keeps the rendered result once the call is over.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::principal::Principal;

crate::string_enum! {
    /// Where a call is.
    CallState {
        /// Still working.
        Running = "running",
        /// Finished; `result` holds the reply.
        Succeeded = "succeeded",
        /// Failed; `result` holds the error.
        Failed = "failed",
    }
}

/// Who made a call, as stored with it: the result is rendered for this caller when the
/// job ends, possibly on another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The user.
    pub user_id: String,
    /// The user name.
    pub user_name: String,
    /// The project.
    pub project_id: String,
    /// Expanded roles.
    pub roles: Vec<String>,
}

impl From<&Principal> for Caller {
    fn from(p: &Principal) -> Self {
        Caller {
            user_id: p.user_id.clone(),
            user_name: p.user_name.clone(),
            project_id: p.project_id.clone(),
            roles: p.roles.iter().cloned().collect(),
        }
    }
}

impl From<&Caller> for Principal {
    fn from(c: &Caller) -> Self {
        Principal {
            user_id: c.user_id.clone(),
            user_name: c.user_name.clone(),
            project_id: c.project_id.clone(),
            roles: c.roles.iter().cloned().collect(),
        }
    }
}

/// One call.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// The caller's or a generated id (unique).
    pub id: String,
    /// The API it is (the dialect's name, e.g. `AddImage`).
    pub api: String,
    /// Who called.
    pub caller: Caller,
    /// The durable job doing the work, if any.
    pub job_id: Option<String>,
    /// The entity it works on (an image id), if any.
    pub subject_id: Option<String>,
    /// Where it is.
    pub state: CallState,
    /// The reply or error, as the dialect renders it, once finished.
    pub result: Option<serde_json::Value>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When its record may be forgotten: the API's timeout while it runs, the retention
    /// period once it finished.
    pub expires_at: Option<OffsetDateTime>,
}

/// Storage of call records.
#[async_trait]
pub trait ApiCallRepo: Send + Sync {
    /// Stores a new call; `Conflict` when the id exists.
    async fn insert_call(&self, call: &ApiCall) -> Result<()>;
    /// A call by id.
    async fn get_call(&self, id: &str) -> Result<Option<ApiCall>>;
    /// Links a running call to its job and subject.
    async fn link_call(
        &self,
        id: &str,
        job_id: Option<&str>,
        subject_id: Option<&str>,
    ) -> Result<()>;
    /// Records the outcome of a running call (no change if it finished already).
    async fn finish_call(
        &self,
        id: &str,
        state: CallState,
        result: &serde_json::Value,
        expires_at: OffsetDateTime,
    ) -> Result<()>;
    /// Forgets calls that expired before `now`.
    async fn purge_calls(&self, now: OffsetDateTime) -> Result<u64>;
}
