//! The 64-byte IMSE v1 header.
//!
//! ```text
//! 0..4    "IMSE"
//! 4       version = 1
//! 5       algorithm (1 = AES-256-GCM)
//! 6       seg_log2 (12 ..= 24; 16 by default)
//! 7       reserved = 0
//! 8..24   blob id
//! 24..56  salt, random per blob
//! 56..64  reserved = 0
//! ```
//!
//! Unlike the first sketch of the format the header holds no plaintext length, so a
//! streaming writer can emit it before the data. The whole header is every segment's AAD.

use crate::CryptError;

/// Length of the encoded header.
pub const HEADER_LEN: usize = 64;
/// The magic bytes that open every blob.
pub const MAGIC: [u8; 4] = *b"IMSE";
/// The only format version.
pub const VERSION: u8 = 1;
/// Algorithm identifier of AES-256-GCM, the only one implemented.
pub const ALG_AES_256_GCM: u8 = 1;
/// Segment size used by [`Header::new`]: 64 KiB.
pub const DEFAULT_SEG_LOG2: u8 = 16;
/// Smallest segment size accepted: 4 KiB.
pub const MIN_SEG_LOG2: u8 = 12;
/// Largest segment size accepted: 16 MiB.
pub const MAX_SEG_LOG2: u8 = 24;

/// A decoded or freshly made header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    seg_log2: u8,
    blob_id: [u8; 16],
    salt: [u8; 32],
}

impl Header {
    /// A header for a new blob with 64 KiB segments and a random salt.
    pub fn new(blob_id: [u8; 16]) -> Result<Self, CryptError> {
        Self::with_seg_log2(blob_id, DEFAULT_SEG_LOG2)
    }

    /// A header for a new blob with segments of `2^seg_log2` bytes and a random salt.
    pub fn with_seg_log2(blob_id: [u8; 16], seg_log2: u8) -> Result<Self, CryptError> {
        let mut salt = [0u8; 32];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| CryptError::Rng)?;
        Self::from_parts(blob_id, salt, seg_log2)
    }

    /// A header with a given salt: for known-answer tests and for re-reading stored parts.
    /// A salt must never be reused with the same data key and blob id.
    pub fn from_parts(blob_id: [u8; 16], salt: [u8; 32], seg_log2: u8) -> Result<Self, CryptError> {
        check_seg_log2(seg_log2)?;
        Ok(Self {
            seg_log2,
            blob_id,
            salt,
        })
    }

    /// Log2 of the segment size.
    pub fn seg_log2(&self) -> u8 {
        self.seg_log2
    }

    /// The blob id bound into the segment key.
    pub fn blob_id(&self) -> &[u8; 16] {
        &self.blob_id
    }

    /// The HKDF salt.
    pub fn salt(&self) -> &[u8; 32] {
        &self.salt
    }

    /// The 64 stored bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = ALG_AES_256_GCM;
        out[6] = self.seg_log2;
        out[8..24].copy_from_slice(&self.blob_id);
        out[24..56].copy_from_slice(&self.salt);
        out
    }

    /// Parses the first 64 bytes of `bytes` (more may follow; they are ignored).
    pub fn decode(bytes: &[u8]) -> Result<Self, CryptError> {
        let h = bytes
            .get(..HEADER_LEN)
            .ok_or(CryptError::ShortHeader(bytes.len()))?;
        if h[0..4] != MAGIC {
            return Err(CryptError::BadMagic);
        }
        if h[4] != VERSION {
            return Err(CryptError::BadVersion(h[4]));
        }
        if h[5] != ALG_AES_256_GCM {
            return Err(CryptError::BadAlgorithm(h[5]));
        }
        if h[7] != 0 || h[56..64].iter().any(|&b| b != 0) {
            return Err(CryptError::BadReserved);
        }
        let mut blob_id = [0u8; 16];
        blob_id.copy_from_slice(&h[8..24]);
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&h[24..56]);
        Self::from_parts(blob_id, salt, h[6])
    }
}

pub(crate) fn check_seg_log2(seg_log2: u8) -> Result<(), CryptError> {
    if (MIN_SEG_LOG2..=MAX_SEG_LOG2).contains(&seg_log2) {
        Ok(())
    } else {
        Err(CryptError::BadSegmentSize(seg_log2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header::from_parts([0x11; 16], [0x22; 32], 16).unwrap()
    }

    #[test]
    fn encode_decode_round_trip() {
        let h = sample();
        let bytes = h.encode();
        assert_eq!(&bytes[0..8], b"IMSE\x01\x01\x10\x00");
        assert_eq!(Header::decode(&bytes).unwrap(), h);
    }

    #[test]
    fn new_headers_have_random_salts() {
        let a = Header::new([1; 16]).unwrap();
        let b = Header::new([1; 16]).unwrap();
        assert_ne!(a.salt(), b.salt());
        assert_eq!(a.seg_log2(), DEFAULT_SEG_LOG2);
    }

    #[test]
    fn decode_rejects_each_bad_field() {
        let good = sample().encode();
        let with = |i: usize, v: u8| {
            let mut b = good;
            b[i] = v;
            Header::decode(&b)
        };
        assert_eq!(with(0, b'X'), Err(CryptError::BadMagic));
        assert_eq!(with(4, 2), Err(CryptError::BadVersion(2)));
        assert_eq!(with(5, 2), Err(CryptError::BadAlgorithm(2)));
        assert_eq!(with(6, 11), Err(CryptError::BadSegmentSize(11)));
        assert_eq!(with(6, 25), Err(CryptError::BadSegmentSize(25)));
        assert!(with(6, 12).is_ok() && with(6, 24).is_ok());
        assert_eq!(with(7, 1), Err(CryptError::BadReserved));
        assert_eq!(with(63, 1), Err(CryptError::BadReserved));
        assert_eq!(with(56, 0x80), Err(CryptError::BadReserved));
        assert_eq!(
            Header::decode(&good[..63]),
            Err(CryptError::ShortHeader(63))
        );
    }

    #[test]
    fn from_parts_checks_segment_size() {
        assert!(Header::from_parts([0; 16], [0; 32], 11).is_err());
        assert!(Header::with_seg_log2([0; 16], 25).is_err());
    }
}
