//! One file of a disk chain, and how its guest ranges map to its own bytes.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::FlattenError;
use crate::bytes::{be32, be64};

const QCOW_MAGIC: &[u8] = b"QFI\xfb";
/// Offsets in L1 and L2 entries: bits 9 to 55.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2_COMPRESSED: u64 = 1 << 62;
/// qcow2 v3: the cluster reads as zeros, whatever its offset says.
const L2_ZERO: u64 = 1;
/// Incompatible features a reader of the active L1 table may ignore: the dirty bit
/// (refcounts may be stale, which reading never consults) and the compression type
/// (compressed clusters are refused one by one).
const INCOMPAT_HARMLESS: u64 = (1 << 0) | (1 << 3);
/// qemu's own bound on the L1 table.
const MAX_L1_BYTES: u64 = 32 << 20;

/// What a guest range of one layer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The layer's bytes at this file offset.
    Data(u64),
    /// Zeros, whatever lies below.
    Zero,
    /// Nothing here: the next layer down decides.
    Unallocated,
}

/// A qcow2 file's active mapping, read on demand one L2 table at a time.
#[derive(Debug)]
struct Qcow2Map {
    cluster_bits: u32,
    version: u32,
    l1: Vec<u64>,
    /// The last L2 table read (by its file offset): reads go forward, so one suffices.
    l2: Option<(u64, Vec<u64>)>,
}

/// One file of the chain: the disk itself or the backing file ims named for it.
#[derive(Debug)]
pub struct Layer {
    file: File,
    size: u64,
    map: Option<Qcow2Map>,
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    file.read_exact_at(buf, offset)
}

impl Layer {
    /// A raw file: its content is the guest's, byte for byte.
    pub fn raw(file: File) -> Result<Layer, FlattenError> {
        let size = file.metadata()?.len();
        Ok(Layer {
            file,
            size,
            map: None,
        })
    }

    /// A qcow2 file, read through its active L1 table. Any backing file its header
    /// names is ignored: the caller supplies the next layer. Features this reader does
    /// not handle (encryption, an external data file, extended L2 entries, a corrupt
    /// mark) are [`FlattenError::Unsupported`].
    pub fn qcow2(file: File) -> Result<Layer, FlattenError> {
        let mut head = [0u8; 104];
        read_at(&file, &mut head, 0).map_err(|_| malformed("the qcow2 header is truncated"))?;
        if &head[..4] != QCOW_MAGIC {
            return Err(malformed("not a qcow2 file"));
        }
        let field32 = |off| be32(&head, off).unwrap_or(0);
        let field64 = |off| be64(&head, off).unwrap_or(0);
        let version = field32(4);
        let cluster_bits = field32(20);
        if !(version == 2 || version == 3) || !(9..=21).contains(&cluster_bits) {
            return Err(unsupported(
                "a qcow2 version or cluster size this reader lacks",
            ));
        }
        if field32(32) != 0 {
            return Err(unsupported("an encrypted qcow2 file"));
        }
        if version == 3 && field64(72) & !INCOMPAT_HARMLESS != 0 {
            return Err(unsupported("qcow2 incompatible features"));
        }
        let size = field64(24);
        let l1_len = u64::from(field32(36));
        let l1_offset = field64(40);
        let per_l2 = 1u64 << (cluster_bits - 3);
        if l1_len * 8 > MAX_L1_BYTES || size.div_ceil(per_l2 << cluster_bits) > l1_len {
            return Err(malformed(
                "the qcow2 L1 table does not fit its virtual size",
            ));
        }
        let l1 = read_table(&file, l1_offset, l1_len as usize)?;
        Ok(Layer {
            file,
            size,
            map: Some(Qcow2Map {
                cluster_bits,
                version,
                l1,
                l2: None,
            }),
        })
    }

    /// The guest size of this layer: beyond it the layer reads as zeros.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads `buf.len()` bytes of the file at `offset`; past its end, zeros (as qemu
    /// reads a file that ends inside a cluster).
    pub(crate) fn read_data(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => {
                    buf[done..].fill(0);
                    return Ok(());
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Calls `each(start, end, kind)` for consecutive runs covering `[start, end)`,
    /// which lies within the layer's size. Runs of the same kind (and, for data,
    /// contiguous in the file) come merged.
    pub(crate) fn extents(
        &mut self,
        start: u64,
        end: u64,
        each: &mut dyn FnMut(u64, u64, Kind) -> Result<(), FlattenError>,
    ) -> Result<(), FlattenError> {
        let Some(map) = self.map.as_mut() else {
            return if start < end {
                each(start, end, Kind::Data(start))
            } else {
                Ok(())
            };
        };
        let cluster = 1u64 << map.cluster_bits;
        let mut run: Option<(u64, u64, Kind)> = None;
        let mut at = start;
        while at < end {
            let next = ((at >> map.cluster_bits) + 1) << map.cluster_bits;
            let piece_end = next.min(end);
            let kind = match map.cluster(&self.file, at >> map.cluster_bits)? {
                Kind::Data(off) => Kind::Data(off + (at & (cluster - 1))),
                other => other,
            };
            run = match run {
                Some((s, e, k)) if continues(k, kind, e - s) => Some((s, piece_end, k)),
                Some((s, e, k)) => {
                    each(s, e, k)?;
                    Some((at, piece_end, kind))
                }
                None => Some((at, piece_end, kind)),
            };
            at = piece_end;
        }
        match run {
            Some((s, e, k)) => each(s, e, k),
            None => Ok(()),
        }
    }
}

/// Whether a run of `run` with `len` bytes goes on with a piece of `next`.
fn continues(run: Kind, next: Kind, len: u64) -> bool {
    match (run, next) {
        (Kind::Data(a), Kind::Data(b)) => a + len == b,
        (a, b) => a == b,
    }
}

impl Qcow2Map {
    /// The kind of guest cluster `index`.
    fn cluster(&mut self, file: &File, index: u64) -> Result<Kind, FlattenError> {
        let per_l2 = 1u64 << (self.cluster_bits - 3);
        let l1_entry = self.l1.get((index / per_l2) as usize).copied().unwrap_or(0);
        let l2_offset = l1_entry & OFFSET_MASK;
        if l2_offset == 0 {
            return Ok(Kind::Unallocated);
        }
        if l2_offset & ((1 << self.cluster_bits) - 1) != 0 {
            return Err(malformed("an L2 table is not cluster-aligned"));
        }
        if self.l2.as_ref().is_none_or(|(at, _)| *at != l2_offset) {
            self.l2 = Some((l2_offset, read_table(file, l2_offset, per_l2 as usize)?));
        }
        let entry = self
            .l2
            .as_ref()
            .map_or(0, |(_, t)| t[(index % per_l2) as usize]);
        if entry & L2_COMPRESSED != 0 {
            return Err(unsupported("compressed clusters"));
        }
        if self.version >= 3 && entry & L2_ZERO != 0 {
            return Ok(Kind::Zero);
        }
        match entry & OFFSET_MASK {
            0 => Ok(Kind::Unallocated),
            off if off & ((1 << self.cluster_bits) - 1) != 0 => {
                Err(malformed("a data cluster is not cluster-aligned"))
            }
            off => Ok(Kind::Data(off)),
        }
    }
}

/// Reads a table of `len` big-endian 64-bit entries at `offset`.
fn read_table(file: &File, offset: u64, len: usize) -> Result<Vec<u64>, FlattenError> {
    let mut raw = vec![0u8; len * 8];
    read_at(file, &mut raw, offset).map_err(|_| malformed("a qcow2 table lies past the end"))?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()))
        .collect())
}

fn malformed(what: &str) -> FlattenError {
    FlattenError::Malformed(what.into())
}

fn unsupported(what: &str) -> FlattenError {
    FlattenError::Unsupported(what.into())
}
