//! The one way ims runs `qemu-img`.
//!
//! A disk image is hostile until proven otherwise, and `qemu-img` is a large C program
//! that follows whatever references an image makes. So every conversion:
//! - inspects its input with [`ims_format`] first and refuses unsafe data or data that
//!   is not the format the caller names;
//! - names the input format explicitly (`-f`), so qemu never guesses, and never gets an
//!   image with a backing file or external data file, which inspection refuses;
//! - runs under `prlimit` with a CPU-time and address-space limit (as Glance does for
//!   CVE-2015-5162) and a wall-clock timeout, and is killed if its future is dropped;
//! - waits for one of a bounded number of slots, so conversions cannot starve the node;
//! - reports progress from `qemu-img -p`;
//! - inspects its output before handing it back.
//!
//! Volumes ([`Disk`], `disk.rs`) add create, resize, info and flatten calls on files ims
//! made itself: their backing file is always the one ims names, passed explicitly.

mod converter;
mod disk;

pub use converter::{QemuConverter, empty_scratch};
pub use disk::{Disk, DiskInfo};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ims_format::{Format, Report};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

/// Why a conversion did not produce an image.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input failed inspection (unsafe, or not the named format).
    #[error("{0}")]
    Refused(String),
    /// The target format has no qemu driver (zvhd, zvhd2).
    #[error("conversion to {0} is not supported")]
    Unsupported(Format),
    /// qemu-img ran past its time limit and was killed.
    #[error("qemu-img did not finish within {0:?}")]
    Timeout(Duration),
    /// qemu-img failed; the message is the end of its error output.
    #[error("qemu-img failed: {0}")]
    Failed(String),
    /// The output failed inspection: a defect, since qemu-img wrote it.
    #[error("the converted image failed inspection: {0}")]
    BadOutput(String),
    /// Starting or talking to the process failed.
    #[error("qemu-img could not run: {0}")]
    Io(#[from] std::io::Error),
}

/// Limits on one qemu-img process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time before the process is killed.
    pub timeout: Duration,
    /// CPU seconds (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Address space in bytes (`RLIMIT_AS`).
    pub address_space: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(6 * 3600),
            cpu_seconds: 6 * 3600,
            address_space: 4 << 30,
        }
    }
}

/// One conversion: input and output files with their formats.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The source file.
    pub input: PathBuf,
    /// What the source must be.
    pub input_format: Format,
    /// The file to write (replaced if present).
    pub output: PathBuf,
    /// The target format.
    pub output_format: Format,
}

/// The qemu-img runner, shared by every conversion of a node.
#[derive(Debug, Clone)]
pub struct QemuImg {
    binary: PathBuf,
    limits: Limits,
    slots: Arc<Semaphore>,
}

impl QemuImg {
    /// A runner using `binary` (usually `qemu-img`), at most `concurrency` at once.
    pub fn new(binary: impl Into<PathBuf>, limits: Limits, concurrency: usize) -> Self {
        QemuImg {
            binary: binary.into(),
            limits,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Free conversion slots right now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// Converts, calling `progress` with percentages as qemu-img reports them, and
    /// returns the inspection of the output.
    pub async fn convert(
        &self,
        job: &Conversion,
        mut progress: impl FnMut(f32),
    ) -> Result<Report, ConvertError> {
        let out_name = qemu_name(job.output_format)?;
        let in_name = qemu_name(job.input_format)?;
        check_off_runtime(&job.input, job.input_format)
            .await
            .map_err(ConvertError::Refused)?;
        self.run_convert(Some(&job.output), &mut progress, |cmd| {
            cmd.args(["convert", "-p", "-f", in_name, "-O", out_name])
                .args(output_options(job.output_format))
                .arg("--")
                .arg(&job.input)
                .arg(&job.output);
            Ok(())
        })
        .await?;
        check_off_runtime(&job.output, job.output_format)
            .await
            .map_err(ConvertError::BadOutput)
    }

    /// [`QemuImg::convert`] between two files that have no name on disk (scratch files
    /// unlinked as soon as they were made): qemu-img gets them as inherited descriptors
    /// 3 and 4 and opens them as `/dev/fd/3` and `/dev/fd/4`, so plaintext it works on
    /// never has a path another process could open, and a crash leaves nothing behind.
    pub async fn convert_files(
        &self,
        input: &std::fs::File,
        input_format: Format,
        output: &std::fs::File,
        output_format: Format,
    ) -> Result<Report, ConvertError> {
        use command_fds::{CommandFdExt, FdMapping};
        use std::os::fd::AsRawFd;
        let out_name = qemu_name(output_format)?;
        let in_name = qemu_name(input_format)?;
        let own = |f: &std::fs::File| PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
        check_off_runtime(&own(input), input_format)
            .await
            .map_err(ConvertError::Refused)?;
        let mappings = vec![
            FdMapping {
                parent_fd: input.try_clone()?.into(),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: output.try_clone()?.into(),
                child_fd: 4,
            },
        ];
        self.run_convert(None, &mut |_| {}, |cmd| {
            cmd.args(["convert", "-f", in_name, "-O", out_name])
                .args(output_options(output_format))
                .args(["--", "/dev/fd/3", "/dev/fd/4"]);
            cmd.fd_mappings(mappings)
                .map_err(|e| ConvertError::Io(std::io::Error::other(e.to_string())))?;
            Ok(())
        })
        .await?;
        check_off_runtime(&own(output), output_format)
            .await
            .map_err(ConvertError::BadOutput)
    }

    /// Runs a `qemu-img convert -p` writing `output` (its arguments added by `args`) in a
    /// free slot under the time limit, feeding its progress to `progress`; on timeout or
    /// failure the partial `output` file (if it has a name) is removed so no
    /// half-written file is mistaken for a result.
    pub(crate) async fn run_convert(
        &self,
        output: Option<&Path>,
        progress: &mut impl FnMut(f32),
        args: impl FnOnce(&mut Command) -> Result<(), ConvertError>,
    ) -> Result<(), ConvertError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let started = std::time::Instant::now();
        let result = self.convert_in_slot(output, progress, args).await;
        record_run("convert", started, &result);
        result
    }

    /// [`QemuImg::run_convert`] once its slot is held.
    async fn convert_in_slot(
        &self,
        output: Option<&Path>,
        progress: &mut impl FnMut(f32),
        args: impl FnOnce(&mut Command) -> Result<(), ConvertError>,
    ) -> Result<(), ConvertError> {
        let mut cmd = self.command();
        args(&mut cmd)?;
        let mut child = cmd.spawn()?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let run = async {
            let (_, err, status) = tokio::join!(
                read_progress(stdout, progress),
                read_tail(stderr),
                child.wait()
            );
            (err, status)
        };
        let (err, status) = match tokio::time::timeout(self.limits.timeout, run).await {
            Ok(done) => done,
            Err(_) => {
                child.kill().await.ok();
                remove(output).await;
                return Err(ConvertError::Timeout(self.limits.timeout));
            }
        };
        if !status?.success() {
            remove(output).await;
            return Err(ConvertError::Failed(err));
        }
        Ok(())
    }

    /// `qemu-img` under `prlimit`, killed on drop, with no stdin.
    fn command(&self) -> Command {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--cpu={}", self.limits.cpu_seconds))
            .arg(format!("--as={}", self.limits.address_space))
            .arg("--")
            .arg(&self.binary)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

/// Records one qemu-img run for `/metrics`: `ims_qemu_img_runs_total{command,outcome}`
/// and `ims_qemu_img_duration_seconds{command}` (the run itself, not the wait for a slot).
fn record_run<T>(
    command: &'static str,
    started: std::time::Instant,
    result: &Result<T, ConvertError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(ConvertError::Timeout(_)) => "timeout",
        Err(ConvertError::Failed(_)) => "failed",
        Err(_) => "error",
    };
    metrics::counter!("ims_qemu_img_runs_total", "command" => command, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("ims_qemu_img_duration_seconds", "command" => command)
        .record(started.elapsed().as_secs_f64());
}

/// The metrics label of a qemu-img subcommand ims runs.
fn subcommand_label(arg: Option<&std::ffi::OsStr>) -> &'static str {
    match arg.and_then(|a| a.to_str()) {
        Some("create") => "create",
        Some("resize") => "resize",
        Some("info") => "info",
        Some("convert") => "convert",
        Some("rebase") => "rebase",
        Some("commit") => "commit",
        Some("check") => "check",
        _ => "other",
    }
}

/// qemu's name of `format`, which must have a driver.
fn qemu_name(format: Format) -> Result<&'static str, ConvertError> {
    format.qemu_name().ok_or(ConvertError::Unsupported(format))
}

/// Output options: VMDK is written stream-optimised, the subformat ims itself accepts
/// and the one clouds import.
fn output_options(format: Format) -> Vec<&'static str> {
    match format {
        Format::Vmdk => vec!["-o", "subformat=streamOptimized"],
        _ => Vec::new(),
    }
}

/// [`check`] on a blocking thread: inspection reads the file with `pread`.
async fn check_off_runtime(path: &Path, format: Format) -> Result<Report, String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || check(&path, format))
        .await
        .map_err(|e| format!("inspection failed: {e}"))?
}

/// Inspects a file and requires it safe and of `format`.
fn check(path: &Path, format: Format) -> Result<Report, String> {
    let report = ims_format::inspect_file(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    report
        .accept(Some(format.as_str()), Some("bare"))
        .map_err(|r| r.reason)?;
    Ok(report)
}

/// Parses `(12.34/100%)` updates from qemu-img's progress output.
async fn read_progress(stream: Option<impl AsyncRead + Unpin>, progress: &mut impl FnMut(f32)) {
    let Some(mut stream) = stream else { return };
    let mut buf = [0u8; 4096];
    let mut line = String::new();
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if b == b'\r' || b == b'\n' {
                if let Some(p) = parse_progress(&line) {
                    progress(p);
                }
                line.clear();
            } else if line.len() < 256 {
                line.push(char::from(b));
            }
        }
    }
}

fn parse_progress(line: &str) -> Option<f32> {
    let inner = line.trim().strip_prefix('(')?.strip_suffix("/100%)")?;
    inner.parse().ok()
}

/// The last 4 KiB of an error stream, for the failure message.
async fn read_tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut tail = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        let excess = tail.len().saturating_sub(4096);
        tail.drain(..excess);
    }
    String::from_utf8_lossy(&tail).trim().to_string()
}

async fn remove(path: Option<&Path>) {
    if let Some(path) = path {
        let _ = tokio::fs::remove_file(path).await;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_progress;

    #[test]
    fn progress_lines_parse() {
        assert_eq!(parse_progress("    (12.50/100%)"), Some(12.5));
        assert_eq!(parse_progress("(100.00/100%)"), Some(100.0));
        assert_eq!(parse_progress("garbage"), None);
    }
}
