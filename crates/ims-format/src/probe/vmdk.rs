//! VMware VMDK: the sparse header (`KDMV`), its embedded descriptor, the stream-optimised
//! footer, and text-only descriptor files. Only monolithicSparse and streamOptimized are
//! accepted, and no extent may name another file: that is how host files get read
//! (CVE-2022-47951).

use crate::bytes::{has, le16, le32, le64, slice};
use crate::capture::{Captured, HEAD_LEN};
use crate::format::Format;
use crate::probe::{Probe, pow2_in};
use crate::report::Finding;

const MAGIC: &[u8] = b"KDMV";
const TEXT_MAGIC: &[u8] = b"# Disk DescriptorFile";
const SECTOR: u64 = 512;
const GD_AT_END: u64 = u64::MAX;
const MAX_DESCRIPTOR: u64 = 1 << 20;
const ALLOWED_TYPES: [&str; 2] = ["monolithicSparse", "streamOptimized"];
const EXTENT_ACCESS: [&str; 3] = ["RW", "RDONLY", "NOACCESS"];
const EXTENT_TYPES: [&str; 8] = [
    "FLAT",
    "SPARSE",
    "ZERO",
    "VMFS",
    "VMFSSPARSE",
    "VMFSRDM",
    "VMFSRAW",
    "SESPARSE",
];

/// VMDK.
pub(crate) struct Vmdk;

impl Probe for Vmdk {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        let mut f = Finding::new(Format::Vmdk);
        let result = if has(head, 0, MAGIC) {
            sparse(c, &mut f)
        } else if has(head, 0, TEXT_MAGIC) {
            let text = &head[..head.len().min(MAX_DESCRIPTOR as usize)];
            descriptor(text, false, &mut f).map(|_| ())
        } else {
            return None;
        };
        if let Err(reason) = result {
            f.malformed(reason);
        }
        Some(f)
    }
}

/// The sparse header fields compared between header and footer.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    version: u32,
    flags: u32,
    capacity: u64,
    grain: u64,
    descriptor_offset: u64,
    descriptor_size: u64,
    gtes_per_gt: u32,
    compression: u16,
}

fn header(b: &[u8]) -> Option<(Header, u64)> {
    Some((
        Header {
            version: le32(b, 4)?,
            flags: le32(b, 8)?,
            capacity: le64(b, 12)?,
            grain: le64(b, 20)?,
            descriptor_offset: le64(b, 28)?,
            descriptor_size: le64(b, 36)?,
            gtes_per_gt: le32(b, 44)?,
            compression: le16(b, 77)?,
        },
        le64(b, 56)?,
    ))
}

fn sparse(c: &Captured, f: &mut Finding) -> Result<(), String> {
    let (h, gd_offset) = header(c.head()).ok_or("the VMDK header is truncated")?;
    f.virtual_size = Some(h.capacity.saturating_mul(SECTOR));
    if !(1..=3).contains(&h.version) {
        return Err(format!("the VMDK version {} is unknown", h.version));
    }
    if !pow2_in(h.grain, 1, 1 << 16) || !pow2_in(u64::from(h.gtes_per_gt), 1, 1 << 16) {
        return Err("the VMDK grain or grain table size is impossible".into());
    }
    if h.compression > 1 {
        return Err(format!(
            "the VMDK compression algorithm {} is unknown",
            h.compression
        ));
    }
    if h.capacity > (1 << 40) {
        return Err("the VMDK capacity is absurdly large".into());
    }
    if slice(c.head(), 73, 4).is_none_or(|b| b != b"\n \r\n") {
        return Err("the VMDK header's line-end check bytes are damaged".into());
    }
    let (start, len) = (
        h.descriptor_offset.saturating_mul(SECTOR),
        h.descriptor_size.saturating_mul(SECTOR),
    );
    if h.descriptor_offset == 0
        || len == 0
        || len > MAX_DESCRIPTOR
        || start.saturating_add(len) > HEAD_LEN as u64
    {
        return Err("the VMDK has no embedded descriptor in its first megabyte".into());
    }
    let text = c
        .at(start, len as usize)
        .ok_or("the VMDK descriptor is truncated")?;
    let extent_sectors = descriptor(text, true, f)?;
    if extent_sectors != h.capacity {
        return Err("the VMDK descriptor's extents disagree with the header's capacity".into());
    }
    if gd_offset == GD_AT_END {
        footer(c, &h)
    } else {
        let tables = h
            .capacity
            .div_ceil(h.grain.saturating_mul(u64::from(h.gtes_per_gt)));
        if gd_offset.saturating_mul(SECTOR).saturating_add(tables * 4) > c.total() {
            return Err("the VMDK grain directory lies beyond the end of the file".into());
        }
        Ok(())
    }
}

/// A stream-optimised VMDK ends with a footer marker, a copy of the header holding the
/// real grain directory offset, and an end-of-stream marker.
fn footer(c: &Captured, h: &Header) -> Result<(), String> {
    let total = c.total();
    let start = total
        .checked_sub(3 * SECTOR)
        .ok_or("the VMDK stream footer is missing")?;
    let tail = c
        .at(start, 3 * SECTOR as usize)
        .ok_or("the VMDK stream footer is missing")?;
    let (marker, copy, eos) = (&tail[..512], &tail[512..1024], &tail[1024..]);
    if le64(marker, 0) != Some(1) || le32(marker, 8) != Some(0) || le32(marker, 12) != Some(3) {
        return Err("the VMDK footer marker is damaged".into());
    }
    if eos.iter().any(|&b| b != 0) {
        return Err("the VMDK end-of-stream marker is damaged".into());
    }
    let (footer, gd_offset) = header(copy)
        .filter(|_| has(copy, 0, MAGIC))
        .ok_or("the VMDK footer header is damaged")?;
    if &footer != h {
        return Err("the VMDK footer does not match its header".into());
    }
    if gd_offset == GD_AT_END || gd_offset.saturating_mul(SECTOR) >= start {
        return Err("the VMDK footer's grain directory offset is impossible".into());
    }
    Ok(())
}

/// Parses a descriptor, records the create type, and returns the extents' total size in
/// sectors. Lines must be comments, `key=value` pairs or extent lines.
fn descriptor(raw: &[u8], embedded: bool, f: &mut Finding) -> Result<u64, String> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let text = std::str::from_utf8(&raw[..end]).map_err(|_| "the VMDK descriptor is not text")?;
    let mut create_type = None;
    let (mut sectors, mut extents, mut files) = (0u64, 0, 0);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(extent) = extent_line(line) {
            let (size, kind, file) = extent?;
            extents += 1;
            sectors = sectors.saturating_add(size);
            if let Some(file) = file {
                files += 1;
                extent_file_check(file, kind, embedded, f);
            }
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("the VMDK descriptor line {line:?} is not understood"))?;
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "createType" => create_type = Some(value.to_string()),
            "parentFileNameHint" => f.problem("backing_file", "the VMDK names a parent disk"),
            "parentCID" if !value.eq_ignore_ascii_case("ffffffff") => {
                f.problem("backing_file", "the VMDK refers to a parent disk");
            }
            _ => {}
        }
    }
    let create_type = create_type.ok_or("the VMDK descriptor has no createType")?;
    f.detail("subformat", &create_type);
    if !ALLOWED_TYPES.contains(&create_type.as_str()) {
        f.problem("vmdk_create_type", format!("VMDK create type {create_type} is not accepted (only monolithicSparse and streamOptimized)"));
    }
    if extents == 0 {
        return Err("the VMDK descriptor has no extents".into());
    }
    if files > 1 {
        f.problem("extent", "the VMDK spreads over several files");
    }
    if !embedded {
        f.virtual_size = Some(sectors.saturating_mul(SECTOR));
    }
    Ok(sectors)
}

type Extent<'a> = Result<(u64, &'a str, Option<&'a str>), String>;

/// An extent line: `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`, or `None` if not one.
fn extent_line(line: &str) -> Option<Extent<'_>> {
    let (access, rest) = line.split_once(char::is_whitespace)?;
    if !EXTENT_ACCESS.contains(&access) {
        return None;
    }
    let mut parts = rest.trim_start().splitn(3, char::is_whitespace);
    let size = parts.next().and_then(|s| s.parse::<u64>().ok());
    let kind = parts.next().filter(|k| EXTENT_TYPES.contains(k));
    let (Some(size), Some(kind)) = (size, kind) else {
        return Some(Err(format!(
            "the VMDK extent line {line:?} is not understood"
        )));
    };
    let file = parts.next().map(|rest| {
        let rest = rest.trim();
        rest.strip_prefix('"')
            .and_then(|r| r.split_once('"'))
            .map_or(rest, |(name, _)| name)
    });
    Some(Ok((size, kind, file)))
}

/// A file-backed extent is only acceptable as the sparse image itself: the one SPARSE
/// extent of a sparse file, named without any path.
fn extent_file_check(file: &str, kind: &str, embedded: bool, f: &mut Finding) {
    if file.contains('/') || file.contains('\\') || file.contains("..") {
        f.problem("extent", "a VMDK extent names a path");
    } else if !embedded || kind != "SPARSE" {
        f.problem(
            "extent",
            format!("a VMDK {kind} extent refers to a separate file"),
        );
    }
}
