//! The catalog port keys are stored through.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Key, KeyId, KeyState};
use crate::error::Result;

/// One page of a project's keys, oldest first (Huawei's `limit`/`marker`, the marker
/// being the number of keys before the page).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyQuery {
    /// Only this project's keys.
    pub project_id: String,
    /// Only keys in this state.
    pub state: Option<KeyState>,
    /// Keys to skip.
    pub offset: u64,
    /// Keys per page.
    pub limit: u64,
}

/// A page of keys and how many match in all.
#[derive(Debug, Clone, Default)]
pub struct KeyPage {
    /// The keys of the page.
    pub keys: Vec<Key>,
    /// How many keys match the query in all.
    pub total: u64,
}

/// The key catalog. Changes are compare-and-set on the row's revision.
#[async_trait]
pub trait KeyRepo: Send + Sync {
    /// Writes a new key if its project has fewer than `max_keys` and no key with its
    /// alias: `AlreadyExists` (alias) or `QuotaExceeded` otherwise.
    async fn insert(&self, key: &Key, max_keys: u64) -> Result<()>;
    /// Loads a key.
    async fn get(&self, id: KeyId) -> Result<Option<Key>>;
    /// Stores `key` if it is still at revision `key.version`; a `Conflict` otherwise.
    async fn save(&self, key: &Key) -> Result<()>;
    /// One page of keys.
    async fn list(&self, query: &KeyQuery) -> Result<KeyPage>;
    /// Keys pending deletion whose date is before `before`, of every project.
    async fn due_for_deletion(&self, before: OffsetDateTime) -> Result<Vec<Key>>;
    /// Removes a key still pending deletion at revision `key.version`; a `Conflict`
    /// otherwise (cancelled meanwhile).
    async fn remove(&self, key: &Key) -> Result<()>;
    /// The value recorded to recognise the master key, if one was recorded.
    async fn master_check(&self) -> Result<Option<String>>;
    /// Records `check` unless a value is recorded already; returns the recorded value.
    async fn record_master_check(&self, check: &str) -> Result<String>;
}
