//! The external-KMS adapter of ims's key port: each master key is an AES-256 object in a
//! KMIP server (an HSM or an enterprise key manager) that never leaves it; data keys are
//! wrapped and unwrapped by the server's Encrypt and Decrypt. Enabled, disabled and
//! pending deletion stay ims's own states (KMIP's Revoke cannot be undone), so the
//! server only sees Create, Activate, Encrypt, Decrypt, Revoke and Destroy.

use async_trait::async_trait;
use ims_domain::key::{Key, KeyBackend};
use ims_domain::{Error, Result};
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use crate::{Ciphertext, KmipClient, KmipConfig, KmipError};

/// The KMIP backend. It connects on first use, so ims starts while the KMS is away and
/// each use fails with `Unavailable` until it answers.
pub struct KmipBackend {
    config: KmipConfig,
    client: OnceCell<KmipClient>,
}

impl KmipBackend {
    /// A backend for the server `config` names.
    pub fn new(config: KmipConfig) -> Self {
        KmipBackend {
            config,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<&KmipClient> {
        self.client
            .get_or_try_init(|| KmipClient::connect(self.config.clone()))
            .await
            .map_err(kms_err)
    }
}

/// A KMIP failure in the domain's terms.
fn kms_err(e: KmipError) -> Error {
    match e {
        KmipError::Unreachable(m) => Error::Unavailable(format!("the KMIP server: {m}")),
        KmipError::Integrity | KmipError::Refused { .. } => Error::field(
            "cipher_text",
            "The ciphertext was not made with this key, or it was altered.",
        ),
        other => Error::Unavailable(format!("the KMIP server: {other}")),
    }
}

#[async_trait]
impl KeyBackend for KmipBackend {
    fn name(&self) -> &'static str {
        "kmip"
    }

    async fn create(&self, key: &Key) -> Result<String> {
        let client = self.client().await?;
        let uid = client
            .create_aes_key(&format!("ims-{}", key.id))
            .await
            .map_err(kms_err)?;
        client.activate(&uid).await.map_err(kms_err)?;
        Ok(uid)
    }

    async fn wrap(&self, key: &Key, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let sealed = self
            .client()
            .await?
            .encrypt_with_aad(&key.material, plaintext, aad)
            .await
            .map_err(kms_err)?;
        Ok(sealed.to_bytes())
    }

    async fn unwrap(&self, key: &Key, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let sealed = Ciphertext::from_bytes(wrapped).map_err(|_| {
            Error::field(
                "cipher_text",
                "The ciphertext was not made with this key, or it was altered.",
            )
        })?;
        self.client()
            .await?
            .decrypt_with_aad(&key.material, &sealed, aad)
            .await
            .map_err(kms_err)
    }

    async fn destroy(&self, key: &Key) -> Result<()> {
        let client = self.client().await?;
        match client.revoke(&key.material).await {
            Ok(()) | Err(KmipError::NotFound { .. }) => {}
            Err(e) => return Err(kms_err(e)),
        }
        match client.destroy(&key.material).await {
            Ok(()) | Err(KmipError::NotFound { .. }) => Ok(()),
            Err(e) => Err(kms_err(e)),
        }
    }
}
