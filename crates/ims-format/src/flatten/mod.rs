//! A disk and its backing chain, written out as one new self-contained qcow2, front to
//! back, as a stream.
//!
//! Why by hand: an image made from a volume (a qcow2 overlay on an image's blob) used to
//! be flattened by `qemu-img convert` into a scratch file that was then streamed into the
//! store, so every byte was written twice. Reading the chain's own L1/L2 tables lets the
//! output's layout be decided before its first byte (first pass: which guest clusters
//! hold data, from the tables alone), and the file then be produced in order (second
//! pass: metadata, then each data cluster read from the topmost layer that has it).
//!
//! Only what qemu writes for a running disk is handled: plain, zero and unallocated
//! clusters in qcow2 v2/v3 and raw files. Anything else (compressed clusters, extended
//! L2 entries, encryption, an external data file) is [`FlattenError::Unsupported`], and
//! the caller falls back to `qemu-img`. Backing files named in a header are never
//! followed: the caller names every layer.

mod layer;
mod layout;

pub use layer::Layer;

use layer::Kind;
use layout::{Allocation, CLUSTER, Layout};

/// Why a chain could not be flattened here.
#[derive(Debug)]
pub enum FlattenError {
    /// A feature this reader leaves to qemu-img.
    Unsupported(String),
    /// The file contradicts itself.
    Malformed(String),
    /// Reading a layer failed.
    Io(std::io::Error),
}

impl std::fmt::Display for FlattenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlattenError::Unsupported(what) => write!(f, "not flattened here: {what}"),
            FlattenError::Malformed(what) => write!(f, "malformed qcow2: {what}"),
            FlattenError::Io(e) => write!(f, "reading a disk layer: {e}"),
        }
    }
}

impl std::error::Error for FlattenError {}

impl From<std::io::Error> for FlattenError {
    fn from(e: std::io::Error) -> Self {
        FlattenError::Io(e)
    }
}

/// The largest disk flattened here (its allocation map is one bit per 64 KiB: 32 MiB).
const MAX_VIRTUAL_SIZE: u64 = 16 << 40;
/// Guest bytes resolved at once in the first pass.
const SCAN_WINDOW: u64 = 256 << 20;
/// Data clusters per emitted chunk (1 MiB).
const CHUNK_CLUSTERS: u64 = 16;

/// A guest range and where its bytes come from: a layer and an offset in its file, or
/// nowhere (zeros).
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: u64,
    end: u64,
    source: Option<(usize, u64)>,
}

/// A chain, its allocation known, ready to be written out.
#[derive(Debug)]
pub struct Flattener {
    layers: Vec<Layer>,
    alloc: Allocation,
    layout: Layout,
}

impl Flattener {
    /// Maps the chain `layers` (the disk first, then its backing, and so on): reads every
    /// L2 table once and decides the output's layout. The guest size is the disk's.
    pub fn new(mut layers: Vec<Layer>) -> Result<Flattener, FlattenError> {
        let size = layers.first().map_or(0, Layer::size);
        if size > MAX_VIRTUAL_SIZE {
            return Err(FlattenError::Unsupported(format!("a disk of {size} bytes")));
        }
        let mut alloc = Allocation::new(size);
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < size {
            let end = (at + SCAN_WINDOW).min(size);
            pieces.clear();
            resolve(&mut layers, 0, at, end, &mut pieces)?;
            for p in pieces.iter().filter(|p| p.source.is_some()) {
                alloc.mark(p.start, p.end);
            }
            at = end;
        }
        let layout = Layout::new(size, &alloc);
        Ok(Flattener {
            layers,
            alloc,
            layout,
        })
    }

    /// Bytes of the qcow2 file [`write`](Self::write) produces.
    pub fn len(&self) -> u64 {
        self.layout.len()
    }

    /// Whether the output is empty (never: it always has a header).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes of guest data the output holds (its data clusters).
    pub fn data_len(&self) -> u64 {
        self.layout.data_clusters() * CLUSTER
    }

    /// Produces the file in order, in chunks of at most 1 MiB, each handed to `emit`;
    /// stops early (with `Ok`) when `emit` returns `false`.
    pub fn write(mut self, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> Result<(), FlattenError> {
        if !self.layout.metadata(&self.alloc, emit) {
            return Ok(());
        }
        let clusters = self.alloc.clusters();
        let mut c = 0;
        let mut pieces = Vec::new();
        while c < clusters {
            if !self.alloc.has(c) {
                c += 1;
                continue;
            }
            let first = c;
            while c < clusters && c - first < CHUNK_CLUSTERS && self.alloc.has(c) {
                c += 1;
            }
            let chunk = self.read_guest(first * CLUSTER, c * CLUSTER, &mut pieces)?;
            if !emit(chunk) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The guest bytes `[start, end)`, zeros past the disk's end.
    fn read_guest(
        &mut self,
        start: u64,
        end: u64,
        pieces: &mut Vec<Piece>,
    ) -> Result<Vec<u8>, FlattenError> {
        let mut buf = vec![0u8; (end - start) as usize];
        pieces.clear();
        resolve(
            &mut self.layers,
            0,
            start,
            end.min(self.layout.virtual_size),
            pieces,
        )?;
        for p in pieces.iter() {
            if let Some((layer, offset)) = p.source {
                let slot = &mut buf[(p.start - start) as usize..(p.end - start) as usize];
                self.layers[layer].read_data(slot, offset)?;
            }
        }
        Ok(buf)
    }
}

/// Appends to `out` the pieces of `[start, end)` as seen through `layers` (the chain from
/// depth `depth` down): each range from the topmost layer that holds it, zeros where none
/// does or past a layer's end.
fn resolve(
    layers: &mut [Layer],
    depth: usize,
    start: u64,
    end: u64,
    out: &mut Vec<Piece>,
) -> Result<(), FlattenError> {
    let Some((layer, below)) = layers.split_first_mut() else {
        push(out, start, end, None);
        return Ok(());
    };
    let visible = end.min(layer.size()).max(start);
    layer.extents(start, visible, &mut |s, e, kind| match kind {
        Kind::Data(offset) => {
            push(out, s, e, Some((depth, offset)));
            Ok(())
        }
        Kind::Zero => {
            push(out, s, e, None);
            Ok(())
        }
        Kind::Unallocated => resolve(below, depth + 1, s, e, out),
    })?;
    push(out, visible, end, None);
    Ok(())
}

/// Appends a piece, merged with the last one when it continues it.
fn push(out: &mut Vec<Piece>, start: u64, end: u64, source: Option<(usize, u64)>) {
    if start >= end {
        return;
    }
    if let Some(last) = out.last_mut() {
        let continues = last.end == start
            && match (last.source, source) {
                (None, None) => true,
                (Some((a, off_a)), Some((b, off_b))) => {
                    a == b && off_a + (last.end - last.start) == off_b
                }
                _ => false,
            };
        if continues {
            last.end = end;
            return;
        }
    }
    out.push(Piece { start, end, source });
}
