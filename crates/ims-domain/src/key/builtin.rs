//! The built-in KMS backend: each key's 256-bit material is random, sealed with
//! AES-256-GCM under the master key and kept in the catalog. The master key lives outside
//! the catalog (a 0600 file, an environment variable or a mounted secret), so a copy of
//! the catalog alone reveals no key and no data key.

use async_trait::async_trait;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use zeroize::Zeroizing;

use super::{Key, KeyBackend};
use crate::error::{Error, Result};

const NONCE: usize = 12;
const TAG: usize = 16;
const MATERIAL_PREFIX: &str = "v1:";
/// Sealed under the master key and kept in the catalog, so that a start with another
/// master key is refused before it can serve anything.
const CHECK_TEXT: &[u8] = b"ims kms master key check v1";

/// The built-in backend, holding the master key.
pub struct BuiltinBackend {
    master: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for BuiltinBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuiltinBackend(..)")
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(Error::internal)?;
    Ok(bytes)
}

/// AES-256-GCM: nonce ‖ ciphertext ‖ tag.
fn seal(key: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let nonce = random::<NONCE>()?;
    let mut tag = [0u8; TAG];
    let sealed = encrypt_aead(
        Cipher::aes_256_gcm(),
        key,
        Some(&nonce),
        aad,
        plaintext,
        &mut tag,
    )
    .map_err(Error::internal)?;
    Ok([&nonce[..], &sealed, &tag].concat())
}

/// Opens what [`seal`] made; `None` for a wrong key, other `aad` or altered bytes.
fn open(key: &[u8], sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE + TAG {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE);
    let (data, tag) = rest.split_at(rest.len() - TAG);
    decrypt_aead(Cipher::aes_256_gcm(), key, Some(nonce), aad, data, tag)
        .ok()
        .map(Zeroizing::new)
}

fn material_aad(key: &Key) -> Vec<u8> {
    format!("ims kms material v1|{}|{}", key.project_id, key.id).into_bytes()
}

impl BuiltinBackend {
    /// A backend for a 32-byte master key given as 64 hex digits.
    pub fn from_hex(master: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            hex::decode(master.trim()).map_err(|_| Error::invalid("the master key is not hex"))?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::invalid("the master key must be 32 bytes (64 hex digits)"))?;
        Ok(BuiltinBackend {
            master: Zeroizing::new(key),
        })
    }

    /// A value the catalog keeps to recognise this master key later.
    pub fn check_value(&self) -> Result<String> {
        Ok(hex::encode(seal(
            self.master.as_ref(),
            CHECK_TEXT,
            b"check",
        )?))
    }

    /// Whether `check` was made by [`BuiltinBackend::check_value`] with this master key.
    pub fn matches(&self, check: &str) -> bool {
        hex::decode(check)
            .ok()
            .and_then(|sealed| open(self.master.as_ref(), &sealed, b"check"))
            .is_some_and(|text| text.as_slice() == CHECK_TEXT)
    }

    /// The key's material, opened with the master key.
    fn material(&self, key: &Key) -> Result<Zeroizing<Vec<u8>>> {
        let broken = || {
            Error::internal(format!(
                "the material of key {} cannot be opened with this master key",
                key.id
            ))
        };
        let sealed = key
            .material
            .strip_prefix(MATERIAL_PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(broken)?;
        open(self.master.as_ref(), &sealed, &material_aad(key)).ok_or_else(broken)
    }
}

#[async_trait]
impl KeyBackend for BuiltinBackend {
    fn name(&self) -> &'static str {
        "builtin"
    }

    async fn create(&self, key: &Key) -> Result<String> {
        let material = Zeroizing::new(random::<32>()?);
        let sealed = seal(self.master.as_ref(), material.as_ref(), &material_aad(key))?;
        Ok(format!("{MATERIAL_PREFIX}{}", hex::encode(sealed)))
    }

    async fn wrap(&self, key: &Key, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        seal(&self.material(key)?, plaintext, aad)
    }

    async fn unwrap(&self, key: &Key, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        open(&self.material(key)?, wrapped, aad).ok_or_else(|| {
            Error::field(
                "cipher_text",
                "The ciphertext was not made with this key, or it was altered.",
            )
        })
    }

    async fn destroy(&self, _key: &Key) -> Result<()> {
        // The material exists only in the key's row; removing the row destroys it.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(project: &str) -> Key {
        Key::new(project, "k", "builtin", crate::context::now())
    }

    #[tokio::test]
    async fn material_is_sealed_and_bound_to_its_key_and_master() {
        let backend = BuiltinBackend::from_hex(&"11".repeat(32)).unwrap();
        let mut k = key("p1");
        k.material = backend.create(&k).await.unwrap();
        let wrapped = backend.wrap(&k, b"data key bytes", b"aad").await.unwrap();
        assert!(!wrapped.windows(14).any(|w| w == b"data key bytes"));
        let opened = backend.unwrap(&k, &wrapped, b"aad").await.unwrap();
        assert_eq!(opened.as_slice(), b"data key bytes");
        assert!(backend.unwrap(&k, &wrapped, b"other").await.is_err());
        let mut altered = wrapped.clone();
        altered[NONCE] ^= 1;
        assert!(backend.unwrap(&k, &altered, b"aad").await.is_err());
        // The same material under another key id, or another master key, opens nothing.
        let mut moved = key("p1");
        moved.material = k.material.clone();
        assert!(backend.wrap(&moved, b"x", b"").await.is_err());
        let other = BuiltinBackend::from_hex(&"22".repeat(32)).unwrap();
        assert!(other.wrap(&k, b"x", b"").await.is_err());
        // The check value tells the masters apart.
        let check = backend.check_value().unwrap();
        assert!(backend.matches(&check) && !other.matches(&check));
        assert!(BuiltinBackend::from_hex("abcd").is_err());
    }
}
