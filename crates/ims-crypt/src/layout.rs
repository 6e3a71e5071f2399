//! Where plaintext bytes live in an IMSE v1 object.
//!
//! Segment `i` holds plaintext bytes `i·S .. min((i+1)·S, len)` and is stored at object
//! offset `64 + i·(S + 16)` as ciphertext followed by a 16-byte tag. A blob has
//! `max(1, ceil(len / S))` segments: an empty plaintext is one empty segment, and a
//! length that is a multiple of `S` ends with a full segment (no empty one after it).

use std::ops::Range;

use crate::header::{HEADER_LEN, check_seg_log2};
use crate::{CryptError, TAG_LEN};

/// Segment indices are 32 bits in the nonce.
const MAX_SEGMENTS: u64 = 1 << 32;

/// The geometry of one blob: its plaintext length and segment size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    plaintext_len: u64,
    seg_log2: u8,
}

/// What to fetch and keep for an inclusive plaintext range `[first, last]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRange {
    /// Index of the first segment covering the range.
    pub first_segment: u64,
    /// Index of the last segment covering the range (inclusive).
    pub last_segment: u64,
    /// Object byte offsets to fetch, absolute from the object's start: the offsets count
    /// the 64-byte header, but the range covers only segments, never the header itself
    /// (read bytes `0..64` separately, or keep the header).
    pub ciphertext: Range<u64>,
    /// Plaintext bytes of the first segment to drop before the range starts.
    pub skip: u64,
    /// Plaintext bytes to keep after the skip: the range's length.
    pub keep: u64,
}

impl Layout {
    /// The layout of `plaintext_len` bytes in segments of `2^seg_log2` bytes.
    pub fn new(plaintext_len: u64, seg_log2: u8) -> Result<Self, CryptError> {
        check_seg_log2(seg_log2)?;
        if plaintext_len.div_ceil(1 << seg_log2) > MAX_SEGMENTS {
            return Err(CryptError::TooLarge(plaintext_len));
        }
        Ok(Self {
            plaintext_len,
            seg_log2,
        })
    }

    /// Plaintext length in bytes.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Log2 of the segment size.
    pub fn seg_log2(&self) -> u8 {
        self.seg_log2
    }

    /// Plaintext bytes per full segment.
    pub fn segment_size(&self) -> u64 {
        1 << self.seg_log2
    }

    /// Number of segments, at least 1.
    pub fn segment_count(&self) -> u64 {
        self.plaintext_len.div_ceil(self.segment_size()).max(1)
    }

    /// Length of the whole object: header, segments and tags.
    pub fn ciphertext_len(&self) -> u64 {
        HEADER_LEN as u64 + self.plaintext_len + self.segment_count() * TAG_LEN as u64
    }

    /// Plaintext bytes in segment `index` (0 past the end).
    pub fn segment_plaintext_len(&self, index: u64) -> u64 {
        let start = index.saturating_mul(self.segment_size());
        self.plaintext_len
            .saturating_sub(start)
            .min(self.segment_size())
    }

    /// Object offset of segment `index`, header included.
    pub fn segment_offset(&self, index: u64) -> u64 {
        HEADER_LEN as u64 + index * (self.segment_size() + TAG_LEN as u64)
    }

    /// Whether `index` is the final segment, the one sealed with the last flag.
    pub fn is_last(&self, index: u64) -> bool {
        index + 1 == self.segment_count()
    }

    /// Segments, object bytes and trimming for plaintext bytes `first ..= last`.
    /// An empty range (`first > last`) or one past the end is an error.
    pub fn range(&self, first: u64, last: u64) -> Result<SegmentRange, CryptError> {
        if first > last || last >= self.plaintext_len {
            return Err(CryptError::BadRange {
                first,
                last,
                len: self.plaintext_len,
            });
        }
        let first_segment = first >> self.seg_log2;
        let last_segment = last >> self.seg_log2;
        Ok(SegmentRange {
            first_segment,
            last_segment,
            ciphertext: self.segments_bytes(first_segment, last_segment),
            skip: first - (first_segment << self.seg_log2),
            keep: last - first + 1,
        })
    }

    /// The plan for reading the whole blob, which also covers the empty blob.
    pub fn whole(&self) -> SegmentRange {
        let last_segment = self.segment_count() - 1;
        SegmentRange {
            first_segment: 0,
            last_segment,
            ciphertext: self.segments_bytes(0, last_segment),
            skip: 0,
            keep: self.plaintext_len,
        }
    }

    fn segments_bytes(&self, first: u64, last: u64) -> Range<u64> {
        let end = self.segment_offset(last) + self.segment_plaintext_len(last) + TAG_LEN as u64;
        self.segment_offset(first)..end
    }
}

/// The plaintext length that produces a `ciphertext_len`-byte object (header included)
/// at segment size `2^seg_log2`, or an error if no plaintext length does.
pub fn plaintext_len_from_ciphertext_len(
    ciphertext_len: u64,
    seg_log2: u8,
) -> Result<u64, CryptError> {
    check_seg_log2(seg_log2)?;
    let bad = CryptError::BadCiphertextLength(ciphertext_len);
    let body = ciphertext_len
        .checked_sub(HEADER_LEN as u64)
        .ok_or(bad.clone())?;
    let unit = (1u64 << seg_log2) + TAG_LEN as u64;
    let (full, rest) = (body / unit, body % unit);
    let len = match (full, rest) {
        (0, 0) => return Err(bad),
        (_, 0) => full << seg_log2,
        // A trailing empty segment exists only for the empty blob.
        (0, r) if r == TAG_LEN as u64 => 0,
        (_, r) if r > TAG_LEN as u64 => (full << seg_log2) + r - TAG_LEN as u64,
        _ => return Err(bad),
    };
    Layout::new(len, seg_log2)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 4096;

    fn layout(len: u64) -> Layout {
        Layout::new(len, 12).unwrap()
    }

    #[test]
    fn counts_and_lengths() {
        for (len, count) in [(0, 1), (1, 1), (S - 1, 1), (S, 1), (S + 1, 2), (2 * S, 2)] {
            let l = layout(len);
            assert_eq!(l.segment_count(), count, "len {len}");
            assert_eq!(l.ciphertext_len(), 64 + len + 16 * count, "len {len}");
            assert_eq!(
                plaintext_len_from_ciphertext_len(l.ciphertext_len(), 12),
                Ok(len)
            );
        }
    }

    #[test]
    fn impossible_ciphertext_lengths_are_refused() {
        let unit = S + 16;
        // Nothing after the header; a partial tag; an empty segment after a full one.
        for ct in [0, 63, 64, 64 + 15, 64 + unit + 16, 64 + unit + 5] {
            assert!(plaintext_len_from_ciphertext_len(ct, 12).is_err(), "{ct}");
        }
        assert!(plaintext_len_from_ciphertext_len(64 + 16, 11).is_err());
    }

    #[test]
    fn every_ciphertext_length_maps_back() {
        for len in 0..3 * S + 20 {
            let ct = layout(len).ciphertext_len();
            assert_eq!(plaintext_len_from_ciphertext_len(ct, 12), Ok(len));
        }
    }

    #[test]
    fn too_many_segments() {
        assert!(Layout::new((1u64 << 32) * S, 12).is_ok());
        assert_eq!(
            Layout::new((1u64 << 32) * S + 1, 12),
            Err(CryptError::TooLarge((1u64 << 32) * S + 1))
        );
    }

    #[test]
    fn ranges() {
        let l = layout(3 * S + 5);
        let unit = S + 16;
        let r = l.range(0, 0).unwrap();
        assert_eq!(
            (r.first_segment, r.last_segment, r.skip, r.keep),
            (0, 0, 0, 1)
        );
        assert_eq!(r.ciphertext, 64..64 + unit);
        let r = l.range(S - 1, S).unwrap();
        assert_eq!(
            (r.first_segment, r.last_segment, r.skip, r.keep),
            (0, 1, S - 1, 2)
        );
        assert_eq!(r.ciphertext, 64..64 + 2 * unit);
        let r = l.range(3 * S + 4, 3 * S + 4).unwrap();
        assert_eq!(
            (r.first_segment, r.last_segment, r.skip, r.keep),
            (3, 3, 4, 1)
        );
        assert_eq!(r.ciphertext, 64 + 3 * unit..l.ciphertext_len());
        let r = l.range(S, 2 * S - 1).unwrap();
        assert_eq!(
            (r.first_segment, r.last_segment, r.skip, r.keep),
            (1, 1, 0, S)
        );
        assert_eq!(r.ciphertext, 64 + unit..64 + 2 * unit);
    }

    #[test]
    fn bad_ranges_are_errors() {
        let l = layout(10);
        assert!(l.range(0, 10).is_err());
        assert!(l.range(5, 4).is_err());
        assert!(l.range(u64::MAX, u64::MAX).is_err());
        assert!(layout(0).range(0, 0).is_err());
    }

    #[test]
    fn whole_covers_the_empty_blob() {
        let w = layout(0).whole();
        assert_eq!((w.first_segment, w.last_segment, w.keep), (0, 0, 0));
        assert_eq!(w.ciphertext, 64..80);
    }
}
