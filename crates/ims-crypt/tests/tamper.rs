//! Every modification of a stored object must fail, and the decryptor must hand out
//! only the plaintext of segments that authenticated before the failure.

mod common;

use bytes::Bytes;
use common::{Rng, S, assert_integrity, drain, header, key};
use futures::stream;
use ims_crypt::{decrypt_object_stream, decrypt_stream, open_blob, seal_blob};

const LEN: usize = 3 * S + 5;
const UNIT: usize = S + 16;

fn fixture() -> (Vec<u8>, Vec<u8>) {
    let plain = Rng::new(7).bytes(LEN);
    let object = seal_blob(&key(), &header(), &plain).unwrap();
    (plain, object)
}

/// Decrypts `object` in object mode, fed in chunks of 1000 bytes, and checks that it
/// fails and yields exactly the first `good_segments` segments' plaintext.
fn expect_failure(object: &[u8], plain_len: usize, plain: &[u8], good_segments: usize, what: &str) {
    let chunks: Vec<_> = object
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let dec = decrypt_object_stream(&key(), plain_len as u64, None, stream::iter(chunks)).unwrap();
    let (got, err) = drain(dec);
    let err = err.unwrap_or_else(|| panic!("{what}: no error"));
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{what}: {err}");
    let good = (good_segments * S).min(plain.len());
    assert_eq!(got.len(), good, "{what}: emitted {} bytes", got.len());
    assert_eq!(got, plain[..good], "{what}");
    assert!(
        open_blob(&key(), object, plain_len as u64).is_err(),
        "{what}"
    );
}

#[test]
fn any_header_bit_flip_fails_before_output() {
    let (plain, object) = fixture();
    for i in 0..64 {
        for bit in [0, 7] {
            let mut t = object.clone();
            t[i] ^= 1 << bit;
            expect_failure(&t, LEN, &plain, 0, &format!("header byte {i} bit {bit}"));
        }
    }
}

#[test]
fn header_changes_that_still_parse_fail_authentication() {
    let (_, object) = fixture();
    // Blob id and salt bytes change the key and the AAD.
    for i in [8, 23, 24, 55] {
        let mut t = object.clone();
        t[i] ^= 1;
        let input = stream::iter([Ok(Bytes::from(t))]);
        let (_, err) = drain(decrypt_object_stream(&key(), LEN as u64, None, input).unwrap());
        assert_integrity(&err.unwrap());
    }
}

#[test]
fn ciphertext_and_tag_bit_flips_fail_at_their_segment() {
    let (plain, object) = fixture();
    for seg in 0..4 {
        let start = 64 + seg * UNIT;
        let seg_len = if seg == 3 { 5 } else { S };
        for at in [
            start,
            start + seg_len / 2,
            start + seg_len - 1,
            start + seg_len,
            start + seg_len + 15,
        ] {
            let mut t = object.clone();
            t[at] ^= 0x10;
            expect_failure(&t, LEN, &plain, seg, &format!("segment {seg} byte {at}"));
        }
    }
}

#[test]
fn swapped_or_duplicated_segments_fail() {
    let (plain, object) = fixture();
    let seg = |i: usize| object[64 + i * UNIT..64 + (i + 1) * UNIT].to_vec();
    let mut swapped = object[..64].to_vec();
    for i in [1, 0, 2] {
        swapped.extend(seg(i));
    }
    swapped.extend_from_slice(&object[64 + 3 * UNIT..]);
    expect_failure(&swapped, LEN, &plain, 0, "swap 0 and 1");

    let mut dup = object[..64 + 2 * UNIT].to_vec();
    dup.extend(seg(1));
    dup.extend_from_slice(&object[64 + 3 * UNIT..]);
    expect_failure(&dup, LEN, &plain, 2, "segment 1 repeated as 2");
}

#[test]
fn truncation_fails_at_every_interesting_point() {
    let (plain, object) = fixture();
    let cuts = [
        (0, 0),
        (10, 0),
        (63, 0),
        (64, 0),
        (64 + 100, 0),
        (64 + UNIT - 1, 0),
        (64 + UNIT, 1),
        (64 + UNIT + S, 1),
        (64 + 2 * UNIT, 2),
        (64 + 3 * UNIT, 3), // the last segment dropped
        (object.len() - 1, 3),
        (object.len() - 16, 3),
    ];
    for (cut, good) in cuts {
        expect_failure(&object[..cut], LEN, &plain, good, &format!("cut at {cut}"));
    }
}

#[test]
fn dropping_the_last_segment_of_an_exact_multiple_fails() {
    let plain = Rng::new(8).bytes(2 * S);
    let object = seal_blob(&key(), &header(), &plain).unwrap();
    // The remaining segment 0 was not sealed as last: claiming length S must fail.
    expect_failure(&object[..64 + UNIT], S, &plain, 0, "claimed length S");
    expect_failure(&object[..64 + UNIT], 2 * S, &plain, 1, "claimed length 2S");
}

#[test]
fn appended_bytes_fail_and_hold_back_the_last_segment() {
    let (plain, object) = fixture();
    for extra in [vec![0u8], vec![0u8; 16], object[64..64 + UNIT].to_vec()] {
        let mut t = object.clone();
        t.extend_from_slice(&extra);
        expect_failure(
            &t,
            LEN,
            &plain,
            3,
            &format!("{} bytes appended", extra.len()),
        );
    }
}

#[test]
fn wrong_plaintext_lengths_fail() {
    let (plain, object) = fixture();
    for claimed in [LEN - 1, LEN + 1, LEN + S, 3 * S, 4 * S, 0, 1] {
        let cmp = plain.len().min(claimed);
        let chunks = vec![Ok(Bytes::from(object.clone()))];
        let dec =
            decrypt_object_stream(&key(), claimed as u64, None, stream::iter(chunks)).unwrap();
        let (got, err) = drain(dec);
        assert!(err.is_some(), "claimed {claimed}");
        assert_eq!(got, plain[..got.len().min(cmp)], "claimed {claimed}");
        assert!(
            got.len() <= 3 * S,
            "claimed {claimed}: final segment leaked"
        );
    }
}

#[test]
fn segment_mode_rejects_truncated_and_overlong_input() {
    let (plain, object) = fixture();
    let body = &object[64..];
    for (input, good) in [(&body[..body.len() - 1], 3), (&object[63..], 0)] {
        let chunks = vec![Ok(Bytes::copy_from_slice(input))];
        let dec =
            decrypt_stream(&key(), &header(), LEN as u64, None, stream::iter(chunks)).unwrap();
        let (got, err) = drain(dec);
        assert_integrity(&err.unwrap());
        assert_eq!(got, plain[..good * S]);
    }
    let mut long = body.to_vec();
    long.push(0);
    let chunks = vec![Ok(Bytes::from(long))];
    let dec = decrypt_stream(&key(), &header(), LEN as u64, None, stream::iter(chunks)).unwrap();
    let (got, err) = drain(dec);
    assert_integrity(&err.unwrap());
    assert_eq!(got, plain[..3 * S]);
}
