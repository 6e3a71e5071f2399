//! Findings of single probes, and the combined report with its verdict.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::format::Format;

/// A reason an image is not safe to accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The check that failed, e.g. `backing_file`, `data_file`, `polyglot`, `malformed`.
    pub check: &'static str,
    /// A sentence for the user.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.check)
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The format the probe recognised.
    pub format: Format,
    /// The disk size a guest sees, as `qemu-img info` reports it, when known.
    pub virtual_size: Option<u64>,
    /// Safety problems.
    pub problems: Vec<Problem>,
    /// Facts worth showing: subformat, version, compression, encryption…
    pub details: BTreeMap<&'static str, String>,
}

impl Finding {
    pub(crate) fn new(format: Format) -> Self {
        Finding {
            format,
            virtual_size: None,
            problems: Vec::new(),
            details: BTreeMap::new(),
        }
    }

    pub(crate) fn problem(&mut self, check: &'static str, reason: impl Into<String>) {
        self.problems.push(Problem {
            check,
            reason: reason.into(),
        });
    }

    /// Records a malformed-header problem.
    pub(crate) fn malformed(&mut self, reason: impl Into<String>) {
        self.problem("malformed", reason);
    }

    pub(crate) fn detail(&mut self, key: &'static str, value: impl ToString) {
        self.details.insert(key, value.to_string());
    }

    fn is_fixed_vhd(&self) -> bool {
        self.format == Format::Vhd
            && self.details.get("subformat").map(String::as_str) == Some("fixed")
    }
}

/// The combined verdict on an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The detected format (`raw` when nothing else matched).
    pub format: Format,
    /// The virtual size, as `qemu-img info` reports it, when known.
    pub virtual_size: Option<u64>,
    /// The input's length in bytes.
    pub size: u64,
    /// Whether no safety problem was found.
    pub safe: bool,
    /// Every safety problem.
    pub problems: Vec<Problem>,
    /// Facts from the primary finding (and the partition table, if any).
    pub details: BTreeMap<&'static str, String>,
    /// Every format whose signature matched.
    pub detected: Vec<Format>,
}

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A sentence for the user, naming every reason.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Declared formats that carry no header to inspect: their content must look raw.
const OPAQUE_DECLARED: [&str; 4] = ["ami", "ari", "aki", "ploop"];
/// Container formats that wrap the disk (an archive, a compressed stream): their
/// content is not the declared disk format, but it must still be safe.
const WRAPPING_CONTAINERS: [&str; 4] = ["ova", "docker", "compressed", "ovf"];

impl Report {
    /// Combines what the probes found. Formats that a file can legitimately be at once
    /// are an ISO with a partition table (hybrid ISOs) and a fixed VHD or raw disk with
    /// one; any other combination is a polyglot and refused.
    pub(crate) fn from_findings(findings: Vec<Finding>, total: u64) -> Report {
        let detected: Vec<Format> = findings.iter().map(|f| f.format).collect();
        let (tables, containers): (Vec<Finding>, Vec<Finding>) = findings
            .into_iter()
            .partition(|f| f.format.is_partition_table());
        let table = tables.into_iter().next();
        let mut problems = Vec::new();
        let mut details = BTreeMap::new();
        let (format, virtual_size) = match containers.first() {
            None => (Format::Raw, Some(total)),
            Some(primary) => {
                problems.extend(primary.problems.iter().cloned());
                details.extend(primary.details.iter().map(|(k, v)| (*k, v.clone())));
                (primary.format, primary.virtual_size)
            }
        };
        let polyglot = containers.len() > 1
            || (table.is_some()
                && containers
                    .first()
                    .is_some_and(|c| c.format != Format::Iso && !c.is_fixed_vhd()));
        if polyglot {
            let names: Vec<&str> = detected.iter().map(|f| f.as_str()).collect();
            problems.push(Problem {
                check: "polyglot",
                reason: format!(
                    "the data matches more than one format ({})",
                    names.join(", ")
                ),
            });
        }
        if let Some(table) = table
            && format != Format::Iso
        {
            problems.extend(table.problems);
            details.insert("partition_table", table.format.as_str().to_string());
        }
        Report {
            format,
            virtual_size,
            size: total,
            safe: problems.is_empty(),
            problems,
            details,
            detected,
        }
    }

    /// Checks the report against what the caller declared. Returns the virtual size to
    /// record, or why the data must be refused.
    ///
    /// Unlike Glance, content in a rich format declared as `raw` is refused: a later
    /// reader that trusts the content over the label would follow its references.
    pub fn accept(
        &self,
        disk_format: Option<&str>,
        container_format: Option<&str>,
    ) -> Result<Option<u64>, Refusal> {
        if !self.safe {
            let reasons: Vec<String> = self.problems.iter().map(|p| p.reason.clone()).collect();
            return Err(Refusal {
                reason: format!("Image failed safety checks: {}", reasons.join("; ")),
            });
        }
        let Some(declared) = disk_format else {
            return Ok(self.virtual_size);
        };
        let wrapped = container_format.is_some_and(|c| WRAPPING_CONTAINERS.contains(&c));
        if self.format == Format::Raw && (wrapped || OPAQUE_DECLARED.contains(&declared)) {
            return Ok(if declared == "raw" {
                self.virtual_size
            } else {
                None
            });
        }
        if Format::parse(declared) == Some(self.format) {
            return Ok(self.virtual_size);
        }
        Err(Refusal {
            reason: format!(
                "Image disk_format {declared} does not match stream data {}",
                self.format
            ),
        })
    }
}
