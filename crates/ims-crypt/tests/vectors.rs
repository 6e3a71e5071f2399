//! Known answers computed by an independent implementation (Python `cryptography`,
//! i.e. OpenSSL): see vectors/gen_vectors.py, whose output is vectors/imse_v1.txt.

mod common;

use bytes::Bytes;
use common::drain;
use futures::stream;
use ims_crypt::{
    DataKey, Header, decrypt_object_stream, encrypt_stream, open_blob,
    plaintext_len_from_ciphertext_len, seal_blob,
};

const VECTORS: &str = include_str!("vectors/imse_v1.txt");

struct Vector {
    name: String,
    seg_log2: u8,
    plaintext: Vec<u8>,
    object: Vec<u8>,
}

fn field(name: &str) -> Vec<u8> {
    let line = VECTORS
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap();
    hex::decode(line).unwrap()
}

fn vectors() -> Vec<Vector> {
    let out: Vec<Vector> = VECTORS
        .lines()
        .filter_map(|l| l.strip_prefix("vector "))
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            let len: usize = parts[2].parse().unwrap();
            Vector {
                name: parts[0].to_string(),
                seg_log2: parts[1].parse().unwrap(),
                plaintext: (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect(),
                object: hex::decode(parts[3]).unwrap(),
            }
        })
        .collect();
    assert_eq!(out.len(), 4, "vector file lost cases");
    out
}

fn key() -> DataKey {
    DataKey::from_slice(&field("key")).unwrap()
}

fn header(seg_log2: u8) -> Header {
    let blob_id = field("blob_id").try_into().unwrap();
    let salt = field("salt").try_into().unwrap();
    Header::from_parts(blob_id, salt, seg_log2).unwrap()
}

#[test]
fn seal_blob_matches_independent_vectors() {
    for v in vectors() {
        let object = seal_blob(&key(), &header(v.seg_log2), &v.plaintext).unwrap();
        assert_eq!(hex::encode(&object), hex::encode(&v.object), "{}", v.name);
    }
}

#[test]
fn stream_encryption_matches_independent_vectors() {
    for v in vectors() {
        // Chunks of 1000 bytes straddle every segment boundary.
        let chunks: Vec<_> = v
            .plaintext
            .chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let (object, err) = drain(encrypt_stream(
            &key(),
            &header(v.seg_log2),
            stream::iter(chunks),
        ));
        assert!(err.is_none(), "{}", v.name);
        assert_eq!(object, v.object, "{}", v.name);
    }
}

#[test]
fn independent_vectors_decrypt() {
    for v in vectors() {
        let len = v.plaintext.len() as u64;
        assert_eq!(
            open_blob(&key(), &v.object, len).unwrap(),
            v.plaintext,
            "{}",
            v.name
        );
        let input = stream::iter([Ok(Bytes::from(v.object.clone()))]);
        let (plain, err) = drain(decrypt_object_stream(&key(), len, None, input).unwrap());
        assert!(err.is_none(), "{}: {err:?}", v.name);
        assert_eq!(plain, v.plaintext, "{}", v.name);
        let derived = plaintext_len_from_ciphertext_len(v.object.len() as u64, v.seg_log2);
        assert_eq!(derived, Ok(len), "{}", v.name);
    }
}

#[test]
fn vector_geometry() {
    let v = vectors();
    // 3 segments of 4096, 4096, 100 bytes; 2 full segments, no empty one; one empty segment.
    assert_eq!(v[0].object.len(), 64 + 8292 + 3 * 16);
    assert_eq!(v[1].object.len(), 64 + 8192 + 2 * 16);
    assert_eq!(v[2].object.len(), 64 + 16);
    assert_eq!(v[3].object.len(), 64 + 1 + 16);
}
