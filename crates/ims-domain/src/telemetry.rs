//! What the domain reports to operators: bytes moved by each data path, pipeline passes,
//! and the job queue's claims and outcomes. Recorded through the `metrics` facade (the
//! binary installs the Prometheus recorder behind `/metrics`; without one, every call
//! is a no-op), so the domain names what it measures and knows nothing of the exporter.
//! Every metric name is here, once.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use time::OffsetDateTime;

use crate::job::Job;
use crate::ports::ByteStream;

/// Bytes moved, by path: `ims_data_bytes_total{path}`.
pub const DATA_BYTES: &str = "ims_data_bytes_total";
/// Bytes through the pipeline (every pass, whatever its path): `ims_pipeline_bytes_total`.
pub const PIPELINE_BYTES: &str = "ims_pipeline_bytes_total";
/// How long each pass took: `ims_pipeline_pass_seconds` (a histogram, so its `_sum` is the
/// time spent, and `rate(bytes_total) / rate(pass_seconds_sum)` the pipeline's throughput).
pub const PIPELINE_PASS_SECONDS: &str = "ims_pipeline_pass_seconds";
/// One pass's throughput, in bytes per second: `ims_pipeline_pass_bytes_per_second`.
pub const PIPELINE_PASS_RATE: &str = "ims_pipeline_pass_bytes_per_second";
/// Jobs claimed by this node: `ims_job_claims_total{kind}`.
pub const JOB_CLAIMS: &str = "ims_job_claims_total";
/// How long a job waited from its creation to its first claim:
/// `ims_job_claim_wait_seconds{kind}`.
pub const JOB_CLAIM_WAIT: &str = "ims_job_claim_wait_seconds";
/// Claims of a job whose node's lease had lapsed: `ims_job_lease_takeovers_total{kind}`.
pub const JOB_TAKEOVERS: &str = "ims_job_lease_takeovers_total";
/// Jobs this node finished, by outcome: `ims_jobs_finished_total{kind,status}`
/// (`SUCCESS`, `FAIL`, or `INIT` for one put back to wait for a retry).
pub const JOBS_FINISHED: &str = "ims_jobs_finished_total";

crate::string_enum! {
    /// Which way data moves, the `path` label of [`DATA_BYTES`].
    DataPath {
        /// A client's upload (`PUT …/file`, `…/stage`).
        Upload = "upload",
        /// A client's download (`GET …/file`).
        Download = "download",
        /// An import job (web-download, glance-direct, glance-download, a bucket object),
        /// or a copy of an image's data into a new image.
        Import = "import",
        /// An export into a bucket.
        Export = "export",
        /// A copy of an image's data into another store (Glance's copy-image).
        Copy = "copy",
    }
}

/// `stream`, counting its bytes under `path` as they pass.
pub fn count_bytes(stream: ByteStream, path: DataPath) -> ByteStream {
    let counter = metrics::counter!(DATA_BYTES, "path" => path.as_str());
    Box::pin(Counted { stream, counter })
}

struct Counted {
    stream: ByteStream,
    counter: metrics::Counter,
}

impl Stream for Counted {
    type Item = <ByteStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.stream.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            self.counter.increment(chunk.len() as u64);
        }
        next
    }
}

/// Records one pipeline pass of `bytes` that took `elapsed`.
pub fn pipeline_pass(bytes: u64, elapsed: Duration) {
    metrics::counter!(PIPELINE_BYTES).increment(bytes);
    let seconds = elapsed.as_secs_f64();
    metrics::histogram!(PIPELINE_PASS_SECONDS).record(seconds);
    if bytes > 0 && seconds > 0.0 {
        metrics::histogram!(PIPELINE_PASS_RATE).record(bytes as f64 / seconds);
    }
}

/// Records this node's claim of `job` at `now`.
pub fn job_claimed(job: &Job, now: OffsetDateTime) {
    let kind = job.kind.as_str();
    metrics::counter!(JOB_CLAIMS, "kind" => kind).increment(1);
    if job.attempts == 1 {
        let waited = (now - job.created_at).as_seconds_f64().max(0.0);
        metrics::histogram!(JOB_CLAIM_WAIT, "kind" => kind).record(waited);
    }
    if job.taken_from.is_some() {
        metrics::counter!(JOB_TAKEOVERS, "kind" => kind).increment(1);
    }
}

/// Records the outcome this node wrote for `job`.
pub fn job_finished(job: &Job) {
    metrics::counter!(JOBS_FINISHED, "kind" => job.kind.as_str(), "status" => job.status.as_str())
        .increment(1);
}
