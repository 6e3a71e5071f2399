//! TTLV, KMIP's binary encoding: every item is a 3-byte tag, a 1-byte type, a 4-byte
//! big-endian length and a value padded with zeros to a multiple of 8 bytes. A structure's
//! value is the concatenation of its children.
//!
//! The decoder takes bytes from the network, so it trusts nothing: every length is checked
//! against the bytes that are really there, nesting is bounded ([`MAX_DEPTH`]) and so is a
//! whole message ([`MAX_MESSAGE`]). It never panics on any input.

use std::fmt;

use zeroize::Zeroizing;

/// The largest message encoded or decoded (1 MiB), header included. It is also PyKMIP's
/// limit, and far above what this client sends or expects (a wrapped key is < 100 bytes).
pub const MAX_MESSAGE: usize = 1 << 20;

/// The deepest nesting of structures accepted. KMIP 1.x messages nest 5–6 levels.
pub const MAX_DEPTH: usize = 16;

/// The size of an item's header (tag, type, length).
pub const HEADER_LEN: usize = 8;

/// A KMIP tag: 3 bytes on the wire (0x42xxxx for the standard ones).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag(pub u32);

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag(0x{:06X})", self.0)
    }
}

/// The type byte of each value.
mod code {
    pub const STRUCTURE: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const LONG_INTEGER: u8 = 0x03;
    pub const BIG_INTEGER: u8 = 0x04;
    pub const ENUMERATION: u8 = 0x05;
    pub const BOOLEAN: u8 = 0x06;
    pub const TEXT_STRING: u8 = 0x07;
    pub const BYTE_STRING: u8 = 0x08;
    pub const DATE_TIME: u8 = 0x09;
    pub const INTERVAL: u8 = 0x0A;
}

/// A decoded value. Byte strings are zeroized when dropped, because they carry plaintext
/// key material in Encrypt requests and Decrypt responses.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// An ordered list of items.
    Structure(Vec<Item>),
    /// A signed 32-bit integer.
    Integer(i32),
    /// A signed 64-bit integer.
    LongInteger(i64),
    /// A big-endian two's-complement integer; its length is a multiple of 8 bytes.
    BigInteger(Vec<u8>),
    /// A 32-bit enumeration value.
    Enumeration(u32),
    /// A boolean (0 or 1 on the wire, 8 bytes).
    Boolean(bool),
    /// A UTF-8 string.
    TextString(String),
    /// Opaque bytes.
    ByteString(Zeroizing<Vec<u8>>),
    /// Seconds since the POSIX epoch.
    DateTime(i64),
    /// A duration in seconds.
    Interval(u32),
}

impl fmt::Debug for Value {
    /// Byte strings show only their length: they may be key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Structure(items) => f.debug_list().entries(items).finish(),
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::LongInteger(v) => write!(f, "LongInteger({v})"),
            Value::BigInteger(v) => write!(f, "BigInteger({} bytes)", v.len()),
            Value::Enumeration(v) => write!(f, "Enumeration(0x{v:08X})"),
            Value::Boolean(v) => write!(f, "Boolean({v})"),
            Value::TextString(v) => write!(f, "TextString({v:?})"),
            Value::ByteString(v) => write!(f, "ByteString({} bytes)", v.len()),
            Value::DateTime(v) => write!(f, "DateTime({v})"),
            Value::Interval(v) => write!(f, "Interval({v})"),
        }
    }
}

/// One TTLV item: a tag and its value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Item {
    /// The item's tag.
    pub tag: Tag,
    /// The item's value (its type is implied by the variant).
    pub value: Value,
}

/// Why bytes could not be decoded, or an item could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlvError {
    /// The input ends before an item's header or value does.
    #[error("truncated TTLV at offset {at}: {need} bytes needed, {have} left")]
    Truncated {
        /// Offset of the item whose bytes are missing.
        at: usize,
        /// Bytes the item needs.
        need: usize,
        /// Bytes left in the input.
        have: usize,
    },
    /// A type byte that is not one of the ten KMIP 1.x types.
    #[error("unknown TTLV type 0x{ty:02X} at offset {at}")]
    UnknownType {
        /// Offset of the item.
        at: usize,
        /// The type byte.
        ty: u8,
    },
    /// A length that does not fit the type (e.g. an Integer that is not 4 bytes).
    #[error("TTLV length {len} is invalid for type 0x{ty:02X} at offset {at}")]
    BadLength {
        /// Offset of the item.
        at: usize,
        /// The type byte.
        ty: u8,
        /// The declared length.
        len: usize,
    },
    /// A Boolean whose value is neither 0 nor 1.
    #[error("TTLV boolean at offset {at} is neither 0 nor 1")]
    BadBoolean {
        /// Offset of the item.
        at: usize,
    },
    /// A TextString that is not UTF-8.
    #[error("TTLV text string at offset {at} is not UTF-8")]
    BadUtf8 {
        /// Offset of the item.
        at: usize,
    },
    /// Structures nested deeper than [`MAX_DEPTH`].
    #[error("TTLV structures nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A message larger than [`MAX_MESSAGE`].
    #[error("TTLV message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    /// Bytes left after the one top-level item.
    #[error("{0} bytes after the end of the TTLV message")]
    Trailing(usize),
    /// A tag that does not fit in 3 bytes (encoding only).
    #[error("tag 0x{0:X} does not fit in 3 bytes")]
    BadTag(u32),
}

impl Item {
    /// An item with any value.
    pub fn new(tag: Tag, value: Value) -> Self {
        Item { tag, value }
    }

    /// A structure item.
    pub fn structure(tag: Tag, children: Vec<Item>) -> Self {
        Item::new(tag, Value::Structure(children))
    }

    /// A text-string item.
    pub fn text(tag: Tag, s: &str) -> Self {
        Item::new(tag, Value::TextString(s.to_owned()))
    }

    /// A byte-string item (zeroized on drop).
    pub fn bytes(tag: Tag, b: &[u8]) -> Self {
        Item::new(tag, Value::ByteString(Zeroizing::new(b.to_vec())))
    }

    /// An enumeration item.
    pub fn enumeration(tag: Tag, v: u32) -> Self {
        Item::new(tag, Value::Enumeration(v))
    }

    /// An integer item.
    pub fn integer(tag: Tag, v: i32) -> Self {
        Item::new(tag, Value::Integer(v))
    }

    /// The children of a structure, or `None` for any other type.
    pub fn children(&self) -> Option<&[Item]> {
        match &self.value {
            Value::Structure(c) => Some(c),
            _ => None,
        }
    }

    /// The first child with `tag`, if this is a structure that has one.
    pub fn child(&self, tag: Tag) -> Option<&Item> {
        self.children()?.iter().find(|c| c.tag == tag)
    }

    /// Every child with `tag` (empty if this is not a structure).
    pub fn children_with(&self, tag: Tag) -> impl Iterator<Item = &Item> {
        self.children()
            .unwrap_or_default()
            .iter()
            .filter(move |c| c.tag == tag)
    }

    /// The encoded size of this item, header and padding included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + padded(self.value_len())
    }

    /// Encodes this item as one TTLV message. The buffer is zeroized on drop, as it may
    /// hold plaintext.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, TtlvError> {
        self.check(0)?;
        let len = self.encoded_len();
        if len > MAX_MESSAGE {
            return Err(TtlvError::TooLarge);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        self.write(&mut out);
        Ok(out)
    }

    /// Checks what the wire cannot express, before anything is written.
    fn check(&self, depth: usize) -> Result<(), TtlvError> {
        if self.tag.0 > 0xFF_FFFF {
            return Err(TtlvError::BadTag(self.tag.0));
        }
        match &self.value {
            Value::Structure(children) => {
                if depth >= MAX_DEPTH {
                    return Err(TtlvError::TooDeep);
                }
                children.iter().try_for_each(|c| c.check(depth + 1))
            }
            Value::BigInteger(b) if !b.len().is_multiple_of(8) => Err(TtlvError::BadLength {
                at: 0,
                ty: code::BIG_INTEGER,
                len: b.len(),
            }),
            _ => Ok(()),
        }
    }

    /// The unpadded length of the value.
    fn value_len(&self) -> usize {
        match &self.value {
            Value::Structure(c) => c.iter().map(Item::encoded_len).sum(),
            Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
            Value::LongInteger(_) | Value::Boolean(_) | Value::DateTime(_) => 8,
            Value::BigInteger(b) => b.len(),
            Value::TextString(s) => s.len(),
            Value::ByteString(b) => b.len(),
        }
    }

    fn type_code(&self) -> u8 {
        match &self.value {
            Value::Structure(_) => code::STRUCTURE,
            Value::Integer(_) => code::INTEGER,
            Value::LongInteger(_) => code::LONG_INTEGER,
            Value::BigInteger(_) => code::BIG_INTEGER,
            Value::Enumeration(_) => code::ENUMERATION,
            Value::Boolean(_) => code::BOOLEAN,
            Value::TextString(_) => code::TEXT_STRING,
            Value::ByteString(_) => code::BYTE_STRING,
            Value::DateTime(_) => code::DATE_TIME,
            Value::Interval(_) => code::INTERVAL,
        }
    }

    /// Appends the item; `check` and the size limit have already held, so every length
    /// fits in 32 bits.
    fn write(&self, out: &mut Vec<u8>) {
        let len = self.value_len();
        out.extend_from_slice(&self.tag.0.to_be_bytes()[1..]);
        out.push(self.type_code());
        out.extend_from_slice(&(len as u32).to_be_bytes());
        match &self.value {
            Value::Structure(c) => c.iter().for_each(|i| i.write(out)),
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) | Value::DateTime(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::BigInteger(b) => out.extend_from_slice(b),
            Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
            Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
            Value::ByteString(b) => out.extend_from_slice(b),
        }
        out.resize(out.len() + padded(len) - len, 0);
    }
}

/// `len` rounded up to a multiple of 8.
fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// Reads a message header (the first 8 bytes of a message) and returns the length of the
/// whole message, header included. It must be a structure no larger than [`MAX_MESSAGE`].
/// Used to know how much to read from a stream before decoding.
pub fn message_len(header: &[u8; HEADER_LEN]) -> Result<usize, TtlvError> {
    if header[3] != code::STRUCTURE {
        return Err(TtlvError::UnknownType {
            at: 0,
            ty: header[3],
        });
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if !len.is_multiple_of(8) {
        return Err(TtlvError::BadLength {
            at: 0,
            ty: code::STRUCTURE,
            len,
        });
    }
    match len.checked_add(HEADER_LEN) {
        Some(total) if total <= MAX_MESSAGE => Ok(total),
        _ => Err(TtlvError::TooLarge),
    }
}

/// Decodes exactly one item that spans all of `input`.
pub fn decode(input: &[u8]) -> Result<Item, TtlvError> {
    if input.len() > MAX_MESSAGE {
        return Err(TtlvError::TooLarge);
    }
    let mut reader = Reader { input, pos: 0 };
    let item = reader.item(0)?;
    match input.len() - reader.pos {
        0 => Ok(item),
        rest => Err(TtlvError::Trailing(rest)),
    }
}

/// A cursor over the input; `pos` never exceeds `input.len()`.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// Takes `n` bytes for the item at `at`, or fails without moving.
    fn take(&mut self, at: usize, n: usize) -> Result<&[u8], TtlvError> {
        let have = self.input.len() - self.pos;
        if n > have {
            return Err(TtlvError::Truncated { at, need: n, have });
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// Decodes one item; `depth` is the number of structures around it.
    fn item(&mut self, depth: usize) -> Result<Item, TtlvError> {
        let at = self.pos;
        let h = self.take(at, HEADER_LEN)?;
        let tag = Tag(u32::from_be_bytes([0, h[0], h[1], h[2]]));
        let ty = h[3];
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let have = self.input.len() - self.pos;
        if len > have {
            // Checked before any arithmetic on `len`, which comes from the peer.
            return Err(TtlvError::Truncated {
                at,
                need: len,
                have,
            });
        }
        let value = if ty == code::STRUCTURE {
            self.structure(len, depth)?
        } else {
            let bytes = self.take(at, padded(len))?;
            primitive(at, ty, &bytes[..len])?
        };
        Ok(Item { tag, value })
    }

    /// Decodes a structure's children, which must fill exactly `len` bytes.
    /// The caller has checked that `len` bytes are there.
    fn structure(&mut self, len: usize, depth: usize) -> Result<Value, TtlvError> {
        if depth >= MAX_DEPTH {
            return Err(TtlvError::TooDeep);
        }
        let end = self.pos + len;
        let mut inner = Reader {
            input: &self.input[..end],
            pos: self.pos,
        };
        let mut children = Vec::new();
        while inner.pos < end {
            children.push(inner.item(depth + 1)?);
        }
        self.pos = end;
        Ok(Value::Structure(children))
    }
}

/// Decodes a value of a non-structure type from its unpadded bytes.
fn primitive(at: usize, ty: u8, v: &[u8]) -> Result<Value, TtlvError> {
    let bad_len = || TtlvError::BadLength {
        at,
        ty,
        len: v.len(),
    };
    let value = match ty {
        code::INTEGER => Value::Integer(i32::from_be_bytes(v.try_into().map_err(|_| bad_len())?)),
        code::ENUMERATION => {
            Value::Enumeration(u32::from_be_bytes(v.try_into().map_err(|_| bad_len())?))
        }
        code::INTERVAL => Value::Interval(u32::from_be_bytes(v.try_into().map_err(|_| bad_len())?)),
        code::LONG_INTEGER => {
            Value::LongInteger(i64::from_be_bytes(v.try_into().map_err(|_| bad_len())?))
        }
        code::DATE_TIME => {
            Value::DateTime(i64::from_be_bytes(v.try_into().map_err(|_| bad_len())?))
        }
        code::BOOLEAN => match u64::from_be_bytes(v.try_into().map_err(|_| bad_len())?) {
            0 => Value::Boolean(false),
            1 => Value::Boolean(true),
            _ => return Err(TtlvError::BadBoolean { at }),
        },
        code::BIG_INTEGER if !v.len().is_multiple_of(8) => return Err(bad_len()),
        code::BIG_INTEGER => Value::BigInteger(v.to_vec()),
        code::TEXT_STRING => Value::TextString(
            std::str::from_utf8(v)
                .map_err(|_| TtlvError::BadUtf8 { at })?
                .to_owned(),
        ),
        code::BYTE_STRING => Value::ByteString(Zeroizing::new(v.to_vec())),
        _ => return Err(TtlvError::UnknownType { at, ty }),
    };
    Ok(value)
}

#[cfg(test)]
mod tests;
