//! Sealing and opening single segments: the synchronous core under the streams.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};

use crate::header::{HEADER_LEN, Header};
use crate::{CryptError, DataKey};

/// Length of a segment's authentication tag.
pub const TAG_LEN: usize = 16;
/// HKDF info prefix; the blob id follows it.
const KDF_INFO: &[u8] = b"ims blob v1";

/// The AES-256-GCM key of one blob, with its header as AAD.
///
/// Holds only the derived segment key (inside aws-lc, freed and cleansed by it), never
/// the data key.
pub struct SegmentCipher {
    key: LessSafeKey,
    aad: [u8; HEADER_LEN],
    seg_log2: u8,
}

impl SegmentCipher {
    /// Derives `K = HKDF-SHA256(ikm = data key, salt = header salt,
    /// info = "ims blob v1" ‖ blob id)`.
    pub fn new(key: &DataKey, header: &Header) -> Self {
        let prk = Salt::new(HKDF_SHA256, header.salt()).extract(key.expose_secret());
        let info = [KDF_INFO, &header.blob_id()[..]];
        // Cannot fail: 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .expect("HKDF output length within limit");
        Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            aad: header.encode(),
            seg_log2: header.seg_log2(),
        }
    }

    /// Plaintext bytes per full segment.
    pub fn segment_size(&self) -> usize {
        1 << self.seg_log2
    }

    /// Encrypts segment `index` in place and returns its tag. `last` marks the blob's
    /// final segment.
    ///
    /// # Panics
    /// If `data` is longer than a segment: a caller bug, not a data condition.
    pub fn seal_in_place(&self, index: u32, last: bool, data: &mut [u8]) -> [u8; TAG_LEN] {
        assert!(data.len() <= self.segment_size(), "segment longer than S");
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(index, last), Aad::from(&self.aad), data)
            // aws-lc only refuses inputs beyond GCM's 64 GiB limit, far above 16 MiB.
            .expect("AES-GCM seal of at most one segment");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Authenticates and decrypts `segment` (ciphertext ‖ tag) in place and returns the
    /// plaintext part. On failure the buffer's contents are unspecified and must not be
    /// used.
    pub fn open_in_place<'a>(
        &self,
        index: u32,
        last: bool,
        segment: &'a mut [u8],
    ) -> Result<&'a mut [u8], CryptError> {
        if segment.len() < TAG_LEN || segment.len() - TAG_LEN > self.segment_size() {
            return Err(CryptError::Integrity("segment has the wrong length"));
        }
        self.key
            .open_in_place(nonce(index, last), Aad::from(&self.aad), segment)
            .map_err(|_| CryptError::Integrity("segment failed authentication"))
    }
}

/// `0^7 ‖ u32_be(index) ‖ last`.
fn nonce(index: u32, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(key_byte: u8) -> SegmentCipher {
        let header = Header::from_parts([3; 16], [4; 32], 12).unwrap();
        SegmentCipher::new(&DataKey::from_bytes([key_byte; 32]), &header)
    }

    fn sealed(c: &SegmentCipher, index: u32, last: bool, plain: &[u8]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        let tag = c.seal_in_place(index, last, &mut buf);
        buf.extend_from_slice(&tag);
        buf
    }

    #[test]
    fn round_trip() {
        let c = cipher(1);
        let mut seg = sealed(&c, 7, false, b"hello");
        assert_ne!(&seg[..5], b"hello");
        assert_eq!(c.open_in_place(7, false, &mut seg).unwrap(), b"hello");
    }

    #[test]
    fn index_last_flag_and_key_are_bound() {
        let c = cipher(1);
        let seg = sealed(&c, 7, false, b"hello");
        assert!(c.open_in_place(8, false, &mut seg.clone()).is_err());
        assert!(c.open_in_place(7, true, &mut seg.clone()).is_err());
        assert!(cipher(2).open_in_place(7, false, &mut seg.clone()).is_err());
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let c = cipher(1);
        assert!(c.open_in_place(0, true, &mut [0u8; 15]).is_err());
        assert!(c.open_in_place(0, true, &mut vec![0u8; 4096 + 17]).is_err());
    }

    #[test]
    #[should_panic(expected = "segment longer than S")]
    fn sealing_an_oversized_segment_panics() {
        cipher(1).seal_in_place(0, true, &mut [0u8; 4097]);
    }
}
