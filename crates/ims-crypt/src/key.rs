//! The per-blob data key (DEK).

use std::fmt;

use zeroize::Zeroize;

use crate::CryptError;

/// Length of a data key in bytes (AES-256).
pub const DATA_KEY_LEN: usize = 32;

/// A 32-byte data encryption key, the HKDF input for one blob.
///
/// Kept in a box so moves do not leave copies on the stack; zeroized on drop. `Debug`
/// prints no key bytes. Not `Clone`: a copy is a deliberate [`DataKey::from_bytes`].
pub struct DataKey(Box<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CryptError> {
        let mut bytes = Box::new([0u8; DATA_KEY_LEN]);
        aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| CryptError::Rng)?;
        Ok(Self(bytes))
    }

    /// A key from its raw bytes, e.g. as unwrapped by a KMS. The caller should zeroize
    /// its own copy.
    pub fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        Self(Box::new(bytes))
    }

    /// A key from a slice, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Box::new([0u8; DATA_KEY_LEN]);
        if bytes.len() != DATA_KEY_LEN {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    /// The raw key bytes, for wrapping by a KMS. Never log them.
    pub fn expose_secret(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }

    /// An independent copy, for a stream that outlives the caller's borrow.
    pub(crate) fn duplicate(&self) -> Self {
        let mut key = Box::new([0u8; DATA_KEY_LEN]);
        key.copy_from_slice(&self.0[..]);
        Self(key)
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_key_bytes() {
        let key = DataKey::from_bytes([0xAB; DATA_KEY_LEN]);
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }

    #[test]
    fn generated_keys_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.expose_secret(), &[0u8; DATA_KEY_LEN]);
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(DataKey::from_slice(&[1; 31]).is_none());
        assert!(DataKey::from_slice(&[1; 33]).is_none());
        assert_eq!(
            DataKey::from_slice(&[7; 32]).unwrap().expose_secret(),
            &[7; 32]
        );
    }
}
