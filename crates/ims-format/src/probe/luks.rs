//! LUKS encrypted volumes, v1 (binary header) and v2 (binary header plus JSON area).

use crate::bytes::{be16, be32, be64, has, slice};
use crate::capture::Captured;
use crate::format::Format;
use crate::probe::Probe;
use crate::report::Finding;

const MAGIC: &[u8] = b"LUKS\xba\xbe";
const V1_HEADER: u64 = 592;
const SLOT_ENABLED: u32 = 0x00ac_71f3;
const STRIPES: u64 = 4000;

/// LUKS.
pub(crate) struct Luks;

impl Probe for Luks {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        if !has(c.head(), 0, MAGIC) {
            return None;
        }
        let mut f = Finding::new(Format::Luks);
        let result = match be16(c.head(), 6) {
            Some(1) => v1(c, &mut f),
            Some(2) => v2(c, &mut f),
            v => Err(format!("the LUKS version {v:?} is unknown")),
        };
        if let Err(reason) = result {
            f.malformed(reason);
        }
        Some(f)
    }
}

fn v1(c: &Captured, f: &mut Finding) -> Result<(), String> {
    let h = c.head();
    f.detail("version", 1);
    let payload = u64::from(be32(h, 104).ok_or("the LUKS header is truncated")?) * 512;
    let key_bytes = u64::from(be32(h, 108).unwrap_or(0));
    if payload < V1_HEADER || payload > c.total() {
        return Err("the LUKS payload offset lies outside the file".into());
    }
    if ![16, 32, 48, 64].contains(&key_bytes) {
        return Err(format!("the LUKS key length {key_bytes} is impossible"));
    }
    f.virtual_size = Some(c.total() - payload);
    for slot in 0..8 {
        let s = slice(h, 208 + slot * 48, 48).ok_or("the LUKS key slots are truncated")?;
        if be32(s, 0) != Some(SLOT_ENABLED) {
            continue;
        }
        let start = u64::from(be32(s, 40).unwrap_or(0)) * 512;
        let stripes = u64::from(be32(s, 44).unwrap_or(0));
        let end = start + key_bytes * stripes;
        if stripes != STRIPES || start < V1_HEADER || end > payload {
            return Err("a LUKS key slot lies outside the key material area".into());
        }
    }
    Ok(())
}

fn v2(c: &Captured, f: &mut Finding) -> Result<(), String> {
    f.detail("version", 2);
    let hdr = be64(c.head(), 8).ok_or("the LUKS header is truncated")?;
    if !(16384..=(4 << 20)).contains(&hdr) || !hdr.is_power_of_two() {
        return Err(format!("the LUKS2 header size {hdr} is impossible"));
    }
    let json = c
        .at(4096, (hdr - 4096) as usize)
        .ok_or("the LUKS2 metadata does not fit the first megabyte")?;
    let end = json.iter().position(|&b| b == 0).unwrap_or(json.len());
    let meta: serde_json::Value =
        serde_json::from_slice(&json[..end]).map_err(|_| "the LUKS2 metadata is not JSON")?;
    let segment = meta
        .get("segments")
        .and_then(|s| s.get("0"))
        .ok_or("the LUKS2 metadata has no data segment")?;
    let number = |key: &str| {
        segment
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<u64>().ok())
    };
    let offset = number("offset").ok_or("the LUKS2 data segment has no offset")?;
    if offset < 2 * hdr || offset > c.total() {
        return Err("the LUKS2 data segment lies outside the file".into());
    }
    f.virtual_size = Some(match number("size") {
        Some(size) if offset.saturating_add(size) <= c.total() => size,
        Some(_) => return Err("the LUKS2 data segment runs past the end of the file".into()),
        None => c.total() - offset,
    });
    Ok(())
}
