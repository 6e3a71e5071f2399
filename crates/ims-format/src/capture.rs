//! The bytes a verdict is based on, and the two drivers that collect them: one over a
//! passing stream, one over a file. Both collect the same pieces, so they agree.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::probe;
use crate::report::Report;

/// Bytes kept from the start of the input. Every header and descriptor the probes read
/// lives here, except regions the head points further into the file.
pub const HEAD_LEN: usize = 1 << 20;
/// Bytes kept from the end of the input (a fixed VHD footer, a VMDK stream footer).
pub const TAIL_LEN: usize = 4096;
/// Most bytes kept from regions beyond the head, all probes together.
pub const REGION_BUDGET: u64 = 2 << 20;

/// A byte range of the input that a probe needs beyond the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Region {
    /// Start offset.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Region {
    fn end(self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// What was kept of an input: head, wanted regions, tail and the total length.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    head: Vec<u8>,
    regions: Vec<(u64, Vec<u8>)>,
    tail: Vec<u8>,
    total: u64,
}

impl Captured {
    /// The first `min(total, HEAD_LEN)` bytes.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The last `min(total, TAIL_LEN)` bytes.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// The input's length.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// `len` bytes at `offset`, if they were kept (in the head, a region or the tail).
    pub fn at(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len as u64)?;
        if end > self.total {
            return None;
        }
        if end <= self.head.len() as u64 {
            return self.head.get(offset as usize..end as usize);
        }
        for (start, buf) in &self.regions {
            if offset >= *start && end <= start + buf.len() as u64 {
                let from = (offset - start) as usize;
                return buf.get(from..from + len);
            }
        }
        let tail_start = self.total - self.tail.len() as u64;
        if offset >= tail_start {
            let from = (offset - tail_start) as usize;
            return self.tail.get(from..from + len);
        }
        None
    }

    /// How many bytes were kept: bounded by `HEAD_LEN + REGION_BUDGET + TAIL_LEN`
    /// whatever the input.
    pub fn kept_bytes(&self) -> usize {
        self.head.len() + self.tail.len() + self.regions.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    /// Runs every probe over what was kept.
    pub fn report(&self) -> Report {
        Report::from_findings(probe::inspect_all(self), self.total)
    }
}

/// The regions beyond the head that the probes want, merged, clipped and within budget.
fn wanted(head: &[u8]) -> Vec<Region> {
    let mut regions: Vec<Region> = probe::regions_all(head)
        .into_iter()
        .filter(|r| r.offset >= HEAD_LEN as u64 && r.len > 0)
        .map(|r| Region {
            offset: r.offset,
            len: r.len.min(HEAD_LEN as u64),
        })
        .collect();
    regions.sort();
    let mut merged: Vec<Region> = Vec::new();
    for r in regions {
        match merged.last_mut() {
            Some(last) if r.offset <= last.end() => {
                last.len = last.len.max(r.end() - last.offset);
            }
            _ => merged.push(r),
        }
    }
    let mut budget = REGION_BUDGET;
    merged
        .into_iter()
        .filter_map(|r| {
            let len = r.len.min(budget);
            budget -= len;
            (len > 0).then_some(Region { len, ..r })
        })
        .collect()
}

/// Collects the inspected pieces of a stream as it passes, in bounded memory.
#[derive(Debug, Default)]
pub struct StreamInspector {
    head: Vec<u8>,
    pos: u64,
    regions: Option<Vec<(Region, Vec<u8>)>>,
    tail: Vec<u8>,
}

impl StreamInspector {
    /// A fresh inspector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, data: &[u8]) {
        if self.head.len() < HEAD_LEN {
            let n = (HEAD_LEN - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
        }
        if self.regions.is_none() && self.head.len() == HEAD_LEN {
            self.regions = Some(
                wanted(&self.head)
                    .into_iter()
                    .map(|r| (r, Vec::new()))
                    .collect(),
            );
        }
        let start = self.pos;
        let end = start + data.len() as u64;
        for (region, buf) in self.regions.iter_mut().flatten() {
            let next = region.offset + buf.len() as u64;
            let (from, to) = (next.max(start), region.end().min(end));
            if from == next && from < to {
                buf.extend_from_slice(&data[(from - start) as usize..(to - start) as usize]);
            }
        }
        self.keep_tail(data);
        self.pos = end;
    }

    fn keep_tail(&mut self, data: &[u8]) {
        if data.len() >= TAIL_LEN {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - TAIL_LEN..]);
        } else {
            self.tail.extend_from_slice(data);
            let excess = self.tail.len().saturating_sub(TAIL_LEN);
            self.tail.drain(..excess);
        }
    }

    /// Bytes fed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// What was kept, once the stream has ended.
    pub fn captured(self) -> Captured {
        Captured {
            head: self.head,
            regions: self
                .regions
                .unwrap_or_default()
                .into_iter()
                .map(|(r, buf)| (r.offset, buf))
                .collect(),
            tail: self.tail,
            total: self.pos,
        }
    }

    /// The verdict, once the stream has ended.
    pub fn finish(self) -> Report {
        self.captured().report()
    }
}

/// Inspects a file by reading only the pieces a stream inspection would keep.
pub fn inspect_file(path: &Path) -> io::Result<Report> {
    Ok(capture_file(path)?.report())
}

/// Reads the inspected pieces of a file.
pub fn capture_file(path: &Path) -> io::Result<Captured> {
    let file = std::fs::File::open(path)?;
    let total = file.metadata()?.len();
    let read = |offset: u64, len: u64| -> io::Result<Vec<u8>> {
        let len = len.min(total.saturating_sub(offset));
        let mut buf = vec![0; len as usize];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    };
    let head = read(0, HEAD_LEN as u64)?;
    let regions = if head.len() == HEAD_LEN {
        wanted(&head)
            .into_iter()
            .map(|r| Ok((r.offset, read(r.offset, r.len)?)))
            .collect::<io::Result<_>>()?
    } else {
        Vec::new()
    };
    let tail_len = (TAIL_LEN as u64).min(total);
    let tail = read(total - tail_len, tail_len)?;
    Ok(Captured {
        head,
        regions,
        tail,
        total,
    })
}

/// Inspects bytes held in memory, as a stream (tests, fuzzing).
pub fn inspect_bytes(data: &[u8]) -> Report {
    let mut inspector = StreamInspector::new();
    inspector.feed(data);
    inspector.finish()
}
