//! Microsoft VHD: fixed (footer at the end of the file) and dynamic (footer copy at the
//! start, dynamic header, block allocation table). Differencing disks name a parent and
//! are refused.

use crate::bytes::{be16, be32, be64, has, slice};
use crate::capture::Captured;
use crate::format::Format;
use crate::probe::{Probe, pow2_in};
use crate::report::Finding;

const COOKIE: &[u8] = b"conectix";
const DYNAMIC_COOKIE: &[u8] = b"cxsparse";
const FOOTER_LEN: usize = 512;
const DYNAMIC_HEADER_LEN: usize = 1024;
const TYPE_FIXED: u32 = 2;
const TYPE_DYNAMIC: u32 = 3;
const TYPE_DIFFERENCING: u32 = 4;
/// qemu's largest geometry (65535 × 16 × 255) and largest disk (2040 GiB).
const MAX_GEOMETRY: u64 = 65535 * 16 * 255;
const MAX_SECTORS: u64 = 0xff00_0000;

/// VHD.
pub(crate) struct Vhd;

impl Probe for Vhd {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        let tail = c.tail();
        let end_footer = tail
            .len()
            .checked_sub(FOOTER_LEN)
            .and_then(|o| slice(tail, o, FOOTER_LEN));
        let (footer, fixed) = if has(head, 0, COOKIE) {
            (slice(head, 0, FOOTER_LEN).unwrap_or(head), false)
        } else if let Some(footer) = end_footer.filter(|f| has(f, 0, COOKIE)) {
            (footer, true)
        } else {
            return None;
        };
        let mut f = Finding::new(Format::Vhd);
        f.detail("subformat", if fixed { "fixed" } else { "dynamic" });
        if let Err(reason) = check(c, footer, fixed, end_footer, &mut f) {
            f.malformed(reason);
        }
        Some(f)
    }
}

fn check(
    c: &Captured,
    footer: &[u8],
    fixed: bool,
    end_footer: Option<&[u8]>,
    f: &mut Finding,
) -> Result<(), String> {
    if footer.len() < FOOTER_LEN {
        return Err("the VHD footer is truncated".into());
    }
    if checksum(footer, 64) != be32(footer, 64) {
        return Err("the VHD footer checksum is wrong".into());
    }
    let disk_type = be32(footer, 60).unwrap_or(0);
    let size = virtual_size(footer)?;
    f.virtual_size = Some(size);
    match (disk_type, fixed) {
        (TYPE_FIXED, true) => {
            let data = c.total() - FOOTER_LEN as u64;
            let current = be64(footer, 48).unwrap_or(0);
            if current > data {
                return Err(format!(
                    "the fixed VHD claims {current} bytes but holds {data}"
                ));
            }
            Ok(())
        }
        (TYPE_DYNAMIC | TYPE_DIFFERENCING, false) => {
            if disk_type == TYPE_DIFFERENCING {
                f.detail("subformat", "differencing");
                f.problem(
                    "backing_file",
                    "the VHD is a differencing disk that names a parent",
                );
            }
            if end_footer != Some(footer) {
                return Err(
                    "the VHD footer at the end does not match the copy at the start".into(),
                );
            }
            dynamic(c, footer, size)
        }
        (TYPE_FIXED, false) => Err("a fixed VHD carries its footer at the start".into()),
        (t, _) => Err(format!("the VHD disk type {t} is unknown")),
    }
}

/// The size qemu's `vpc` driver reports: from the CHS geometry, except for creators
/// known to use the footer's current size, and for the maximum geometry.
fn virtual_size(footer: &[u8]) -> Result<u64, String> {
    let cyls = u64::from(be16(footer, 56).unwrap_or(0));
    let heads = u64::from(footer[58]);
    let sectors_per_track = u64::from(footer[59]);
    let creator = &footer[28..32];
    let uses_current_size = [b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0"]
        .iter()
        .any(|c| creator == *c);
    let mut sectors = cyls * heads * sectors_per_track;
    if uses_current_size || sectors == MAX_GEOMETRY {
        sectors = be64(footer, 48).unwrap_or(0) / 512;
    }
    if sectors > MAX_SECTORS {
        return Err("the VHD is larger than 2040 GiB".into());
    }
    Ok(sectors * 512)
}

fn dynamic(c: &Captured, footer: &[u8], size: u64) -> Result<(), String> {
    let header_offset = be64(footer, 16).unwrap_or(u64::MAX);
    let header = c
        .at(header_offset, DYNAMIC_HEADER_LEN)
        .ok_or("the VHD dynamic header lies outside the file's first megabyte")?;
    if !has(header, 0, DYNAMIC_COOKIE) {
        return Err("the VHD dynamic header signature is missing".into());
    }
    if checksum(header, 36) != be32(header, 36) {
        return Err("the VHD dynamic header checksum is wrong".into());
    }
    let table_offset = be64(header, 16).unwrap_or(u64::MAX);
    let entries = u64::from(be32(header, 28).unwrap_or(0));
    let block = u64::from(be32(header, 32).unwrap_or(0));
    if !pow2_in(block, 512, 256 << 20) {
        return Err(format!("the VHD block size {block} is impossible"));
    }
    if entries.saturating_mul(block) < size {
        return Err("the VHD block table is too small for the disk size".into());
    }
    if table_offset.saturating_add(entries * 4) > c.total() {
        return Err("the VHD block table lies beyond the end of the file".into());
    }
    Ok(())
}

/// The one's complement of the byte sum, with the checksum field counted as zero.
fn checksum(b: &[u8], field: usize) -> Option<u32> {
    let sum = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |acc, (_, &x)| acc.wrapping_add(u32::from(x)));
    Some(!sum)
}
