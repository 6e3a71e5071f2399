//! Hostile and broken input: every case gets a verdict, never a panic, a hang or an
//! allocation beyond the capture bound.

use ims_format::{Format, HEAD_LEN, REGION_BUDGET, StreamInspector, TAIL_LEN, inspect_bytes};
use proptest::prelude::*;

const BOUND: usize = HEAD_LEN + REGION_BUDGET as usize + TAIL_LEN;

/// Where each format's signature sits, so generated inputs reach every probe.
const SIGNATURES: [(usize, &[u8]); 12] = [
    (0, b"QFI\xfb\0\0\0\x03"),
    (0, b"QFI\xfb\0\0\0\x02"),
    (0, b"QFI\xfb\0\0\0\x01"),
    (0, b"QED\0"),
    (0, b"conectix"),
    (0, b"vhdxfile"),
    (0, b"KDMV"),
    (
        0,
        b"# Disk DescriptorFile\ncreateType=\"monolithicSparse\"\nRW 10 SPARSE \"x\"\n",
    ),
    (0x40, b"\x7f\x10\xda\xbe"),
    (32769, b"CD001"),
    (0, b"LUKS\xba\xbe\0\x02"),
    (510, b"\x55\xaa"),
];

fn with_signature(mut data: Vec<u8>, which: usize) -> Vec<u8> {
    let (off, sig) = SIGNATURES[which % SIGNATURES.len()];
    if data.len() < off + sig.len() {
        data.resize(off + sig.len(), 0);
    }
    data[off..off + sig.len()].copy_from_slice(sig);
    data
}

fn chunked(data: &[u8], size: usize) -> (ims_format::Report, usize) {
    let mut inspector = StreamInspector::new();
    for piece in data.chunks(size.max(1)) {
        inspector.feed(piece);
    }
    let captured = inspector.captured();
    (captured.report(), captured.kept_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_input_gets_a_verdict_within_bounds(
        data in prop::collection::vec(any::<u8>(), 0..70_000),
        which in 0usize..12,
        chunk in 1usize..9000,
    ) {
        let data = with_signature(data, which);
        let whole = inspect_bytes(&data);
        let (pieces, kept) = chunked(&data, chunk);
        prop_assert_eq!(&whole, &pieces, "chunking changed the verdict");
        prop_assert!(kept <= BOUND);
        prop_assert_eq!(whole.size, data.len() as u64);
        prop_assert_eq!(whole.safe, whole.problems.is_empty());
    }

    #[test]
    fn header_fields_at_any_value_never_panic(
        which in 0usize..12,
        fields in prop::collection::vec(any::<u64>(), 64),
        len in 0usize..(3 << 20),
    ) {
        // Fill the first 512 bytes with arbitrary big-endian and little-endian words,
        // so offsets and sizes take absurd values, and let the file be any length.
        let mut data = vec![0u8; len.max(600)];
        for (i, f) in fields.iter().enumerate() {
            let bytes = if i % 2 == 0 { f.to_be_bytes() } else { f.to_le_bytes() };
            data[i * 8..i * 8 + 8].copy_from_slice(&bytes);
        }
        let data = with_signature(data, which);
        let (report, kept) = chunked(&data, 1 << 20);
        prop_assert!(kept <= BOUND);
        prop_assert_eq!(report, inspect_bytes(&data));
    }
}

#[test]
fn empty_input_is_an_empty_raw_disk() {
    let r = inspect_bytes(&[]);
    assert_eq!(
        (r.format, r.virtual_size, r.safe),
        (Format::Raw, Some(0), true)
    );
}

#[test]
fn truncated_qcow2_header_is_malformed() {
    let r = inspect_bytes(b"QFI\xfb\0\0\0\x03\0\0\0\0");
    assert_eq!(r.format, Format::Qcow2);
    assert_eq!(r.problems[0].check, "malformed");
}

/// A minimal, valid qcow2 v3 header for a `size`-byte disk with 64 KiB clusters.
fn qcow2_header(size: u64, l1_size: u32) -> Vec<u8> {
    let mut h = vec![0u8; 4 << 16];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    h[20..24].copy_from_slice(&16u32.to_be_bytes());
    h[24..32].copy_from_slice(&size.to_be_bytes());
    h[36..40].copy_from_slice(&l1_size.to_be_bytes());
    h[40..48].copy_from_slice(&(3u64 << 16).to_be_bytes());
    h[48..56].copy_from_slice(&(1u64 << 16).to_be_bytes());
    h[56..60].copy_from_slice(&1u32.to_be_bytes());
    h[96..100].copy_from_slice(&4u32.to_be_bytes());
    h[100..104].copy_from_slice(&104u32.to_be_bytes());
    h
}

#[test]
fn a_header_claiming_a_petabyte_without_tables_for_it_is_refused() {
    assert!(inspect_bytes(&qcow2_header(1 << 30, 2)).safe);
    let r = inspect_bytes(&qcow2_header(1 << 50, 2));
    assert!(!r.safe);
    assert!(
        r.problems[0].reason.contains("cannot map"),
        "{:?}",
        r.problems
    );
    let r = inspect_bytes(&qcow2_header(1 << 50, u32::MAX));
    assert!(
        r.problems[0].reason.contains("absurdly large"),
        "{:?}",
        r.problems
    );
}

#[test]
fn overlapping_qcow2_tables_are_refused() {
    let mut h = qcow2_header(1 << 30, 2);
    h[40..48].copy_from_slice(&(1u64 << 16).to_be_bytes());
    let r = inspect_bytes(&h);
    assert!(
        r.problems.iter().any(|p| p.reason.contains("overlaps")),
        "{:?}",
        r.problems
    );
}

#[test]
fn random_megabytes_are_raw_or_refused_never_a_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..(3 << 20))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let r = inspect_bytes(&data);
    assert_eq!(r.format, Format::Raw);
    assert_eq!(r.virtual_size, Some(3 << 20));
}

#[test]
fn text_vmdk_pointing_at_host_files_is_refused() {
    let d = b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
              createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/passwd\" 0\n";
    let r = inspect_bytes(d);
    assert_eq!(r.format, Format::Vmdk);
    let checks: Vec<&str> = r.problems.iter().map(|p| p.check).collect();
    assert!(
        checks.contains(&"vmdk_create_type") && checks.contains(&"extent"),
        "{checks:?}"
    );
    // Even a relative name is another file: qemu would open it beside the image.
    let d = b"# Disk DescriptorFile\ncreateType=\"monolithicSparse\"\nRW 2048 FLAT \"passwd\" 0\n";
    assert!(!inspect_bytes(d).safe);
}

#[test]
fn iso_with_a_qcow2_header_is_a_polyglot() {
    let mut data = qcow2_header(1 << 30, 2);
    data.resize(40 << 10, 0);
    data[32768] = 1;
    data[32769..32774].copy_from_slice(b"CD001");
    let r = inspect_bytes(&data);
    assert!(
        r.problems.iter().any(|p| p.check == "polyglot"),
        "{:?}",
        r.problems
    );
}
