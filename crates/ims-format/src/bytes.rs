//! Bounds-checked integer reads: a malformed header gives `None`, never a panic.

macro_rules! reader {
    ($name:ident, $ty:ty, $conv:ident) => {
        /// Reads at `off`, or `None` past the end of `b`.
        pub(crate) fn $name(b: &[u8], off: usize) -> Option<$ty> {
            let end = off.checked_add(std::mem::size_of::<$ty>())?;
            let raw = b.get(off..end)?;
            Some(<$ty>::$conv(raw.try_into().ok()?))
        }
    };
}

reader!(be16, u16, from_be_bytes);
reader!(be32, u32, from_be_bytes);
reader!(be64, u64, from_be_bytes);
reader!(le16, u16, from_le_bytes);
reader!(le32, u32, from_le_bytes);
reader!(le64, u64, from_le_bytes);

/// `b[off..off + len]`, or `None` when out of range.
pub(crate) fn slice(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}

/// Whether `b` has `magic` at `off`.
pub(crate) fn has(b: &[u8], off: usize, magic: &[u8]) -> bool {
    slice(b, off, magic.len()) == Some(magic)
}
