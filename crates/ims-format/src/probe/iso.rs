//! ISO 9660 and UDF optical images: volume descriptors from sector 16 (32 KiB) on.

use crate::bytes::{le16, le32, slice};
use crate::capture::Captured;
use crate::format::Format;
use crate::probe::Probe;
use crate::report::Finding;

const FIRST: usize = 32 << 10;
const SECTOR: usize = 2048;
/// Descriptors looked at: the volume descriptor set and UDF's recognition sequence.
const DESCRIPTORS: usize = 32;
const UDF_IDS: [&[u8]; 3] = [b"BEA01", b"NSR02", b"NSR03"];

/// ISO.
pub(crate) struct Iso;

impl Probe for Iso {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        let descriptor = |n: usize| slice(head, FIRST + n * SECTOR, SECTOR);
        let first = descriptor(0)?;
        let id = &first[1..6];
        if id != b"CD001" && !UDF_IDS.contains(&id) {
            return None;
        }
        let mut f = Finding::new(Format::Iso);
        // qemu has no ISO driver: it reads an ISO as a raw disk of the file's length.
        f.virtual_size = Some(c.total());
        let mut udf = false;
        for d in (0..DESCRIPTORS).map_while(descriptor) {
            match (&d[1..6], d[0]) {
                (b"CD001", 1) => primary(d, c.total(), &mut f),
                (b"CD001", 255) => break,
                (id, _) if id == b"NSR02" || id == b"NSR03" => udf = true,
                _ => {}
            }
        }
        f.detail("filesystem", if udf { "udf" } else { "iso9660" });
        Some(f)
    }
}

/// The primary volume descriptor's volume size must fit in the file.
fn primary(d: &[u8], total: u64, f: &mut Finding) {
    let blocks = u64::from(le32(d, 80).unwrap_or(0));
    let block = u64::from(le16(d, 128).unwrap_or(0));
    if ![512, 1024, 2048, 4096].contains(&block) {
        f.malformed(format!("the ISO logical block size {block} is impossible"));
    } else if blocks * block > total {
        f.malformed("the ISO volume is larger than the file");
    }
}
