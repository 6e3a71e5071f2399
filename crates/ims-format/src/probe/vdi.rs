//! VirtualBox VDI: the signature at 0x40 and the header after it. Undo and
//! differencing images refer to a parent and are refused.

use crate::bytes::{le32, le64, slice};
use crate::capture::Captured;
use crate::format::Format;
use crate::probe::Probe;
use crate::report::Finding;

const SIGNATURE: u32 = 0xbeda_107f;
const VERSION: u32 = 0x0001_0001;
const TYPE_NORMAL: u32 = 1;
const TYPE_FIXED: u32 = 2;
const TYPE_UNDO: u32 = 3;
const TYPE_DIFF: u32 = 4;
/// qemu only handles 1 MiB blocks and at most 2^30 / 4 of them.
const BLOCK: u64 = 1 << 20;
const MAX_BLOCKS: u64 = (1 << 30) / 4;

/// VDI.
pub(crate) struct Vdi;

impl Probe for Vdi {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        if le32(head, 0x40) != Some(SIGNATURE) {
            return None;
        }
        let mut f = Finding::new(Format::Vdi);
        if let Err(reason) = check(head, c.total(), &mut f) {
            f.malformed(reason);
        }
        Some(f)
    }
}

fn check(h: &[u8], total: u64, f: &mut Finding) -> Result<(), String> {
    let short = || "the VDI header is truncated".to_string();
    let u32_at = |off| le32(h, off).ok_or_else(short);
    if u32_at(0x44)? != VERSION {
        return Err("the VDI version is not 1.1".into());
    }
    let disk_size = le64(h, 0x170).ok_or_else(short)?;
    f.virtual_size = Some(disk_size / 512 * 512);
    match u32_at(0x4c)? {
        TYPE_NORMAL => f.detail("subformat", "dynamic"),
        TYPE_FIXED => f.detail("subformat", "fixed"),
        TYPE_UNDO | TYPE_DIFF => f.problem(
            "backing_file",
            "the VDI is a differencing image with a parent",
        ),
        t => return Err(format!("the VDI image type {t} is unknown")),
    }
    let parent = slice(h, 0x1a8, 32).ok_or_else(short)?;
    if parent.iter().any(|&b| b != 0) {
        f.problem("backing_file", "the VDI links to a parent image");
    }
    let (bmap, data) = (u64::from(u32_at(0x154)?), u64::from(u32_at(0x158)?));
    let (sector, block) = (u32_at(0x168)?, u64::from(u32_at(0x178)?));
    let blocks = u64::from(u32_at(0x180)?);
    if sector != 512 || block != BLOCK {
        return Err("the VDI sector or block size is not supported".into());
    }
    if blocks > MAX_BLOCKS || blocks * block < disk_size {
        return Err("the VDI block count does not fit its disk size".into());
    }
    if bmap % 512 != 0 || data % 512 != 0 || bmap + blocks * 4 > data || data > total {
        return Err("the VDI block map and data offsets are inconsistent".into());
    }
    Ok(())
}
