//! Fuzzes the vmdk inspector: arbitrary bytes with its signature planted.
#![no_main]

use ims_format::Format;
use ims_format::fuzzing::{check_invariants, planted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = planted(Format::Vmdk, data);
    check_invariants(&input, 1 + data.first().copied().unwrap_or(0) as usize * 97);
});
