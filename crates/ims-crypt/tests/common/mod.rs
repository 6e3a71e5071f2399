//! Shared helpers: a seeded generator, random chunkings and stream drains.
#![allow(dead_code)]

use std::io;

use bytes::Bytes;
use futures::{Stream, StreamExt, executor::block_on, stream};
use ims_crypt::{DataKey, Header};

/// Segment size used by the tests: 4 KiB (seg_log2 = 12), so edge cases stay small.
pub const SEG_LOG2: u8 = 12;
pub const S: usize = 1 << SEG_LOG2;

/// SplitMix64: deterministic, so a failing chunking can be replayed from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Splits `data` into chunks of random sizes up to `max` (empty chunks included).
pub fn chunked(data: &[u8], rng: &mut Rng, max: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = rng.below(max + 1).min(data.len() - at);
        out.push(Bytes::copy_from_slice(&data[at..at + n]));
        at += n;
    }
    if rng.below(2) == 0 {
        out.push(Bytes::new());
    }
    out
}

/// A stream over `data` cut into random chunks.
pub fn random_stream(
    data: &[u8],
    rng: &mut Rng,
    max: usize,
) -> impl Stream<Item = io::Result<Bytes>> + use<> {
    stream::iter(chunked(data, rng, max).into_iter().map(Ok))
}

/// Drains a stream: the bytes it yielded and the error that ended it, if any. Also
/// checks that nothing comes after an error.
pub fn drain<S>(s: S) -> (Vec<u8>, Option<io::Error>)
where
    S: Stream<Item = io::Result<Bytes>>,
{
    block_on(async {
        let mut s = Box::pin(s);
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => {
                    assert!(s.next().await.is_none(), "stream continued after an error");
                    return (out, Some(e));
                }
            }
        }
        (out, None)
    })
}

pub fn key() -> DataKey {
    DataKey::from_bytes([0x5A; 32])
}

pub fn header() -> Header {
    Header::from_parts([0x42; 16], [0x17; 32], SEG_LOG2).unwrap()
}

/// Asserts that `err` is the integrity failure the decryptor promises.
pub fn assert_integrity(err: &io::Error) {
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("integrity failure"), "{err}");
}
