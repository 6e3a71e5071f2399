//! Hostile and broken input: every case gets a verdict, never a panic, a hang or an
//! allocation beyond the capture bound.

use ims_format::{Format, inspect_bytes};
use proptest::prelude::*;

/// Formats whose signature the generated inputs carry, so they reach every probe.
const PLANTED: [Format; 12] = [
    Format::Qcow2,
    Format::Qcow,
    Format::Qed,
    Format::Vhd,
    Format::Vhdx,
    Format::Vmdk,
    Format::Vdi,
    Format::Iso,
    Format::Luks,
    Format::Gpt,
    Format::Mbr,
    Format::Zvhd2,
];

fn with_signature(data: Vec<u8>, which: usize) -> Vec<u8> {
    ims_format::fuzzing::planted(PLANTED[which % PLANTED.len()], &data)
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
        ims_format::fuzzing::check_invariants(&data, chunk);
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
        ims_format::fuzzing::check_invariants(&data, 1 << 20);
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
