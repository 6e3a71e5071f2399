//! Range reads at every boundary, in segment mode (fetching exactly the planned object
//! bytes) and in object mode (reading from offset 0).

mod common;

use bytes::Bytes;
use common::{Rng, S, assert_integrity, drain, header, key, random_stream};
use futures::stream;
use ims_crypt::{CryptError, Layout, decrypt_object_stream, decrypt_stream, seal_blob};

const LEN: usize = 3 * S + 5;

/// Boundary points of a 3S + 5 byte blob.
const POINTS: [usize; 14] = [
    0,
    1,
    S - 2,
    S - 1,
    S,
    S + 1,
    2 * S - 1,
    2 * S,
    2 * S + 1,
    3 * S - 1,
    3 * S,
    3 * S + 1,
    3 * S + 4,
    S / 2,
];

fn read_range(object: &[u8], len: usize, a: usize, b: usize, rng: &mut Rng) -> Vec<u8> {
    let layout = Layout::new(len as u64, common::SEG_LOG2).unwrap();
    let plan = layout.range(a as u64, b as u64).unwrap();
    let fetched = &object[plan.ciphertext.start as usize..plan.ciphertext.end as usize];
    let max = 1 + rng.below(2 * S);
    let input = random_stream(fetched, rng, max);
    let dec = decrypt_stream(
        &key(),
        &header(),
        len as u64,
        Some(a as u64..=b as u64),
        input,
    );
    let (got, err) = drain(dec.unwrap());
    assert!(err.is_none(), "[{a}, {b}]: {err:?}");
    assert_eq!(got.len() as u64, plan.keep);
    got
}

fn read_range_from_object(object: &[u8], len: usize, a: usize, b: usize, rng: &mut Rng) -> Vec<u8> {
    let max = 1 + rng.below(2 * S);
    let input = random_stream(object, rng, max);
    let dec = decrypt_object_stream(&key(), len as u64, Some(a as u64..=b as u64), input);
    let (got, err) = drain(dec.unwrap());
    assert!(err.is_none(), "[{a}, {b}]: {err:?}");
    got
}

#[test]
fn every_pair_of_boundary_points() {
    let mut rng = Rng::new(11);
    let plain = rng.bytes(LEN);
    let object = seal_blob(&key(), &header(), &plain).unwrap();
    let mut pairs = 0;
    for a in POINTS {
        for b in POINTS.into_iter().filter(|&b| b >= a) {
            assert_eq!(
                read_range(&object, LEN, a, b, &mut rng),
                plain[a..=b],
                "[{a}, {b}]"
            );
            let got = read_range_from_object(&object, LEN, a, b, &mut rng);
            assert_eq!(got, plain[a..=b], "object [{a}, {b}]");
            pairs += 1;
        }
    }
    assert!(pairs > 90);
}

#[test]
fn named_cases_fetch_the_expected_segments() {
    let plain = Rng::new(12).bytes(LEN);
    let object = seal_blob(&key(), &header(), &plain).unwrap();
    let layout = Layout::new(LEN as u64, common::SEG_LOG2).unwrap();
    let cases = [
        ("first byte", 0, 0, 0, 0),
        ("last byte", LEN - 1, LEN - 1, 3, 3),
        ("inside one segment", S + 10, S + 20, 1, 1),
        ("across two", S - 1, S, 0, 1),
        ("across three", S - 1, 2 * S, 0, 2),
        ("exactly one segment", S, 2 * S - 1, 1, 1),
        ("ends on S - 1", 0, S - 1, 0, 0),
        ("ends on S", 0, S, 0, 1),
        ("whole", 0, LEN - 1, 0, 3),
    ];
    let mut rng = Rng::new(13);
    for (name, a, b, first, last) in cases {
        let plan = layout.range(a as u64, b as u64).unwrap();
        assert_eq!(
            (plan.first_segment, plan.last_segment),
            (first, last),
            "{name}"
        );
        assert_eq!(
            read_range(&object, LEN, a, b, &mut rng),
            plain[a..=b],
            "{name}"
        );
    }
}

#[test]
fn ranges_of_an_exact_multiple() {
    let mut rng = Rng::new(14);
    let plain = rng.bytes(2 * S);
    let object = seal_blob(&key(), &header(), &plain).unwrap();
    for (a, b) in [
        (0, 2 * S - 1),
        (S, 2 * S - 1),
        (2 * S - 1, 2 * S - 1),
        (0, S - 1),
    ] {
        assert_eq!(read_range(&object, 2 * S, a, b, &mut rng), plain[a..=b]);
    }
}

#[test]
fn ranges_beyond_the_end_are_errors_not_panics() {
    let layout = Layout::new(LEN as u64, common::SEG_LOG2).unwrap();
    let beyond = [(LEN, LEN), (0, LEN), (LEN - 1, LEN + 100), (5, 4)];
    for (a, b) in beyond {
        let expected = CryptError::BadRange {
            first: a as u64,
            last: b as u64,
            len: LEN as u64,
        };
        assert_eq!(layout.range(a as u64, b as u64), Err(expected.clone()));
        let empty = stream::iter(Vec::<std::io::Result<Bytes>>::new());
        let r = Some(a as u64..=b as u64);
        assert_eq!(
            decrypt_stream(&key(), &header(), LEN as u64, r.clone(), empty).err(),
            Some(expected.clone())
        );
        let empty = stream::iter(Vec::<std::io::Result<Bytes>>::new());
        assert_eq!(
            decrypt_object_stream(&key(), LEN as u64, r, empty).err(),
            Some(expected)
        );
    }
}

#[test]
fn a_tampered_segment_inside_a_range_fails_there() {
    let plain = Rng::new(15).bytes(LEN);
    let mut object = seal_blob(&key(), &header(), &plain).unwrap();
    object[64 + 2 * (S + 16) + 7] ^= 1;
    let layout = Layout::new(LEN as u64, common::SEG_LOG2).unwrap();
    let plan = layout.range(S as u64 + 3, 2 * S as u64 + 3).unwrap();
    let fetched = Bytes::copy_from_slice(
        &object[plan.ciphertext.start as usize..plan.ciphertext.end as usize],
    );
    let r = Some(S as u64 + 3..=2 * S as u64 + 3);
    let dec = decrypt_stream(
        &key(),
        &header(),
        LEN as u64,
        r,
        stream::iter([Ok(fetched)]),
    )
    .unwrap();
    let (got, err) = drain(dec);
    assert_integrity(&err.unwrap());
    assert_eq!(got, plain[S + 3..2 * S]);
}
