//! At-rest blob encryption for ims, format IMSE v1.
//!
//! An object is a 64-byte [`Header`] followed by segments of `S = 2^seg_log2` plaintext
//! bytes (64 KiB by default), each AES-256-GCM ciphertext followed by a 16-byte tag:
//!
//! - segment key `K = HKDF-SHA256(ikm = data key, salt = header salt,
//!   info = "ims blob v1" ‖ blob id)`;
//! - `nonce_i = 0^7 ‖ u32_be(i) ‖ last`, where `last` is 1 only on the final segment;
//! - AAD = the 64 header bytes.
//!
//! The index and the last flag make reordering, truncation and extension fail
//! authentication. The header does not hold the plaintext length (so a writer can send it
//! first); the catalog keeps the length, and [`plaintext_len_from_ciphertext_len`]
//! recovers it from the object size. A length that is a multiple of `S` ends with a full
//! segment marked last; the empty blob is one empty segment.
//!
//! Layers: [`SegmentCipher`] seals and opens single segments in place; [`Layout`] maps
//! plaintext ranges to object byte ranges; [`encrypt_stream`], [`decrypt_stream`] and
//! [`decrypt_object_stream`] adapt any `Stream<Item = io::Result<Bytes>>` in bounded
//! memory without needing an async runtime; [`seal_blob`] / [`open_blob`] work on slices.
//!
//! ```
//! use bytes::Bytes;
//! use futures::{executor::block_on, stream, TryStreamExt};
//! use ims_crypt::{DataKey, Header, Layout, decrypt_stream, encrypt_stream};
//!
//! let key = DataKey::generate()?;
//! let header = Header::new(*b"0123456789abcdef")?;
//! let plain = vec![42u8; 200_000];
//! let input = stream::iter([Ok(Bytes::from(plain.clone()))]);
//! let parts: Vec<Bytes> = block_on(encrypt_stream(&key, &header, input).try_collect())?;
//! let object: Vec<u8> = parts.concat();
//!
//! // Read plaintext bytes 70_000 ..= 140_000: header from bytes 0..64, then one ranged fetch.
//! let header = Header::decode(&object[..64])?;
//! let layout = Layout::new(plain.len() as u64, header.seg_log2())?;
//! let plan = layout.range(70_000, 140_000)?;
//! let fetched = Bytes::copy_from_slice(&object[plan.ciphertext.start as usize..plan.ciphertext.end as usize]);
//! let dec = decrypt_stream(&key, &header, layout.plaintext_len(), Some(70_000..=140_000),
//!                          stream::iter([Ok(fetched)]))?;
//! let got: Vec<Bytes> = block_on(dec.try_collect())?;
//! assert_eq!(got.concat(), plain[70_000..=140_000]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod blob;
mod decrypt;
mod encrypt;
mod error;
mod header;
mod key;
mod layout;
mod sealer;
mod segment;

pub use blob::{open_blob, seal_blob};
pub use decrypt::{DecryptStream, decrypt_object_stream, decrypt_stream};
pub use encrypt::{EncryptStream, encrypt_stream};
pub use error::CryptError;
pub use header::{
    ALG_AES_256_GCM, DEFAULT_SEG_LOG2, HEADER_LEN, Header, MAGIC, MAX_SEG_LOG2, MIN_SEG_LOG2,
    VERSION,
};
pub use key::{DATA_KEY_LEN, DataKey};
pub use layout::{Layout, SegmentRange, plaintext_len_from_ciphertext_len};
pub use sealer::Sealer;
pub use segment::{SegmentCipher, TAG_LEN};
