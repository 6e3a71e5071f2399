//! The key aggregate: customer master keys (CMKs) of the key management service, per
//! project, with Huawei KMS's states (enabled, disabled, pending deletion), and the data
//! keys wrapped under them. Where a key's material lives is behind the [`KeyBackend`]
//! port: the built-in backend keeps it in the catalog sealed under a master key kept
//! outside the catalog; an external KMS (KMIP) keeps it to itself.

pub mod backend;
pub mod builtin;
mod cache;
pub mod datakey;
pub mod repo;
pub mod rules;
pub mod service;

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

pub use backend::KeyBackend;
pub use builtin::BuiltinBackend;
pub use datakey::WrappedDataKey;
pub use repo::{KeyPage, KeyQuery, KeyRepo};
pub use service::{KeyChange, KeyService, KeySettings, KeySweeper, NewKey};

crate::string_enum! {
    /// A key's state. Cryptographic use needs `Enabled`; a disabled key comes back with
    /// enable, a key pending deletion with cancel (it returns disabled), and after its
    /// waiting period it is destroyed for good.
    KeyState {
        /// Usable.
        Enabled = "enabled",
        /// Kept, but refused for every use until enabled again.
        Disabled = "disabled",
        /// Refused for every use; destroyed at `deletion_at` unless cancelled.
        PendingDeletion = "pending_deletion",
    }
}

/// A key's id: a UUID, always shown hyphenated in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub Uuid);

impl KeyId {
    /// A fresh random id.
    pub fn new() -> Self {
        KeyId(Uuid::new_v4())
    }

    /// Parses the hyphenated form (36 characters, either case); anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 36 {
            return None;
        }
        Uuid::parse_str(s).ok().map(KeyId)
    }
}

impl Default for KeyId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A customer master key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// Its id.
    pub id: KeyId,
    /// The project that owns it; no other project can see or use it.
    pub project_id: String,
    /// Its alias, unique within the project.
    pub alias: String,
    /// Free text.
    pub description: String,
    /// `AES_256` (the only spec images need).
    pub spec: String,
    /// `ENCRYPT_DECRYPT`.
    pub usage: String,
    /// `kms`: the material was made by the key management service.
    pub origin: String,
    /// Its state.
    pub state: KeyState,
    /// Made by the service for itself (an alias ending `/default`); users cannot disable
    /// or delete it.
    pub default_key: bool,
    /// The backend holding its material (`builtin`, `kmip`).
    pub backend: String,
    /// What the backend needs to find the material: the sealed material (built-in) or
    /// the external KMS's object id. Never shown.
    pub material: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// When a key pending deletion is destroyed.
    pub deletion_at: Option<OffsetDateTime>,
    /// Revision for compare-and-set saves.
    pub version: u64,
}

impl Key {
    /// A new enabled `AES_256` `ENCRYPT_DECRYPT` key of `project_id`, held by `backend`,
    /// its material still to be made.
    pub fn new(project_id: &str, alias: &str, backend: &str, at: OffsetDateTime) -> Key {
        Key {
            id: KeyId::new(),
            project_id: project_id.into(),
            alias: alias.into(),
            description: String::new(),
            spec: rules::AES_256.into(),
            usage: rules::ENCRYPT_DECRYPT.into(),
            origin: "kms".into(),
            state: KeyState::Enabled,
            default_key: false,
            backend: backend.into(),
            material: String::new(),
            created_at: at,
            updated_at: at,
            deletion_at: None,
            version: 0,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The material stays out of logs, sealed or not.
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("alias", &self.alias)
            .field("state", &self.state)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl crate::policy::Owned for Key {
    fn owner_project(&self) -> Option<&str> {
        Some(&self.project_id)
    }
}
