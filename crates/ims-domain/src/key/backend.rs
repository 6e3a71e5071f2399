//! The port to where keys' material lives.

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::Key;
use crate::error::Result;

/// Holds the material of master keys and wraps data keys under it. The built-in backend
/// keeps the material sealed in the catalog ([`super::BuiltinBackend`]); an external KMS
/// (KMIP) keeps it inside the KMS and is only asked to encrypt and decrypt.
///
/// A backend knows nothing of key states: the [`super::KeyService`] checks them before
/// every call.
#[async_trait]
pub trait KeyBackend: Send + Sync {
    /// The name recorded with each key it holds (`builtin`, `kmip`).
    fn name(&self) -> &'static str;
    /// Makes the material of the new key `key` (its `material` still empty); returns
    /// what the catalog records to find it again.
    async fn create(&self, key: &Key) -> Result<String>;
    /// Encrypts `plaintext` (a data key) under `key`, bound to `aad`.
    async fn wrap(&self, key: &Key, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>>;
    /// Decrypts what [`KeyBackend::wrap`] made with the same `key` and `aad`; anything
    /// else (another key, other `aad`, altered bytes) is an `InvalidField` on
    /// `cipher_text`.
    async fn unwrap(&self, key: &Key, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    /// Destroys the material for good (a key whose deletion date has passed).
    async fn destroy(&self, key: &Key) -> Result<()>;
}
