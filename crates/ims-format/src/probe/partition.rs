//! Partition tables on raw disks: MBR and GPT. A table that does not hold together is
//! refused, as Glance does: a disk whose partitions overlap or run past its end is
//! either damaged or crafted.

use crate::bytes::{has, le32, le64, slice};
use crate::capture::Captured;
use crate::format::Format;
use crate::probe::Probe;
use crate::report::Finding;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
const PROTECTIVE: u8 = 0xee;
const MAX_ENTRIES_BYTES: u64 = 1 << 20;

/// An MBR partition table.
pub(crate) struct Mbr;

/// A GUID partition table.
pub(crate) struct Gpt;

/// The four primary entries of an MBR: (boot flag, type, first LBA, sectors).
fn mbr_entries(head: &[u8]) -> Option<Vec<(u8, u8, u64, u64)>> {
    (0..4)
        .map(|i| {
            let e = slice(head, 446 + i * 16, 16)?;
            Some((e[0], e[4], u64::from(le32(e, 8)?), u64::from(le32(e, 12)?)))
        })
        .collect()
}

/// A boot sector of a filesystem (FAT, NTFS, exFAT) also ends in 0x55AA but holds no
/// partition table.
fn is_filesystem_boot_sector(head: &[u8]) -> bool {
    let jump = matches!(head.first(), Some(0xeb) | Some(0xe9));
    jump && (has(head, 54, b"FAT")
        || has(head, 82, b"FAT")
        || has(head, 3, b"NTFS    ")
        || has(head, 3, b"EXFAT   "))
}

fn has_mbr(head: &[u8]) -> bool {
    has(head, 510, b"\x55\xaa") && !is_filesystem_boot_sector(head)
}

impl Probe for Mbr {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        if !has_mbr(head) {
            return None;
        }
        let mut f = Finding::new(Format::Mbr);
        let entries = mbr_entries(head)?;
        let used: Vec<_> = entries.iter().filter(|e| e.1 != 0).collect();
        if entries.iter().any(|e| e.0 != 0 && e.0 != 0x80) {
            f.problem("mbr", "an MBR partition has an invalid boot flag");
        }
        if used.is_empty() {
            f.problem("mbr", "the MBR has no partitions");
        }
        if used.iter().any(|e| e.1 == PROTECTIVE) {
            f.problem(
                "mbr",
                "the MBR is protective but no GUID partition table follows",
            );
        }
        let spans: Vec<(u64, u64)> = used.iter().map(|e| (e.2, e.2 + e.3)).collect();
        if spans
            .iter()
            .any(|&(start, end)| start == 0 || end * 512 > c.total())
        {
            f.problem("mbr", "an MBR partition lies outside the disk");
        }
        if overlapping(spans) {
            f.problem("mbr", "MBR partitions overlap");
        }
        Some(f)
    }
}

impl Probe for Gpt {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        if !has_mbr(head) {
            return None;
        }
        let sector = [512u64, 4096]
            .into_iter()
            .find(|&s| has(head, s as usize, b"EFI PART"))?;
        let mut f = Finding::new(Format::Gpt);
        if let Err(reason) = check(c, sector, &mut f) {
            f.problem("gpt", reason);
        }
        Some(f)
    }
}

fn check(c: &Captured, sector: u64, f: &mut Finding) -> Result<(), String> {
    let head = c.head();
    let entries = mbr_entries(head).ok_or("the protective MBR is truncated")?;
    let used: Vec<_> = entries.iter().filter(|e| e.1 != 0).collect();
    if used.len() != 1 || used[0].1 != PROTECTIVE || used[0].2 != 1 {
        return Err("the MBR in front of the GUID partition table is not protective".into());
    }
    let hdr = slice(head, sector as usize, sector as usize).ok_or("the GPT header is truncated")?;
    let size = le32(hdr, 12).unwrap_or(0) as usize;
    if !(92..=sector as usize).contains(&size) {
        return Err(format!("the GPT header size {size} is impossible"));
    }
    let mut zeroed = hdr[..size].to_vec();
    zeroed[16..20].fill(0);
    if Some(CRC32.checksum(&zeroed)) != le32(hdr, 16) {
        return Err("the GPT header checksum is wrong".into());
    }
    let field = |off| le64(hdr, off).unwrap_or(0);
    let (my_lba, first_usable, last_usable, entries_lba) =
        (field(24), field(40), field(48), field(72));
    let count = u64::from(le32(hdr, 80).unwrap_or(0));
    let entry_size = u64::from(le32(hdr, 84).unwrap_or(0));
    let disk_sectors = c.total() / sector;
    if my_lba != 1 || first_usable > last_usable || last_usable >= disk_sectors {
        return Err("the GPT usable area does not fit the disk".into());
    }
    if entry_size < 128 || !entry_size.is_power_of_two() || count * entry_size > MAX_ENTRIES_BYTES {
        return Err("the GPT partition entry array is impossible".into());
    }
    let array = c
        .at(
            entries_lba.saturating_mul(sector),
            (count * entry_size) as usize,
        )
        .ok_or("the GPT partition entries lie outside the disk's first megabyte")?;
    if Some(CRC32.checksum(array)) != le32(hdr, 88) {
        return Err("the GPT partition entries checksum is wrong".into());
    }
    let mut spans = Vec::new();
    for e in array.chunks_exact(entry_size as usize) {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32).unwrap_or(0), le64(e, 40).unwrap_or(0));
        if first > last || first < first_usable || last > last_usable {
            return Err("a GPT partition lies outside the usable area".into());
        }
        spans.push((first, last + 1));
    }
    if overlapping(spans) {
        return Err("GPT partitions overlap".into());
    }
    f.detail(
        "partitions",
        format!(
            "{}",
            array
                .chunks_exact(entry_size as usize)
                .filter(|e| e[..16].iter().any(|&b| b != 0))
                .count()
        ),
    );
    Ok(())
}

/// Whether any two half-open spans overlap.
fn overlapping(mut spans: Vec<(u64, u64)>) -> bool {
    spans.sort();
    spans.windows(2).any(|w| w[1].0 < w[0].1)
}
