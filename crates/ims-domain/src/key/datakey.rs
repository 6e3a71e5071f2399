//! A data key wrapped under a master key, as clients hold it: opaque bytes (hex on the
//! wire) that name their key, so that a decrypt can find the key without being told.
//!
//! Layout: `0x01 ‖ key id (36 ASCII bytes) ‖ what the backend's wrap made`.

use super::KeyId;
use crate::error::{Error, Result};

const VERSION: u8 = 1;
const ID_LEN: usize = 36;

/// A wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    /// The master key it is wrapped under.
    pub key_id: KeyId,
    /// The backend's ciphertext.
    pub wrapped: Vec<u8>,
}

fn malformed() -> Error {
    Error::field(
        "cipher_text",
        "The ciphertext is not a data key wrapped by this service.",
    )
}

impl WrappedDataKey {
    /// The bytes clients keep.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + ID_LEN + self.wrapped.len());
        out.push(VERSION);
        out.extend_from_slice(self.key_id.to_string().as_bytes());
        out.extend_from_slice(&self.wrapped);
        out
    }

    /// Parses [`WrappedDataKey::to_bytes`]; anything else is an `InvalidField` on
    /// `cipher_text`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (&version, rest) = bytes.split_first().ok_or_else(malformed)?;
        if version != VERSION || rest.len() <= ID_LEN {
            return Err(malformed());
        }
        let (id, wrapped) = rest.split_at(ID_LEN);
        let key_id = std::str::from_utf8(id)
            .ok()
            .and_then(KeyId::parse)
            .ok_or_else(malformed)?;
        Ok(WrappedDataKey {
            key_id,
            wrapped: wrapped.to_vec(),
        })
    }

    /// Upper-case hex, as Huawei KMS shows ciphertexts.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.to_bytes())
    }

    /// Parses hex of either case.
    pub fn from_hex(text: &str) -> Result<Self> {
        Self::from_bytes(&hex::decode(text).map_err(|_| malformed())?)
    }
}

/// The authenticated data a data key is wrapped with: the key's project and id, then the
/// caller's own, so a ciphertext moved to another key or project does not open.
pub fn binding(project_id: &str, key_id: KeyId, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(project_id.len() + 38 + aad.len());
    out.extend_from_slice(project_id.as_bytes());
    out.push(0);
    out.extend_from_slice(key_id.to_string().as_bytes());
    out.push(0);
    out.extend_from_slice(aad);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_did_not_make() {
        let w = WrappedDataKey {
            key_id: KeyId::new(),
            wrapped: vec![7; 60],
        };
        assert_eq!(WrappedDataKey::from_hex(&w.to_hex()).unwrap(), w);
        assert_eq!(
            WrappedDataKey::from_hex(&w.to_hex().to_lowercase()).unwrap(),
            w
        );
        let bytes = w.to_bytes();
        for bad in [
            &[][..],
            &bytes[..37],
            &[&[2u8][..], &bytes[1..]].concat()[..],
            b"\x01not-a-key-id-at-all-but-36-bytes-long-and-more",
        ] {
            assert!(WrappedDataKey::from_bytes(bad).is_err());
        }
        assert!(WrappedDataKey::from_hex("zz").is_err());
    }
}
