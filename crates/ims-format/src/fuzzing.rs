//! Shared by the fuzz targets and the property tests: steer arbitrary bytes into one
//! probe by planting its signature, then check the invariants every input must keep.

use crate::capture::{HEAD_LEN, REGION_BUDGET, StreamInspector, TAIL_LEN, inspect_bytes};
use crate::format::Format;

/// Where each format's signature sits (an offset and the bytes).
pub fn signature(format: Format) -> (usize, &'static [u8]) {
    match format {
        Format::Qcow2 => (0, b"QFI\xfb\0\0\0\x03"),
        Format::Qcow => (0, b"QFI\xfb\0\0\0\x01"),
        Format::Qed => (0, b"QED\0"),
        Format::Vhd => (0, b"conectix"),
        Format::Vhdx => (0, b"vhdxfile"),
        Format::Vmdk => (0, b"KDMV"),
        Format::Vdi => (0x40, b"\x7f\x10\xda\xbe"),
        Format::Iso => (32769, b"CD001"),
        Format::Luks => (0, b"LUKS\xba\xbe"),
        Format::Gpt => (510, b"\x55\xaa"),
        Format::Mbr => (510, b"\x55\xaa"),
        Format::Zvhd => (0, b"stream\0\0"),
        Format::Zvhd2 => (0, b"z2strm\0\0"),
        Format::Raw => (0, b""),
    }
}

/// `data` with `format`'s signature written in place (growing it if needed).
pub fn planted(format: Format, data: &[u8]) -> Vec<u8> {
    let (off, sig) = signature(format);
    let mut data = data.to_vec();
    if data.len() < off + sig.len() {
        data.resize(off + sig.len(), 0);
    }
    data[off..off + sig.len()].copy_from_slice(sig);
    if format == Format::Gpt && data.len() >= 520 {
        data[512..520].copy_from_slice(b"EFI PART");
    }
    data
}

/// Inspects `data` whole and in `chunk`-byte pieces; panics if the verdicts differ,
/// the capture exceeds its bound, or the report contradicts itself.
pub fn check_invariants(data: &[u8], chunk: usize) {
    let whole = inspect_bytes(data);
    let mut inspector = StreamInspector::new();
    for piece in data.chunks(chunk.max(1)) {
        inspector.feed(piece);
    }
    let captured = inspector.captured();
    assert!(captured.kept_bytes() <= HEAD_LEN + REGION_BUDGET as usize + TAIL_LEN);
    assert_eq!(whole, captured.report(), "chunking changed the verdict");
    assert_eq!(whole.size, data.len() as u64);
    assert_eq!(whole.safe, whole.problems.is_empty());
}
