//! Huawei ZVHD and ZVHD2: recognised by the stream cookie at offset 0. Their contents
//! are not parsed, so no virtual size is reported.

use crate::bytes::has;
use crate::capture::Captured;
use crate::format::Format;
use crate::probe::Probe;
use crate::report::Finding;

/// ZVHD and ZVHD2.
pub(crate) struct Zvhd;

impl Probe for Zvhd {
    fn inspect(&self, c: &Captured) -> Option<Finding> {
        let head = c.head();
        let format = if has(head, 0, b"z2strm\0\0") {
            Format::Zvhd2
        } else if has(head, 0, b"stream\0\0") {
            Format::Zvhd
        } else {
            return None;
        };
        Some(Finding::new(format))
    }
}
