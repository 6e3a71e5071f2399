//! Sealing of stored secrets (AK/SK secret keys) with AES-256-GCM under a node key, so
//! that a copy of the catalog alone does not give the secrets away.

use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

use crate::error::{Error, Result};

const VERSION: &str = "v1";
const NONCE: usize = 12;
const TAG: usize = 16;

/// Seals and opens secrets with one 256-bit key.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer for a 32-byte key given as 64 hex digits.
    pub fn from_hex(key: &str) -> Result<Self> {
        let bytes =
            hex::decode(key.trim()).map_err(|_| Error::invalid("the credential key is not hex"))?;
        let key = bytes
            .try_into()
            .map_err(|_| Error::invalid("the credential key must be 32 bytes (64 hex digits)"))?;
        Ok(Sealer { key })
    }

    /// Seals `secret`: `v1:` then hex of nonce, tag and ciphertext.
    pub fn seal(&self, secret: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(Error::internal)?;
        let mut tag = [0u8; TAG];
        let sealed = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            VERSION.as_bytes(),
            secret.as_bytes(),
            &mut tag,
        )
        .map_err(Error::internal)?;
        Ok(format!(
            "{VERSION}:{}{}{}",
            hex::encode(nonce),
            hex::encode(tag),
            hex::encode(sealed)
        ))
    }

    /// Opens a sealed secret; a wrong key or tampered value is an internal error.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let broken =
            || Error::internal("a stored secret cannot be opened with this node's credential key");
        let raw = sealed
            .strip_prefix("v1:")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(broken)?;
        if raw.len() < NONCE + TAG {
            return Err(broken());
        }
        let (nonce, rest) = raw.split_at(NONCE);
        let (tag, data) = rest.split_at(TAG);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            VERSION.as_bytes(),
            data,
            tag,
        )
        .map_err(|_| broken())?;
        String::from_utf8(plain).map_err(|_| broken())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_and_tampering_is_detected() {
        let s = Sealer::from_hex(&"ab".repeat(32)).unwrap();
        let sealed = s.seal("my-secret").unwrap();
        assert!(!sealed.contains("my-secret"));
        assert_eq!(s.open(&sealed).unwrap(), "my-secret");
        assert_ne!(
            sealed,
            s.seal("my-secret").unwrap(),
            "fresh nonce each time"
        );
        let other = Sealer::from_hex(&"cd".repeat(32)).unwrap();
        assert!(other.open(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('0');
        assert!(s.open(&tampered).is_err() || tampered == sealed);
        assert!(Sealer::from_hex("abcd").is_err());
    }
}
