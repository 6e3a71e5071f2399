//! Push-style encryption, for writers that are handed chunks one at a time (a blob
//! writer) instead of pulling a stream.

use bytes::{Bytes, BytesMut};

use crate::header::Header;
use crate::segment::{SegmentCipher, TAG_LEN};
use crate::{CryptError, DataKey};

/// Seals plaintext pushed in chunks of any sizes into an IMSE v1 object: the header
/// ([`Sealer::header`]) first, then what each [`Sealer::push`] returns, then
/// [`Sealer::finish`]'s last segment. Holds at most one segment: a full one is sealed only
/// once the next byte shows it is not the last.
pub struct Sealer {
    cipher: SegmentCipher,
    header: Header,
    buf: BytesMut,
    index: u64,
    plaintext_len: u64,
}

impl Sealer {
    /// A sealer for one object under `key` with `header`.
    pub fn new(key: &DataKey, header: &Header) -> Sealer {
        let cipher = SegmentCipher::new(key, header);
        let buf = BytesMut::with_capacity(cipher.segment_size() + TAG_LEN);
        Sealer {
            cipher,
            header: *header,
            buf,
            index: 0,
            plaintext_len: 0,
        }
    }

    /// The object's first 64 bytes.
    pub fn header(&self) -> Bytes {
        Bytes::copy_from_slice(&self.header.encode())
    }

    /// Plaintext bytes pushed so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Absorbs `chunk`; returns the segments it completed that are known not to be the
    /// last (possibly none), sealed and concatenated.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<Bytes, CryptError> {
        let mut out = BytesMut::new();
        while !chunk.is_empty() {
            if self.room() == 0 {
                out.extend_from_slice(&self.seal(false)?);
            }
            let n = self.absorb(chunk);
            chunk = &chunk[n..];
        }
        Ok(out.freeze())
    }

    /// Room left in the segment being filled.
    pub(crate) fn room(&self) -> usize {
        self.cipher.segment_size() - self.buf.len()
    }

    /// Moves as much of `bytes` as fits into the segment being filled; returns how much.
    pub(crate) fn absorb(&mut self, bytes: &[u8]) -> usize {
        let n = self.room().min(bytes.len());
        self.buf.extend_from_slice(&bytes[..n]);
        self.plaintext_len += n as u64;
        n
    }

    /// Seals what is held as the last segment (empty for an empty object).
    pub fn finish(mut self) -> Result<Bytes, CryptError> {
        self.seal(true)
    }

    /// Seals the segment being filled and hands it out with its tag appended.
    pub(crate) fn seal(&mut self, last: bool) -> Result<Bytes, CryptError> {
        let index =
            u32::try_from(self.index).map_err(|_| CryptError::TooLarge(self.plaintext_len))?;
        let fresh = BytesMut::with_capacity(self.cipher.segment_size() + TAG_LEN);
        let mut seg = std::mem::replace(&mut self.buf, fresh);
        let tag = self.cipher.seal_in_place(index, last, &mut seg);
        seg.extend_from_slice(&tag);
        self.index += 1;
        Ok(seg.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal_blob;

    #[test]
    fn pushed_chunks_seal_exactly_like_the_whole_blob() {
        let key = DataKey::from_bytes([7; 32]);
        let header = Header::from_parts([1; 16], [2; 32], 12).unwrap();
        for len in [0usize, 1, 4095, 4096, 4097, 8192, 3 * 4096 + 5] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let whole = seal_blob(&key, &header, &plain).unwrap();
            for chunk in [1usize, 100, 4096, 5000, 1 << 20] {
                let mut sealer = Sealer::new(&key, &header);
                let mut object = sealer.header().to_vec();
                for part in plain.chunks(chunk) {
                    object.extend_from_slice(&sealer.push(part).unwrap());
                }
                assert_eq!(sealer.plaintext_len(), len as u64);
                object.extend_from_slice(&sealer.finish().unwrap());
                assert_eq!(object, whole, "length {len}, chunks of {chunk}");
            }
        }
    }
}
