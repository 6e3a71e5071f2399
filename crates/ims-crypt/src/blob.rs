//! Whole-blob helpers over byte slices, for small blobs and tests.

use crate::header::{HEADER_LEN, Header};
use crate::layout::Layout;
use crate::segment::{SegmentCipher, TAG_LEN};
use crate::{CryptError, DataKey};

/// Encrypts `plaintext` into a complete object (header and segments).
pub fn seal_blob(key: &DataKey, header: &Header, plaintext: &[u8]) -> Result<Vec<u8>, CryptError> {
    let layout = Layout::new(plaintext.len() as u64, header.seg_log2())?;
    let cipher = SegmentCipher::new(key, header);
    let mut out = Vec::with_capacity(layout.ciphertext_len() as usize);
    out.extend_from_slice(&header.encode());
    let seg = cipher.segment_size();
    for i in 0..layout.segment_count() {
        let start = i as usize * seg;
        let end = (start + seg).min(plaintext.len());
        let at = out.len();
        out.extend_from_slice(&plaintext[start..end]);
        // Index fits: Layout::new refused more than 2^32 segments.
        let tag = cipher.seal_in_place(i as u32, layout.is_last(i), &mut out[at..]);
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

/// Decrypts a complete object whose plaintext length the caller knows.
/// Every segment must authenticate and the object must have exactly the expected length.
pub fn open_blob(key: &DataKey, object: &[u8], plaintext_len: u64) -> Result<Vec<u8>, CryptError> {
    let header = Header::decode(object)?;
    let layout = Layout::new(plaintext_len, header.seg_log2())?;
    if object.len() as u64 != layout.ciphertext_len() {
        return Err(CryptError::Integrity(
            "object length does not match the plaintext length",
        ));
    }
    let cipher = SegmentCipher::new(key, &header);
    let unit = cipher.segment_size() + TAG_LEN;
    // One segment's scratch space: opening happens in place, the input stays untouched.
    let mut scratch = Vec::with_capacity(unit);
    let mut out = Vec::with_capacity(plaintext_len as usize);
    for (i, seg) in object[HEADER_LEN..].chunks(unit).enumerate() {
        scratch.clear();
        scratch.extend_from_slice(seg);
        let last = layout.is_last(i as u64);
        out.extend_from_slice(cipher.open_in_place(i as u32, last, &mut scratch)?);
    }
    Ok(out)
}
