//! Where everything goes in the qcow2 file a flattening writes, decided before its first
//! byte: header, refcount table, refcount blocks, L1 table, L2 tables, then the data
//! clusters in guest order. Knowing the allocated clusters up front is what lets the
//! file be written front to back, as a stream.

/// The output's cluster size (qemu's default): 64 KiB.
pub(crate) const CLUSTER_BITS: u32 = 16;
pub(crate) const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// L2 entries per table, and so guest clusters per L1 entry.
const PER_L2: u64 = CLUSTER / 8;
/// 16-bit refcounts (refcount order 4): entries per refcount block.
const PER_REFBLOCK: u64 = CLUSTER / 2;
/// The entry points at a cluster whose refcount is exactly one.
const COPIED: u64 = 1 << 63;

/// Which guest clusters hold data: one bit each.
#[derive(Debug, Clone)]
pub(crate) struct Allocation {
    bits: Vec<u64>,
    clusters: u64,
}

impl Allocation {
    pub(crate) fn new(virtual_size: u64) -> Allocation {
        let clusters = virtual_size.div_ceil(CLUSTER);
        Allocation {
            bits: vec![0; clusters.div_ceil(64) as usize],
            clusters,
        }
    }

    /// Marks every cluster that overlaps `[start, end)`.
    pub(crate) fn mark(&mut self, start: u64, end: u64) {
        for c in start / CLUSTER..end.div_ceil(CLUSTER).min(self.clusters) {
            self.bits[(c / 64) as usize] |= 1 << (c % 64);
        }
    }

    pub(crate) fn has(&self, cluster: u64) -> bool {
        cluster < self.clusters && self.bits[(cluster / 64) as usize] & (1 << (cluster % 64)) != 0
    }

    fn count(&self, from: u64, to: u64) -> u64 {
        (from..to.min(self.clusters))
            .filter(|c| self.has(*c))
            .count() as u64
    }

    pub(crate) fn clusters(&self) -> u64 {
        self.clusters
    }
}

/// The output file's shape.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) virtual_size: u64,
    l1_entries: u64,
    l1_clusters: u64,
    reftable_clusters: u64,
    refblocks: u64,
    /// Which L1 entries get an L2 table (those with any data).
    l2_present: Vec<bool>,
    l2_tables: u64,
    data_clusters: u64,
    /// Clusters in the whole file.
    pub(crate) total: u64,
}

impl Layout {
    pub(crate) fn new(virtual_size: u64, alloc: &Allocation) -> Layout {
        let l1_entries = virtual_size.div_ceil(CLUSTER * PER_L2);
        let l2_present: Vec<bool> = (0..l1_entries)
            .map(|i| alloc.count(i * PER_L2, (i + 1) * PER_L2) > 0)
            .collect();
        let l2_tables = l2_present.iter().filter(|p| **p).count() as u64;
        let data_clusters = alloc.count(0, alloc.clusters());
        let l1_clusters = (l1_entries * 8).div_ceil(CLUSTER);
        let fixed = 1 + l1_clusters + l2_tables + data_clusters;
        // Refcount blocks count themselves and the table: grow both until they fit.
        let (mut refblocks, mut reftable_clusters) = (0, 0);
        loop {
            let total = fixed + refblocks + reftable_clusters;
            let blocks = total.div_ceil(PER_REFBLOCK);
            let table = (blocks * 8).div_ceil(CLUSTER).max(1);
            if (blocks, table) == (refblocks, reftable_clusters) {
                break;
            }
            (refblocks, reftable_clusters) = (blocks, table);
        }
        Layout {
            virtual_size,
            l1_entries,
            l1_clusters,
            reftable_clusters,
            refblocks,
            l2_present,
            l2_tables,
            data_clusters,
            total: fixed + refblocks + reftable_clusters,
        }
    }

    fn reftable_offset(&self) -> u64 {
        CLUSTER
    }

    fn refblocks_offset(&self) -> u64 {
        self.reftable_offset() + self.reftable_clusters * CLUSTER
    }

    fn l1_offset(&self) -> u64 {
        self.refblocks_offset() + self.refblocks * CLUSTER
    }

    fn l2_offset(&self) -> u64 {
        self.l1_offset() + self.l1_clusters * CLUSTER
    }

    fn data_offset(&self) -> u64 {
        self.l2_offset() + self.l2_tables * CLUSTER
    }

    /// Bytes of the whole file.
    pub(crate) fn len(&self) -> u64 {
        self.total * CLUSTER
    }

    /// Data clusters in the file.
    pub(crate) fn data_clusters(&self) -> u64 {
        self.data_clusters
    }

    /// Every metadata cluster in file order, handed to `emit` one at a time (so memory
    /// stays one cluster however large the disk).
    pub(crate) fn metadata(
        &self,
        alloc: &Allocation,
        emit: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> bool {
        emit(self.header())
            && self.entries(
                self.reftable_clusters,
                8,
                &mut |i| (i < self.refblocks).then(|| self.refblocks_offset() + i * CLUSTER),
                emit,
            )
            && self.entries(
                self.refblocks,
                2,
                &mut |i| (i < self.total).then_some(1),
                emit,
            )
            && self.l1(emit)
            && self.l2(alloc, emit)
    }

    /// Clusters of big-endian entries of `width` bytes; `value(i)` gives entry `i`.
    fn entries(
        &self,
        clusters: u64,
        width: usize,
        value: &mut dyn FnMut(u64) -> Option<u64>,
        emit: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> bool {
        let per = CLUSTER / width as u64;
        (0..clusters).all(|c| {
            let mut out = vec![0u8; CLUSTER as usize];
            for (k, slot) in out.chunks_exact_mut(width).enumerate() {
                if let Some(v) = value(c * per + k as u64) {
                    slot.copy_from_slice(&v.to_be_bytes()[8 - width..]);
                }
            }
            emit(out)
        })
    }

    fn l1(&self, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> bool {
        let mut next_l2 = self.l2_offset();
        self.entries(
            self.l1_clusters,
            8,
            &mut |i| {
                let present = self.l2_present.get(i as usize).copied().unwrap_or(false);
                present.then(|| {
                    next_l2 += CLUSTER;
                    (next_l2 - CLUSTER) | COPIED
                })
            },
            emit,
        )
    }

    fn l2(&self, alloc: &Allocation, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> bool {
        let mut next_data = self.data_offset();
        (0..self.l1_entries)
            .filter(|i| self.l2_present[*i as usize])
            .all(|i| {
                self.entries(
                    1,
                    8,
                    &mut |k| {
                        alloc.has(i * PER_L2 + k).then(|| {
                            next_data += CLUSTER;
                            (next_data - CLUSTER) | COPIED
                        })
                    },
                    emit,
                )
            })
    }

    /// The version 3 header: no backing file, no extensions, no features.
    fn header(&self) -> Vec<u8> {
        let mut h = vec![0u8; CLUSTER as usize];
        let mut put = |off: usize, bytes: &[u8]| h[off..off + bytes.len()].copy_from_slice(bytes);
        put(0, b"QFI\xfb");
        put(4, &3u32.to_be_bytes());
        put(20, &CLUSTER_BITS.to_be_bytes());
        put(24, &self.virtual_size.to_be_bytes());
        put(36, &(self.l1_entries as u32).to_be_bytes());
        let l1_offset = if self.l1_clusters > 0 {
            self.l1_offset()
        } else {
            0
        };
        put(40, &l1_offset.to_be_bytes());
        put(48, &self.reftable_offset().to_be_bytes());
        put(56, &(self.reftable_clusters as u32).to_be_bytes());
        put(96, &4u32.to_be_bytes());
        put(100, &104u32.to_be_bytes());
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcounts_cover_every_cluster_including_their_own() {
        for (size, marked) in [
            (0u64, 0u64),
            (1 << 20, 1 << 20),
            (3 << 30, 3 << 30),
            (5 << 30, 1 << 30),
        ] {
            let mut alloc = Allocation::new(size);
            alloc.mark(0, marked);
            let layout = Layout::new(size, &alloc);
            assert!(layout.refblocks * PER_REFBLOCK >= layout.total, "{size}");
            assert!(layout.reftable_clusters * CLUSTER / 8 >= layout.refblocks);
            assert_eq!(layout.data_clusters, marked.div_ceil(CLUSTER));
        }
    }

    #[test]
    fn a_partial_last_cluster_is_one_whole_cluster() {
        let mut alloc = Allocation::new(CLUSTER + 1);
        alloc.mark(CLUSTER, CLUSTER + 1);
        assert!(!alloc.has(0) && alloc.has(1) && !alloc.has(2));
        assert_eq!(Layout::new(CLUSTER + 1, &alloc).data_clusters, 1);
    }
}
