//! One probe per format family. A probe recognises its signature and reports the
//! virtual size and safety problems; it never panics and never allocates beyond the
//! captured bytes it is given.

mod iso;
mod luks;
mod partition;
mod qcow;
mod vdi;
mod vhd;
mod vhdx;
mod vmdk;
mod zvhd;

use crate::capture::{Captured, Region};
use crate::report::Finding;

/// A format family's inspector.
pub(crate) trait Probe: Sync {
    /// Regions beyond the head this probe needs, judged from the head alone.
    fn regions(&self, _head: &[u8]) -> Vec<Region> {
        Vec::new()
    }

    /// What this probe makes of the input, or `None` if its signature is absent.
    fn inspect(&self, c: &Captured) -> Option<Finding>;
}

const PROBES: [&dyn Probe; 11] = [
    &qcow::Qcow,
    &qcow::Qed,
    &vhd::Vhd,
    &vhdx::Vhdx,
    &vmdk::Vmdk,
    &vdi::Vdi,
    &iso::Iso,
    &luks::Luks,
    &zvhd::Zvhd,
    &partition::Gpt,
    &partition::Mbr,
];

/// Every finding for the input.
pub(crate) fn inspect_all(c: &Captured) -> Vec<Finding> {
    let mut findings: Vec<Finding> = PROBES.iter().filter_map(|p| p.inspect(c)).collect();
    // A GPT disk always carries a protective MBR: report the GPT only.
    if findings.iter().any(|f| f.format == crate::Format::Gpt) {
        findings.retain(|f| f.format != crate::Format::Mbr);
    }
    findings
}

/// Every region any probe wants beyond the head.
pub(crate) fn regions_all(head: &[u8]) -> Vec<Region> {
    PROBES.iter().flat_map(|p| p.regions(head)).collect()
}

/// `true` when `n` is a power of two within `[lo, hi]`.
pub(crate) fn pow2_in(n: u64, lo: u64, hi: u64) -> bool {
    n.is_power_of_two() && n >= lo && n <= hi
}
