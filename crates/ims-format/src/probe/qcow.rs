//! QEMU's formats: qcow2 (v2 and v3), and qcow v1 and QED, which are recognised and refused.

use crate::bytes::{be32, be64, has, le64};
use crate::capture::Captured;
use crate::format::Format;
use crate::probe::Probe;
use crate::report::Finding;

const QCOW_MAGIC: &[u8] = b"QFI\xfb";
const QED_MAGIC: &[u8] = b"QED\0";

/// Incompatible feature bits qemu knows: dirty, corrupt, external data file,
/// compression type, extended L2 entries.
const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 = 0x1f;

/// qemu's limits: L1 table ≤ 32 MiB, refcount table ≤ 8 MiB, 65536 snapshots.
const MAX_L1_BYTES: u64 = 32 << 20;
const MAX_REFTABLE_BYTES: u64 = 8 << 20;
const MAX_SNAPSHOTS: u32 = 65536;

/// Header extension types.
const EXT_END: u32 = 0;
const EXT_DATA_FILE: u32 = 0x4441_5441;
const EXT_CRYPTO: u32 = 0x0537_be77;

/// qcow v1 and qcow2.
pub(crate) struct Qcow;

/// QED.
pub(crate) struct Qed;

impl Probe for Qed {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        if !has(head, 0, QED_MAGIC) {
            return None;
        }
        let mut f = Finding::new(Format::Qed);
        f.virtual_size = le64(head, 48);
        f.problem(
            "unsupported_format",
            "QED images are not accepted; convert to qcow2 or raw",
        );
        Some(f)
    }
}

impl Probe for Qcow {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        if !has(head, 0, QCOW_MAGIC) {
            return None;
        }
        let version = be32(head, 4).unwrap_or(0);
        if version == 1 {
            let mut f = Finding::new(Format::Qcow);
            f.virtual_size = be64(head, 24);
            f.problem(
                "unsupported_format",
                "qcow (version 1) images are not accepted; convert to qcow2",
            );
            return Some(f);
        }
        let mut f = Finding::new(Format::Qcow2);
        if let Err(reason) = qcow2(c, version, &mut f) {
            f.malformed(reason);
        }
        Some(f)
    }
}

/// The qcow2 header fields the checks use.
struct Header {
    cluster_bits: u32,
    size: u64,
    crypt_method: u32,
    l1_size: u32,
    l1_offset: u64,
    reftable_offset: u64,
    reftable_clusters: u32,
    snapshots: u32,
    snapshots_offset: u64,
    incompatible: u64,
    header_length: u64,
    compression: u8,
    extended_l2: bool,
}

fn header(head: &[u8], version: u32) -> Result<Header, String> {
    let short = || "the qcow2 header is truncated".to_string();
    let field32 = |off| be32(head, off).ok_or_else(short);
    let field64 = |off| be64(head, off).ok_or_else(short);
    let (incompatible, header_length, compression) = if version >= 3 {
        let len = u64::from(field32(100)?);
        let incompat = field64(72)?;
        let compression = if len > 104 {
            *head.get(104).ok_or_else(short)?
        } else {
            0
        };
        if field32(96)? > 6 {
            return Err("the qcow2 refcount order is beyond 6".into());
        }
        (incompat, len, compression)
    } else {
        (0, 72, 0)
    };
    Ok(Header {
        cluster_bits: field32(20)?,
        size: field64(24)?,
        crypt_method: field32(32)?,
        l1_size: field32(36)?,
        l1_offset: field64(40)?,
        reftable_offset: field64(48)?,
        reftable_clusters: field32(56)?,
        snapshots: field32(60)?,
        snapshots_offset: field64(64)?,
        incompatible,
        header_length,
        compression,
        extended_l2: incompatible & INCOMPAT_EXTL2 != 0,
    })
}

fn qcow2(c: &Captured, version: u32, f: &mut Finding) -> Result<(), String> {
    let head = c.head();
    if version != 2 && version != 3 {
        return Err(format!("qcow2 version {version} is not 2 or 3"));
    }
    f.detail("compat", if version == 2 { "0.10" } else { "1.1" });
    let h = header(head, version)?;
    f.virtual_size = Some(h.size);
    if !(9..=21).contains(&h.cluster_bits) {
        return Err(format!(
            "qcow2 cluster bits {} are outside 9–21",
            h.cluster_bits
        ));
    }
    let cluster = 1u64 << h.cluster_bits;
    if version == 3 && (h.header_length < 104 || h.header_length > cluster) {
        return Err(format!(
            "qcow2 header length {} is impossible",
            h.header_length
        ));
    }
    let backing_offset = be64(head, 8).unwrap_or(0);
    if backing_offset != 0 {
        f.problem("backing_file", "the qcow2 image names a backing file");
    }
    features(&h, f);
    tables(&h, cluster, c.total(), f)?;
    extensions(c, &h, cluster, backing_offset, f)
}

fn features(h: &Header, f: &mut Finding) {
    let unknown = h.incompatible & !INCOMPAT_KNOWN;
    if unknown != 0 {
        f.problem(
            "unknown_features",
            format!("the qcow2 image sets unknown incompatible features {unknown:#x}"),
        );
    }
    if h.incompatible & INCOMPAT_DATA_FILE != 0 {
        f.problem(
            "data_file",
            "the qcow2 image keeps its data in an external file",
        );
    }
    if h.incompatible & INCOMPAT_CORRUPT != 0 {
        f.problem("corrupt", "the qcow2 image is marked corrupt");
    }
    if h.incompatible & INCOMPAT_DIRTY != 0 {
        f.detail("dirty", true);
    }
    let compression = if h.incompatible & INCOMPAT_COMPRESSION != 0 {
        h.compression
    } else {
        0
    };
    match compression {
        0 => f.detail("compression", "zlib"),
        1 => f.detail("compression", "zstd"),
        n => f.problem(
            "unknown_features",
            format!("the qcow2 compression type {n} is unknown"),
        ),
    }
    match h.crypt_method {
        0 => {}
        2 => f.detail("encryption", "luks"),
        1 => f.problem("encryption", "legacy qcow2 AES encryption is not accepted"),
        n => f.malformed(format!("the qcow2 encryption method {n} is unknown")),
    }
}

/// Checks that the L1 table, refcount table and snapshot table are sane, aligned, inside
/// the file and not overlapping the header or each other.
fn tables(h: &Header, cluster: u64, total: u64, f: &mut Finding) -> Result<(), String> {
    let l2_entries = cluster / if h.extended_l2 { 16 } else { 8 };
    let per_l1 = cluster.saturating_mul(l2_entries);
    let needed_l1 = h.size.div_ceil(per_l1);
    let l1_bytes = u64::from(h.l1_size) * 8;
    if l1_bytes > MAX_L1_BYTES {
        return Err(format!(
            "the qcow2 L1 table of {} entries is absurdly large",
            h.l1_size
        ));
    }
    if needed_l1 > u64::from(h.l1_size) {
        return Err(format!(
            "the qcow2 L1 table ({} entries) cannot map the claimed virtual size of {} bytes",
            h.l1_size, h.size
        ));
    }
    let reftable_bytes = u64::from(h.reftable_clusters) << (h.cluster_bits.min(21));
    if h.reftable_clusters == 0 || reftable_bytes > MAX_REFTABLE_BYTES {
        return Err(format!(
            "the qcow2 refcount table of {} clusters is impossible",
            h.reftable_clusters
        ));
    }
    if h.snapshots > MAX_SNAPSHOTS {
        return Err(format!("the qcow2 image claims {} snapshots", h.snapshots));
    }
    let mut spans = vec![
        ("header", 0, cluster),
        ("refcount table", h.reftable_offset, reftable_bytes),
    ];
    if h.l1_size > 0 {
        spans.push(("L1 table", h.l1_offset, l1_bytes));
    }
    if h.snapshots > 0 {
        spans.push(("snapshot table", h.snapshots_offset, 1));
    }
    for (name, offset, len) in &spans {
        if offset % cluster != 0 {
            return Err(format!("the qcow2 {name} is not cluster-aligned"));
        }
        if offset.saturating_add(*len) > total.max(cluster) {
            return Err(format!("the qcow2 {name} lies beyond the end of the file"));
        }
    }
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            if a.1 < b.1.saturating_add(b.2) && b.1 < a.1.saturating_add(a.2) {
                return Err(format!("the qcow2 {} overlaps the {}", a.0, b.0));
            }
        }
    }
    if f.virtual_size.is_some_and(|s| s > (1 << 61)) {
        return Err("the qcow2 virtual size is beyond 2 EiB".into());
    }
    Ok(())
}

/// Walks the header extensions in the first cluster.
fn extensions(
    c: &Captured,
    h: &Header,
    cluster: u64,
    backing_offset: u64,
    f: &mut Finding,
) -> Result<(), String> {
    let end = if backing_offset != 0 {
        backing_offset.min(cluster)
    } else {
        cluster
    };
    let mut off = h.header_length;
    for _ in 0..1024 {
        if off + 8 > end {
            return Ok(());
        }
        let bytes = c
            .at(off, 8)
            .ok_or("the qcow2 header extensions are truncated")?;
        let kind = be32(bytes, 0).unwrap_or(0);
        let len = u64::from(be32(bytes, 4).unwrap_or(0));
        match kind {
            EXT_END => return Ok(()),
            EXT_DATA_FILE => f.problem("data_file", "the qcow2 image names an external data file"),
            EXT_CRYPTO if h.crypt_method != 2 => {
                return Err("the qcow2 image has an encryption header but no encryption".into());
            }
            _ => {}
        }
        off = off + 8 + len.div_ceil(8) * 8;
        if off > end {
            return Err("a qcow2 header extension runs past the first cluster".into());
        }
    }
    Err("the qcow2 image has too many header extensions".into())
}
