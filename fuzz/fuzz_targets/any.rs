//! Fuzzes every inspector at once: arbitrary bytes, no signature planted.
#![no_main]

use ims_format::fuzzing::check_invariants;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_invariants(data, 1 + data.last().copied().unwrap_or(0) as usize * 131);
});
