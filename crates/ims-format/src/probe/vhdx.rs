//! Hyper-V VHDX: file identifier, region table at 192 KiB, metadata region (somewhere
//! past the first megabyte, captured as a region), and its items.

use crate::bytes::{has, le16, le32, le64, slice};
use crate::capture::{Captured, Region};
use crate::format::Format;
use crate::probe::{Probe, pow2_in};
use crate::report::Finding;

const SIGNATURE: &[u8] = b"vhdxfile";
const REGION_TABLE: usize = 192 << 10;
const REGION_TABLE_LEN: usize = 64 << 10;
const MIB: u64 = 1 << 20;
const MAX_ENTRIES: u64 = 2047;
/// VHDX's largest disk: 64 TiB.
const MAX_DISK: u64 = 64 << 40;
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A GUID in its on-disk byte order (first three fields little-endian).
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let (b, c) = (b.to_le_bytes(), c.to_le_bytes());
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

const BAT: [u8; 16] = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
const METADATA: [u8; 16] = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const FILE_PARAMETERS: [u8; 16] = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const PAGE83: [u8; 16] = guid(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
const LOGICAL_SECTOR: [u8; 16] = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
const PHYSICAL_SECTOR: [u8; 16] = guid(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
const PARENT_LOCATOR: [u8; 16] = guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

/// VHDX.
pub(crate) struct Vhdx;

impl Probe for Vhdx {
    fn regions(&self, head: &[u8]) -> Vec<Region> {
        if !has(head, 0, SIGNATURE) {
            return Vec::new();
        }
        regions(head).map(|r| vec![r.metadata]).unwrap_or_default()
    }

    fn inspect(&self, c: &Captured) -> Option<Finding> {
        if !has(c.head(), 0, SIGNATURE) {
            return None;
        }
        let mut f = Finding::new(Format::Vhdx);
        if let Err(reason) = check(c, &mut f) {
            f.malformed(reason);
        }
        Some(f)
    }
}

struct Regions {
    metadata: Region,
    metadata_len: u64,
    bat: Region,
}

fn regions(head: &[u8]) -> Result<Regions, String> {
    let table =
        slice(head, REGION_TABLE, REGION_TABLE_LEN).ok_or("the VHDX region table is missing")?;
    if !has(table, 0, b"regi") {
        return Err("the VHDX region table signature is missing".into());
    }
    let mut zeroed = table.to_vec();
    zeroed[4..8].fill(0);
    if Some(CRC32C.checksum(&zeroed)) != le32(table, 4) {
        return Err("the VHDX region table checksum is wrong".into());
    }
    let count = u64::from(le32(table, 8).unwrap_or(0));
    if count > MAX_ENTRIES {
        return Err(format!("the VHDX region table claims {count} entries"));
    }
    let (mut metadata, mut bat) = (None, None);
    for i in 0..count as usize {
        let entry = slice(table, 16 + i * 32, 32).ok_or("the VHDX region table is truncated")?;
        let offset = le64(entry, 16).unwrap_or(0);
        let len = u64::from(le32(entry, 24).unwrap_or(0));
        let required = le32(entry, 28).unwrap_or(0) & 1 != 0;
        if offset < MIB || !offset.is_multiple_of(MIB) || len % MIB != 0 || len == 0 {
            return Err("a VHDX region is not aligned to a megabyte".into());
        }
        let region = Region { offset, len };
        match &entry[..16] {
            g if g == METADATA => metadata = Some(region),
            g if g == BAT => bat = Some(region),
            _ if required => return Err("the VHDX image requires an unknown region".into()),
            _ => {}
        }
    }
    let metadata = metadata.ok_or("the VHDX metadata region is missing")?;
    Ok(Regions {
        metadata: Region {
            len: metadata.len.min(MIB),
            ..metadata
        },
        metadata_len: metadata.len,
        bat: bat.ok_or("the VHDX block allocation table is missing")?,
    })
}

fn check(c: &Captured, f: &mut Finding) -> Result<(), String> {
    let r = regions(c.head())?;
    let spans = [
        r.metadata.offset..r.metadata.offset + r.metadata_len,
        r.bat.offset..r.bat.offset + r.bat.len,
    ];
    if spans[0].start < spans[1].end && spans[1].start < spans[0].end {
        return Err("the VHDX metadata region overlaps the block allocation table".into());
    }
    if spans.iter().any(|s| s.end > c.total()) {
        return Err("a VHDX region lies beyond the end of the file".into());
    }
    let table = c
        .at(r.metadata.offset, 64 << 10)
        .ok_or("the VHDX metadata table is truncated")?;
    if !has(table, 0, b"metadata") {
        return Err("the VHDX metadata signature is missing".into());
    }
    let count = u64::from(le16(table, 10).unwrap_or(0));
    if count > MAX_ENTRIES {
        return Err(format!("the VHDX metadata table claims {count} entries"));
    }
    let mut items = Items::default();
    for i in 0..count as usize {
        let entry = slice(table, 32 + i * 32, 32).ok_or("the VHDX metadata table is truncated")?;
        let offset = u64::from(le32(entry, 16).unwrap_or(0));
        let len = le32(entry, 20).unwrap_or(0) as usize;
        let required = le32(entry, 24).unwrap_or(0) & 4 != 0;
        if len == 0 {
            continue;
        }
        if offset < (64 << 10) || offset + len as u64 > r.metadata_len {
            return Err("a VHDX metadata item lies outside the metadata region".into());
        }
        let value = c
            .at(r.metadata.offset + offset, len)
            .ok_or("a VHDX metadata item lies outside the inspected region")?;
        items.take(&entry[..16], value, required, f)?;
    }
    items.conclude(f)
}

#[derive(Default)]
struct Items {
    block_size: Option<u64>,
    disk_size: Option<u64>,
    logical_sector: Option<u64>,
}

impl Items {
    fn take(
        &mut self,
        id: &[u8],
        value: &[u8],
        required: bool,
        f: &mut Finding,
    ) -> Result<(), String> {
        match id {
            g if g == FILE_PARAMETERS => {
                self.block_size = le32(value, 0).map(u64::from);
                if le32(value, 4).unwrap_or(0) & 2 != 0 {
                    f.problem(
                        "backing_file",
                        "the VHDX is a differencing disk that has a parent",
                    );
                }
            }
            g if g == VIRTUAL_DISK_SIZE => self.disk_size = le64(value, 0),
            g if g == LOGICAL_SECTOR => self.logical_sector = le32(value, 0).map(u64::from),
            g if g == PARENT_LOCATOR => {
                f.problem("backing_file", "the VHDX names a parent disk");
            }
            g if g == PHYSICAL_SECTOR || g == PAGE83 => {}
            _ if required => return Err("the VHDX requires an unknown metadata item".into()),
            _ => {}
        }
        Ok(())
    }

    fn conclude(self, f: &mut Finding) -> Result<(), String> {
        let block = self
            .block_size
            .ok_or("the VHDX file parameters are missing")?;
        let size = self
            .disk_size
            .ok_or("the VHDX virtual disk size is missing")?;
        let sector = self
            .logical_sector
            .ok_or("the VHDX logical sector size is missing")?;
        if !pow2_in(block, MIB, 256 * MIB) {
            return Err(format!("the VHDX block size {block} is impossible"));
        }
        if sector != 512 && sector != 4096 {
            return Err(format!(
                "the VHDX logical sector size {sector} is impossible"
            ));
        }
        if size > MAX_DISK || size % sector != 0 {
            return Err(format!("the VHDX virtual disk size {size} is impossible"));
        }
        f.virtual_size = Some(size);
        Ok(())
    }
}
