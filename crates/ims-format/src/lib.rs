//! Disk image format engine: what is this file, what is its virtual size, is it safe?
//!
//! Inspection reads only headers and metadata. A [`StreamInspector`] is fed the bytes of
//! an upload as they pass and keeps a bounded amount of them: the first [`HEAD_LEN`]
//! bytes, the last [`TAIL_LEN`] bytes, and a few regions further in that the head points
//! at (a VHDX metadata region, say). [`inspect_file`] reads exactly those same pieces from
//! a stored file, so both give the same [`Report`] for the same bytes.
//!
//! Every probe in [`probe`] looks at those captured pieces and either does not recognise
//! the format or returns a [`Finding`]: the virtual size and any safety [`Problem`]s.
//! [`Report`] combines the findings (polyglots are refused) and checks the result
//! against the `disk_format` a caller declared.

mod bytes;
mod capture;
pub mod flatten;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod probe;
mod report;

pub use capture::{
    Captured, HEAD_LEN, REGION_BUDGET, Region, StreamInspector, TAIL_LEN, capture_file,
    inspect_bytes, inspect_file,
};
pub use format::Format;
pub use report::{Finding, Problem, Refusal, Report};
