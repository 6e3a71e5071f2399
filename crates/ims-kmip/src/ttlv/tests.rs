//! Byte vectors worked out by hand from the encoding rules (tag 3 bytes, type 1, length 4
//! big-endian, value padded with zeros to 8), round trips, and malformed input.

use super::*;

const T: Tag = Tag(0x420020);

/// Parses "42 00 20 | 02 ..." style hex (spaces and bars ignored).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Encodes `item`, compares with `expected`, and decodes `expected` back to `item`.
fn vector(item: Item, expected: &str) {
    let bytes = hex(expected);
    assert_eq!(
        item.encode().unwrap().as_slice(),
        bytes.as_slice(),
        "{item:?}"
    );
    assert_eq!(item.encoded_len(), bytes.len());
    assert_eq!(decode(&bytes).unwrap(), item);
}

#[test]
fn integer_is_four_bytes_padded_to_eight() {
    vector(
        Item::integer(T, 8),
        "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00",
    );
    vector(
        Item::integer(T, -2),
        "42 00 20 | 02 | 00 00 00 04 | FF FF FF FE 00 00 00 00",
    );
}

#[test]
fn long_integer_and_date_time_are_eight_bytes() {
    vector(
        Item::new(T, Value::LongInteger(0x0102_0304_0506_0708)),
        "42 00 20 | 03 | 00 00 00 08 | 01 02 03 04 05 06 07 08",
    );
    vector(
        Item::new(T, Value::LongInteger(-1)),
        "42 00 20 | 03 | 00 00 00 08 | FF FF FF FF FF FF FF FF",
    );
    // 0x47DA67F8 = 2008-03-14T11:56:40Z.
    vector(
        Item::new(T, Value::DateTime(0x47DA_67F8)),
        "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
    );
}

#[test]
fn big_integer_keeps_its_multiple_of_eight_bytes() {
    // 1234567890000000000000000000 = 0x03FD35EB6BC2DF4618080000, sign-extended to 16 bytes.
    let v = hex("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00");
    vector(
        Item::new(T, Value::BigInteger(v)),
        "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
    );
}

#[test]
fn enumeration_interval_and_boolean() {
    vector(
        Item::enumeration(T, 255),
        "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
    );
    // Ten days in seconds: 864000 = 0x000D2F00.
    vector(
        Item::new(T, Value::Interval(864_000)),
        "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
    );
    vector(
        Item::new(T, Value::Boolean(true)),
        "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01",
    );
    vector(
        Item::new(T, Value::Boolean(false)),
        "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 00",
    );
}

#[test]
fn strings_carry_their_exact_length_and_pad() {
    vector(
        Item::text(T, "Hello World"),
        "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
    );
    vector(
        Item::bytes(T, &[1, 2, 3]),
        "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
    );
    // Exactly 8 bytes: no padding; empty: no value at all.
    vector(
        Item::bytes(T, &[9; 8]),
        "42 00 20 | 08 | 00 00 00 08 | 09 09 09 09 09 09 09 09",
    );
    vector(Item::text(T, ""), "42 00 20 | 07 | 00 00 00 00");
}

#[test]
fn structure_length_is_the_sum_of_its_padded_children() {
    vector(
        Item::structure(
            T,
            vec![
                Item::enumeration(Tag(0x420004), 254),
                Item::integer(Tag(0x420005), 255),
            ],
        ),
        "42 00 20 | 01 | 00 00 00 20 \
         42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 \
         42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
    );
    vector(Item::structure(T, vec![]), "42 00 20 | 01 | 00 00 00 00");
}

/// One item of every type, nested.
fn sample() -> Item {
    Item::structure(
        Tag(0x420078),
        vec![
            Item::integer(Tag(0x42006A), 1),
            Item::new(Tag(0x420001), Value::LongInteger(i64::MIN)),
            Item::new(Tag(0x420002), Value::BigInteger(vec![0x80; 24])),
            Item::enumeration(Tag(0x420003), u32::MAX),
            Item::new(Tag(0x420004), Value::Boolean(true)),
            Item::text(Tag(0x420005), "naïve ✓ 7 bytes+"),
            Item::bytes(Tag(0x420006), &(0..=200).collect::<Vec<u8>>()),
            Item::new(Tag(0x420007), Value::DateTime(1_700_000_000)),
            Item::new(Tag(0x420008), Value::Interval(1)),
            Item::structure(
                Tag(0x420009),
                vec![Item::structure(
                    Tag(0x42000A),
                    vec![Item::text(Tag(0x42000B), "x")],
                )],
            ),
        ],
    )
}

#[test]
fn every_type_round_trips() {
    let item = sample();
    let bytes = item.encode().unwrap();
    assert_eq!(bytes.len() % 8, 0);
    assert_eq!(decode(&bytes).unwrap(), item);
    let header: [u8; 8] = bytes[..8].try_into().unwrap();
    assert_eq!(message_len(&header).unwrap(), bytes.len());
}

#[test]
fn debug_never_shows_byte_strings() {
    let shown = format!("{:?}", Item::bytes(T, b"secret-key-bytes"));
    assert!(!shown.contains("115"), "{shown}"); // 's' = 115
    assert!(shown.contains("16 bytes"), "{shown}");
}

/// `depth` structures nested inside each other.
fn nested(depth: usize) -> Item {
    let mut item = Item::integer(T, 1);
    for _ in 0..depth {
        item = Item::structure(T, vec![item]);
    }
    item
}

#[test]
fn nesting_is_bounded_both_ways() {
    let ok = nested(MAX_DEPTH);
    assert_eq!(decode(&ok.encode().unwrap()).unwrap(), ok);
    assert_eq!(
        nested(MAX_DEPTH + 1).encode().unwrap_err(),
        TtlvError::TooDeep
    );
    // Build the too-deep bytes by hand: 17 structure headers around one integer.
    let mut bytes = Vec::new();
    for level in 0..=MAX_DEPTH {
        let len = 16 + 8 * (MAX_DEPTH - level);
        bytes.extend_from_slice(&[0x42, 0x00, 0x20, 0x01]);
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
    }
    bytes.extend_from_slice(&hex("42 00 20 02 00 00 00 04 00 00 00 01 00 00 00 00"));
    assert_eq!(decode(&bytes).unwrap_err(), TtlvError::TooDeep);
}

#[test]
fn size_is_bounded_both_ways() {
    let big = Item::bytes(T, &vec![0; MAX_MESSAGE]);
    assert_eq!(big.encode().unwrap_err(), TtlvError::TooLarge);
    assert_eq!(
        decode(&vec![0; MAX_MESSAGE + 8]).unwrap_err(),
        TtlvError::TooLarge
    );
    // A header announcing 16 MiB is refused before anything is read.
    let header = hex("42 00 7B 01 01 00 00 00");
    assert_eq!(
        message_len(header.as_slice().try_into().unwrap()).unwrap_err(),
        TtlvError::TooLarge
    );
    let header = hex("42 00 7B 01 FF FF FF F8");
    assert_eq!(
        message_len(header.as_slice().try_into().unwrap()).unwrap_err(),
        TtlvError::TooLarge
    );
}

#[test]
fn message_len_wants_an_aligned_structure() {
    let not_struct = hex("42 00 7B 02 00 00 00 04");
    assert!(matches!(
        message_len(not_struct.as_slice().try_into().unwrap()),
        Err(TtlvError::UnknownType { ty: 2, .. })
    ));
    let unaligned = hex("42 00 7B 01 00 00 00 0C");
    assert!(matches!(
        message_len(unaligned.as_slice().try_into().unwrap()),
        Err(TtlvError::BadLength { len: 12, .. })
    ));
    let ok = hex("42 00 7B 01 00 00 00 10");
    assert_eq!(message_len(ok.as_slice().try_into().unwrap()).unwrap(), 24);
}

/// What a malformed input's error must look like.
type Expect = fn(&TtlvError) -> bool;

#[test]
fn malformed_inputs_are_typed_errors() {
    let cases: &[(&str, Expect)] = &[
        ("", |e| {
            matches!(
                e,
                TtlvError::Truncated {
                    need: 8,
                    have: 0,
                    ..
                }
            )
        }),
        ("42 00 20 02 00 00", |e| {
            matches!(e, TtlvError::Truncated { .. })
        }),
        // An integer whose value is missing, then one whose padding is missing.
        ("42 00 20 02 00 00 00 04", |e| {
            matches!(e, TtlvError::Truncated { .. })
        }),
        ("42 00 20 02 00 00 00 04 00 00 00 01", |e| {
            matches!(
                e,
                TtlvError::Truncated {
                    need: 8,
                    have: 4,
                    ..
                }
            )
        }),
        // A length near 4 GiB must not overflow anything.
        ("42 00 20 08 FF FF FF FF 00", |e| {
            matches!(e, TtlvError::Truncated { .. })
        }),
        ("42 00 20 01 FF FF FF F8", |e| {
            matches!(e, TtlvError::Truncated { .. })
        }),
        ("42 00 20 02 00 00 00 08 00 00 00 00 00 00 00 01", |e| {
            matches!(e, TtlvError::BadLength { ty: 2, len: 8, .. })
        }),
        ("42 00 20 05 00 00 00 00", |e| {
            matches!(e, TtlvError::BadLength { .. })
        }),
        ("42 00 20 04 00 00 00 04 00 00 00 01 00 00 00 00", |e| {
            matches!(e, TtlvError::BadLength { ty: 4, .. })
        }),
        ("42 00 20 06 00 00 00 08 00 00 00 00 00 00 00 02", |e| {
            matches!(e, TtlvError::BadBoolean { .. })
        }),
        ("42 00 20 07 00 00 00 02 C3 28 00 00 00 00 00 00", |e| {
            matches!(e, TtlvError::BadUtf8 { .. })
        }),
        ("42 00 20 0B 00 00 00 08 00 00 00 00 00 00 00 00", |e| {
            matches!(e, TtlvError::UnknownType { ty: 0x0B, .. })
        }),
        ("42 00 20 00 00 00 00 00", |e| {
            matches!(e, TtlvError::UnknownType { ty: 0, .. })
        }),
        // A structure whose length stops inside its child (12 of the child's 16 bytes).
        (
            "42 00 20 01 00 00 00 0C 42 00 21 02 00 00 00 04 00 00 00 01 00 00 00 00",
            |e| matches!(e, TtlvError::Truncated { .. }),
        ),
        // A structure longer than the input.
        (
            "42 00 20 01 00 00 00 20 42 00 21 02 00 00 00 04 00 00 00 01 00 00 00 00",
            |e| matches!(e, TtlvError::Truncated { .. }),
        ),
        ("42 00 20 02 00 00 00 04 00 00 00 01 00 00 00 00 00", |e| {
            matches!(e, TtlvError::Trailing(1))
        }),
    ];
    for (input, expected) in cases {
        let err = decode(&hex(input)).unwrap_err();
        assert!(expected(&err), "{input}: got {err:?}");
    }
}

#[test]
fn tags_wider_than_three_bytes_are_not_encoded() {
    assert_eq!(
        Item::integer(Tag(0x0100_0000), 1).encode().unwrap_err(),
        TtlvError::BadTag(0x0100_0000)
    );
}

/// A small deterministic generator (xorshift64*) for the garbage tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn no_truncation_or_corruption_of_a_valid_message_panics() {
    let bytes = sample().encode().unwrap();
    for cut in 0..bytes.len() {
        assert!(
            decode(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut b = bytes.to_vec();
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % b.len();
            b[i] ^= 1 << (rng.next() % 8);
        }
        let _ = decode(&b);
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let len = (rng.next() % 96) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make the header plausible half of the time so the decoder gets past it.
        if len >= 8 && rng.next().is_multiple_of(2) {
            b[0] = 0x42;
            b[3] = (rng.next() % 11) as u8;
            b[4..8].copy_from_slice(&((rng.next() % 128) as u32).to_be_bytes());
        }
        let _ = decode(&b);
    }
}
