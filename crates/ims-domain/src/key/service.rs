//! The key management use cases (Huawei KMS's key and data-key operations). Keys belong
//! to one project: another project's key, or a malformed id, does not exist for a caller.
//! Every cryptographic use checks the key's state first.

use std::sync::Arc;

use time::Duration;
use zeroize::Zeroizing;

use super::WrappedDataKey;
use super::datakey::binding;
use super::rules::{self, AES_256, ENCRYPT_DECRYPT};
use super::{BuiltinBackend, Key, KeyBackend, KeyId, KeyPage, KeyQuery, KeyRepo, KeyState};
use crate::context::now;
use crate::error::{Entity, Error, KeyRole, Result};
use crate::policy::{check_writer, owns};
use crate::principal::Principal;

/// Limits of the key service.
#[derive(Debug, Clone)]
pub struct KeySettings {
    /// Keys one project may hold (Huawei's quota; KMS.1105 past it).
    pub max_keys_per_project: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            max_keys_per_project: 100,
        }
    }
}

/// A change of a key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChange {
    /// Disabled → enabled.
    Enable,
    /// Enabled → disabled.
    Disable,
    /// Enabled or disabled → pending deletion, destroyed after `days` days.
    ScheduleDeletion {
        /// The waiting period (7–1096).
        days: u32,
    },
    /// Pending deletion → disabled.
    CancelDeletion,
}

/// A create-key request.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// The alias (required, unique in the project).
    pub alias: String,
    /// Free text.
    pub description: Option<String>,
    /// `AES_256` when absent; nothing else is made.
    pub spec: Option<String>,
    /// `ENCRYPT_DECRYPT` when absent; nothing else is made.
    pub usage: Option<String>,
    /// `kms` when absent; imported material (`external`) is not offered.
    pub origin: Option<String>,
}

/// The key management service.
pub struct KeyService {
    repo: Arc<dyn KeyRepo>,
    /// New keys are made here.
    default_backend: Arc<dyn KeyBackend>,
    /// Every backend a stored key may name.
    backends: Vec<Arc<dyn KeyBackend>>,
    settings: KeySettings,
    /// Image data keys already unwrapped (the state check is never cached).
    unwrapped: super::cache::DataKeyCache,
}

/// A key's state as an error for a use it forbids.
fn unusable(key: &Key, role: KeyRole) -> Error {
    let what = match key.state {
        KeyState::Enabled => "enabled",
        KeyState::Disabled => "disabled",
        KeyState::PendingDeletion => "pending deletion",
    };
    let whose = match role {
        KeyRole::Named => "Key",
        KeyRole::Image => "The image's key",
    };
    Error::KeyUnusable {
        id: key.id.to_string(),
        state: key.state.as_str(),
        role,
        message: format!("{whose} {} is {what}.", key.id),
    }
}

impl KeyService {
    /// The service over `repo`; new keys go to `default_backend`, and stored keys may
    /// name it or any of `others`.
    pub fn new(
        repo: Arc<dyn KeyRepo>,
        default_backend: Arc<dyn KeyBackend>,
        others: Vec<Arc<dyn KeyBackend>>,
        settings: KeySettings,
    ) -> Self {
        let mut backends = vec![Arc::clone(&default_backend)];
        backends.extend(others);
        KeyService {
            repo,
            default_backend,
            backends,
            settings,
            unwrapped: Default::default(),
        }
    }

    /// At start-up: records which master key seals the built-in keys, or checks that
    /// `builtin` holds the one recorded. A mismatch stops the start: every key, and so
    /// every encrypted image, would be unreadable.
    pub async fn check_master(repo: &dyn KeyRepo, builtin: &BuiltinBackend) -> Result<()> {
        let recorded = match repo.master_check().await? {
            Some(check) => check,
            None => repo.record_master_check(&builtin.check_value()?).await?,
        };
        if builtin.matches(&recorded) {
            Ok(())
        } else {
            Err(Error::invalid(
                "the KMS master key is not the one this catalog's keys are sealed with",
            ))
        }
    }

    fn backend(&self, key: &Key) -> Result<&Arc<dyn KeyBackend>> {
        self.backends
            .iter()
            .find(|b| b.name() == key.backend)
            .ok_or_else(|| {
                Error::Unavailable(format!(
                    "key {} is held by the {} KMS, which this node is not configured for",
                    key.id, key.backend
                ))
            })
    }

    /// Creates a key in the caller's project.
    pub async fn create(&self, who: &Principal, req: NewKey) -> Result<Key> {
        check_writer(who)?;
        rules::check_alias(&req.alias)?;
        let description = req.description.unwrap_or_default();
        rules::check_description(&description)?;
        let spec = req.spec.unwrap_or_else(|| AES_256.into());
        if spec != AES_256 {
            return Err(Error::field("key_spec", "Only AES_256 keys are offered."));
        }
        let usage = req.usage.unwrap_or_else(|| ENCRYPT_DECRYPT.into());
        if usage != ENCRYPT_DECRYPT {
            return Err(Error::field(
                "key_usage",
                "Only ENCRYPT_DECRYPT keys are offered.",
            ));
        }
        match req.origin.as_deref() {
            None | Some("kms") => {}
            Some(_) => {
                return Err(Error::NotSupported(
                    "Keys with imported material are not offered.".into(),
                ));
            }
        }
        let mut key = Key {
            description,
            spec,
            usage,
            ..Key::new(
                &who.project_id,
                &req.alias,
                self.default_backend.name(),
                now(),
            )
        };
        key.material = self.default_backend.create(&key).await?;
        self.repo
            .insert(&key, self.settings.max_keys_per_project)
            .await?;
        Ok(key)
    }

    /// A key of the caller's project; anything else (another project's, a malformed
    /// id) is not found, a malformed id being an `InvalidField` on `key_id`.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<Key> {
        let key_id =
            KeyId::parse(id).ok_or_else(|| Error::field("key_id", "The key ID is invalid."))?;
        self.repo
            .get(key_id)
            .await?
            .filter(|k| owns(who, k))
            .ok_or_else(|| Error::not_found(Entity::Key, id))
    }

    /// One page of the caller's project's keys.
    pub async fn list(
        &self,
        who: &Principal,
        state: Option<KeyState>,
        offset: u64,
        limit: u64,
    ) -> Result<KeyPage> {
        self.repo
            .list(&KeyQuery {
                project_id: who.project_id.clone(),
                state,
                offset,
                limit,
            })
            .await
    }

    /// Applies `change` to a key of the caller's that is in `from`; a key in another
    /// state is a `Conflict` (the dialect knows which operation it asked for).
    async fn change_state(
        &self,
        who: &Principal,
        id: &str,
        from: &[KeyState],
        change: impl FnOnce(&mut Key),
    ) -> Result<Key> {
        check_writer(who)?;
        let mut key = self.get(who, id).await?;
        if key.default_key {
            return Err(Error::Forbidden(format!(
                "Key {} is a default key of the service.",
                key.id
            )));
        }
        if !from.contains(&key.state) {
            return Err(Error::Conflict(format!(
                "Key {} is {}; the operation is not allowed in that state.",
                key.id, key.state
            )));
        }
        change(&mut key);
        key.updated_at = now();
        self.repo.save(&key).await?;
        key.version += 1;
        Ok(key)
    }

    /// Applies `change` to the caller's key `id` (the state a change needs is checked;
    /// another state is a `Conflict`).
    pub async fn change(&self, who: &Principal, id: &str, change: KeyChange) -> Result<Key> {
        match change {
            KeyChange::Enable => self.enable(who, id).await,
            KeyChange::Disable => self.disable(who, id).await,
            KeyChange::ScheduleDeletion { days } => self.schedule_deletion(who, id, days).await,
            KeyChange::CancelDeletion => self.cancel_deletion(who, id).await,
        }
    }

    /// Enables a disabled key.
    pub async fn enable(&self, who: &Principal, id: &str) -> Result<Key> {
        self.change_state(who, id, &[KeyState::Disabled], |k| {
            k.state = KeyState::Enabled
        })
        .await
    }

    /// Disables an enabled key.
    pub async fn disable(&self, who: &Principal, id: &str) -> Result<Key> {
        self.change_state(who, id, &[KeyState::Enabled], |k| {
            k.state = KeyState::Disabled
        })
        .await
    }

    /// Schedules an enabled or disabled key for destruction after `days` days.
    pub async fn schedule_deletion(&self, who: &Principal, id: &str, days: u32) -> Result<Key> {
        rules::check_pending_days(days)?;
        let from = [KeyState::Enabled, KeyState::Disabled];
        self.change_state(who, id, &from, |k| {
            k.state = KeyState::PendingDeletion;
            k.deletion_at = Some(now() + Duration::days(i64::from(days)));
        })
        .await
    }

    /// Cancels a scheduled deletion; the key comes back disabled (as in Huawei KMS).
    pub async fn cancel_deletion(&self, who: &Principal, id: &str) -> Result<Key> {
        self.change_state(who, id, &[KeyState::PendingDeletion], |k| {
            k.state = KeyState::Disabled;
            k.deletion_at = None;
        })
        .await
    }

    /// An enabled key of the caller's, for a cryptographic use.
    async fn usable(&self, who: &Principal, id: &str) -> Result<Key> {
        let key = self.get(who, id).await?;
        if key.state != KeyState::Enabled {
            return Err(unusable(&key, KeyRole::Named));
        }
        Ok(key)
    }

    /// A new random data key of `bytes` bytes and its wrapping under the key `id`.
    pub async fn generate_data_key(
        &self,
        who: &Principal,
        id: &str,
        bytes: usize,
        aad: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, WrappedDataKey)> {
        let mut plain = Zeroizing::new(vec![0u8; bytes]);
        getrandom::fill(plain.as_mut_slice()).map_err(Error::internal)?;
        let wrapped = self.wrap_data_key(who, id, &plain, aad).await?;
        Ok((plain, wrapped))
    }

    /// Wraps the caller's data key `plaintext` under the key `id`.
    pub async fn wrap_data_key(
        &self,
        who: &Principal,
        id: &str,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<WrappedDataKey> {
        rules::check_aad(aad)?;
        let key = self.usable(who, id).await?;
        let wrapped = self
            .backend(&key)?
            .wrap(&key, plaintext, &binding(&key.project_id, key.id, aad))
            .await?;
        Ok(WrappedDataKey {
            key_id: key.id,
            wrapped,
        })
    }

    /// Unwraps a data key wrapped under the key `id` of the caller's project. A
    /// ciphertext naming another key is an `InvalidField` on `cipher_text`.
    pub async fn unwrap_data_key(
        &self,
        who: &Principal,
        id: &str,
        ciphertext: &WrappedDataKey,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        rules::check_aad(aad)?;
        let key = self.usable(who, id).await?;
        if ciphertext.key_id != key.id {
            return Err(Error::field(
                "cipher_text",
                "The ciphertext was not made with this key.",
            ));
        }
        self.backend(&key)?
            .unwrap(
                &key,
                &ciphertext.wrapped,
                &binding(&key.project_id, key.id, aad),
            )
            .await
    }

    /// Destroys the keys whose waiting period is over: the row first (a compare-and-set,
    /// so a deletion cancelled meanwhile wins), then the material. A crash in between
    /// leaves at most an unreachable object in an external KMS, logged here, never a key
    /// whose material is gone. Returns how many.
    pub async fn destroy_due(&self) -> Result<usize> {
        let mut destroyed = 0;
        for key in self.repo.due_for_deletion(now()).await? {
            match self.repo.remove(&key).await {
                Ok(()) => destroyed += 1,
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
            let material = match self.backend(&key) {
                Ok(backend) => backend.destroy(&key).await,
                Err(e) => Err(e),
            };
            if let Err(e) = material {
                tracing::warn!(key.id = %key.id, error = %e, "a destroyed key's material was left in its KMS");
            }
        }
        Ok(destroyed)
    }
}

/// Destroys keys whose waiting period is over, every sweep.
pub struct KeySweeper(pub Arc<KeyService>);

#[async_trait::async_trait]
impl crate::job::Sweeper for KeySweeper {
    fn name(&self) -> &'static str {
        "keys"
    }

    /// Keys whose date passed while the node was down go at once, not a sweep later.
    async fn recover(&self) -> Result<()> {
        self.sweep().await
    }

    async fn sweep(&self) -> Result<()> {
        let destroyed = self.0.destroy_due().await?;
        if destroyed > 0 {
            tracing::info!(destroyed, "destroyed keys whose deletion date passed");
        }
        Ok(())
    }
}

/// What image data keys are bound to besides their project and key.
const IMAGE_DATA: &[u8] = b"ims image data v1";

/// Data keys of encrypted images. The image service has checked who may use the image;
/// these check the key: it must be `project_id`'s and enabled.
impl KeyService {
    /// A key of `project_id` (the image's owner) named by a request's `cmk_id`: a
    /// malformed id or another project's key is not found.
    async fn project_key(&self, project_id: &str, id: &str) -> Result<Key> {
        KeyId::parse(id)
            .map(|key_id| self.repo.get(key_id))
            .ok_or_else(|| Error::not_found(Entity::Key, id))?
            .await?
            .filter(|k| k.project_id == project_id)
            .ok_or_else(|| Error::not_found(Entity::Key, id))
    }

    /// Checks that `project_id` has the enabled key `id`, for an image about to be
    /// encrypted under it.
    pub async fn check_usable(&self, project_id: &str, id: &str) -> Result<KeyId> {
        let key = self.project_key(project_id, id).await?;
        if key.state != KeyState::Enabled {
            return Err(unusable(&key, KeyRole::Named));
        }
        Ok(key.id)
    }

    /// A fresh data key for an image of `project_id`, and its wrapping under the key
    /// `id`.
    pub async fn new_image_key(
        &self,
        project_id: &str,
        id: &str,
    ) -> Result<(ims_crypt::DataKey, crate::image::Sealing)> {
        let key = self.project_key(project_id, id).await?;
        if key.state != KeyState::Enabled {
            return Err(unusable(&key, KeyRole::Named));
        }
        let data_key = ims_crypt::DataKey::generate().map_err(Error::internal)?;
        let sealing = self.seal_image_key(&key, &data_key).await?;
        Ok((data_key, sealing))
    }

    /// The enabled key an image of `project_id` is encrypted under; a key in another
    /// state, or one destroyed since (`deleted`), is `KeyUnusable` for the image.
    pub async fn image_key(&self, project_id: &str, id: &str) -> Result<Key> {
        let key = match self.project_key(project_id, id).await {
            Ok(key) => key,
            Err(Error::NotFound { .. }) => {
                return Err(Error::KeyUnusable {
                    id: id.to_string(),
                    state: "deleted",
                    role: KeyRole::Image,
                    message: format!("The image's key {id} no longer exists."),
                });
            }
            Err(e) => return Err(e),
        };
        if key.state != KeyState::Enabled {
            return Err(unusable(&key, KeyRole::Image));
        }
        Ok(key)
    }

    /// The data key of an image of `project_id` sealed as `sealing`; refused while its
    /// key is not enabled.
    pub async fn open_image_key(
        &self,
        project_id: &str,
        sealing: &crate::image::Sealing,
    ) -> Result<ims_crypt::DataKey> {
        let key = self.image_key(project_id, &sealing.key_id).await?;
        if let Some(cached) = self.unwrapped.get(&sealing.wrapped_key) {
            return Ok(cached);
        }
        let wrapped = WrappedDataKey::from_hex(&sealing.wrapped_key)?;
        if wrapped.key_id != key.id {
            return Err(Error::internal("an image's data key names another key"));
        }
        let plain = self
            .backend(&key)?
            .unwrap(
                &key,
                &wrapped.wrapped,
                &binding(&key.project_id, key.id, IMAGE_DATA),
            )
            .await
            .map_err(|e| match e {
                // A stored data key that does not open is damage, not the caller's fault;
                // an unreachable KMS stays `Unavailable` (503, and jobs retry).
                Error::InvalidField { .. } => {
                    Error::internal("an image's data key does not open under its key")
                }
                other => other,
            })?;
        let data_key = ims_crypt::DataKey::from_slice(&plain)
            .ok_or_else(|| Error::internal("an image's data key has the wrong length"))?;
        self.unwrapped.put(&sealing.wrapped_key, &data_key);
        Ok(data_key)
    }

    /// The same data key wrapped under another key `to` of `to_project` (a copy with a
    /// new `cmk_id`): both keys must be enabled.
    pub async fn rewrap_image_key(
        &self,
        from_project: &str,
        sealing: &crate::image::Sealing,
        to_project: &str,
        to: &str,
    ) -> Result<crate::image::Sealing> {
        let data_key = self.open_image_key(from_project, sealing).await?;
        let key = self.project_key(to_project, to).await?;
        if key.state != KeyState::Enabled {
            return Err(unusable(&key, KeyRole::Named));
        }
        self.seal_image_key(&key, &data_key).await
    }

    /// `data_key` wrapped under `key`, as an image records it.
    async fn seal_image_key(
        &self,
        key: &Key,
        data_key: &ims_crypt::DataKey,
    ) -> Result<crate::image::Sealing> {
        let wrapped = self
            .backend(key)?
            .wrap(
                key,
                data_key.expose_secret(),
                &binding(&key.project_id, key.id, IMAGE_DATA),
            )
            .await?;
        Ok(crate::image::Sealing {
            key_id: key.id.to_string(),
            wrapped_key: WrappedDataKey {
                key_id: key.id,
                wrapped,
            }
            .to_hex(),
        })
    }
}
