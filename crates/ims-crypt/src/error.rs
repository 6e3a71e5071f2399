//! The crate's one error type and its mapping onto `std::io::Error`.

use std::io;

/// Why a header, a layout question or a segment was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CryptError {
    /// Fewer bytes than a whole header were given.
    #[error("IMSE header too short: {0} bytes, need 64")]
    ShortHeader(usize),
    /// The first four bytes are not `IMSE`.
    #[error("not an IMSE blob (bad magic)")]
    BadMagic,
    /// A format version this code does not read.
    #[error("unsupported IMSE version {0}")]
    BadVersion(u8),
    /// An algorithm identifier this code does not implement.
    #[error("unsupported IMSE algorithm {0}")]
    BadAlgorithm(u8),
    /// A segment size outside 2^12 ..= 2^24 bytes.
    #[error("unsupported IMSE segment size 2^{0}")]
    BadSegmentSize(u8),
    /// A reserved header byte is not zero.
    #[error("IMSE header reserved bytes are not zero")]
    BadReserved,
    /// The plaintext would need more than 2^32 segments (the nonce's index is 32 bits).
    #[error("plaintext of {0} bytes is too large for IMSE v1 at this segment size")]
    TooLarge(u64),
    /// An inclusive plaintext range that is empty or reaches past the end.
    #[error("plaintext range {first}..={last} is invalid for a blob of {len} bytes")]
    BadRange {
        /// First requested byte.
        first: u64,
        /// Last requested byte (inclusive).
        last: u64,
        /// Plaintext length of the blob.
        len: u64,
    },
    /// A ciphertext length that no plaintext length produces.
    #[error("{0} bytes is not the length of an IMSE v1 ciphertext")]
    BadCiphertextLength(u64),
    /// Authentication failed, or the ciphertext was cut short or extended.
    #[error("integrity failure: {0}")]
    Integrity(&'static str),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

impl From<CryptError> for io::Error {
    /// Everything maps to `InvalidData`: each variant means the stored bytes or the caller's
    /// description of them do not fit the format, never a transient I/O condition.
    fn from(e: CryptError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}
