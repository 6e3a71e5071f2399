//! Disks ims keeps in place (volumes): create, grow, describe and flatten them.
//!
//! These calls work on files ims itself made, yet the rule of the crate holds: qemu never
//! follows a reference it finds inside data. A volume's backing file is the one ims
//! names, passed on every call with its format (`-F` when creating; `--image-opts` with an
//! explicit `backing.*` afterwards, which overrides whatever the header says), and the
//! volume's own header must show nothing else that points outside it (no external data
//! file, nothing unsafe besides the backing file ims wrote there).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ims_format::{Format, Report};

use crate::{ConvertError, QemuImg, qemu_name, read_tail, remove};

/// Metadata calls (create, resize, info) finish in well under a second; anything
/// longer is a hung process.
const QUICK_TIMEOUT: Duration = Duration::from_secs(120);
/// The most `qemu-img info` may print (its JSON is a few KiB).
const INFO_MAX: usize = 1 << 20;

/// A disk file and, for an overlay, the backing file ims named for it.
#[derive(Debug, Clone)]
pub struct Disk {
    /// The disk file.
    pub path: PathBuf,
    /// Its format (`qcow2` or `raw`).
    pub format: Format,
    /// The file it reads what it has not written, and that file's format.
    pub backing: Option<(PathBuf, Format)>,
}

/// What `qemu-img info` says about a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskInfo {
    /// The size a guest sees.
    pub virtual_size: u64,
    /// Bytes the file occupies on disk.
    pub actual_size: u64,
}

/// A path as an `--image-opts` value: text, with commas doubled (keyval escaping).
fn opt_path(path: &Path) -> Result<String, ConvertError> {
    let text = path
        .to_str()
        .ok_or_else(|| ConvertError::Refused(format!("{} is not UTF-8", path.display())))?;
    Ok(text.replace(',', ",,"))
}

impl Disk {
    /// The `--image-opts` description: the driver named, the backing (or none) named
    /// explicitly, so nothing in the header is consulted to find another file.
    fn image_opts(&self) -> Result<String, ConvertError> {
        let mut opts = format!(
            "driver={},file.driver=file,file.filename={}",
            qemu_name(self.format)?,
            opt_path(&self.path)?
        );
        if let Some((backing, format)) = &self.backing {
            opts.push_str(&format!(
                ",backing.driver={},backing.file.driver=file,backing.file.filename={}",
                qemu_name(*format)?,
                opt_path(backing)?
            ));
        }
        Ok(opts)
    }

    /// Checks the header: the format ims made, and nothing unsafe besides a backing file
    /// when ims gave it one (which every call then overrides; readers of the chain other
    /// than qemu check this first too). A raw disk has no header:
    /// all of it is the guest's data, which qemu, told `raw`, never interprets (a guest
    /// may well store a qcow2 file on its raw disk), so it is not inspected.
    pub async fn check(&self) -> Result<(), ConvertError> {
        if self.format == Format::Raw {
            return Ok(());
        }
        let (path, format, overlay) = (self.path.clone(), self.format, self.backing.is_some());
        tokio::task::spawn_blocking(move || {
            let report = ims_format::inspect_file(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if report.format != format {
                return Err(format!(
                    "{} is {}, not {format}",
                    path.display(),
                    report.format
                ));
            }
            let other: Vec<String> = report
                .problems
                .iter()
                .filter(|p| !(overlay && p.check == "backing_file"))
                .map(|p| p.to_string())
                .collect();
            if !other.is_empty() {
                return Err(format!(
                    "the disk failed safety checks: {}",
                    other.join("; ")
                ));
            }
            Ok(())
        })
        .await
        .map_err(|e| ConvertError::Refused(format!("inspection failed: {e}")))?
        .map_err(ConvertError::Refused)
    }
}

impl QemuImg {
    /// Runs a quick metadata call; its stdout (bounded), or its error output on failure.
    async fn quick(&self, args: Vec<std::ffi::OsString>) -> Result<Vec<u8>, ConvertError> {
        let command = crate::subcommand_label(args.first().map(|a| a.as_os_str()));
        let started = std::time::Instant::now();
        let result = self.quick_run(args).await;
        crate::record_run(command, started, &result);
        result
    }

    async fn quick_run(&self, args: Vec<std::ffi::OsString>) -> Result<Vec<u8>, ConvertError> {
        use tokio::io::AsyncReadExt;
        let mut child = self.command().args(args).spawn()?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let run = async {
            let mut out = Vec::new();
            let read_out = async {
                if let Some(s) = stdout {
                    let _ = s.take(INFO_MAX as u64).read_to_end(&mut out).await;
                }
            };
            let (_, err, status) = tokio::join!(read_out, read_tail(stderr), child.wait());
            (out, err, status)
        };
        let timeout = QUICK_TIMEOUT.min(self.limits.timeout);
        let (out, err, status) = match tokio::time::timeout(timeout, run).await {
            Ok(done) => done,
            Err(_) => {
                child.kill().await.ok();
                return Err(ConvertError::Timeout(timeout));
            }
        };
        if !status?.success() {
            return Err(ConvertError::Failed(err));
        }
        Ok(out)
    }

    /// Creates `disk` with `size` bytes: sparse, and for an overlay, on the backing file
    /// ims names (checked safe and of its format first, as any input is). Refuses to
    /// replace an existing file.
    pub async fn create(&self, disk: &Disk, size: u64) -> Result<(), ConvertError> {
        if disk.path.exists() {
            return Err(ConvertError::Refused(format!(
                "{} exists already",
                disk.path.display()
            )));
        }
        let mut args: Vec<std::ffi::OsString> = vec![
            "create".into(),
            "-q".into(),
            "-f".into(),
            qemu_name(disk.format)?.into(),
        ];
        if let Some((backing, format)) = &disk.backing {
            crate::check_off_runtime(backing, *format)
                .await
                .map_err(ConvertError::Refused)?;
            args.extend([
                "-b".into(),
                backing.as_os_str().to_owned(),
                "-F".into(),
                qemu_name(*format)?.into(),
            ]);
        }
        args.extend([
            "--".into(),
            disk.path.as_os_str().to_owned(),
            size.to_string().into(),
        ]);
        match self.quick(args).await {
            Ok(_) => Ok(()),
            Err(e) => {
                remove(Some(&disk.path)).await;
                Err(e)
            }
        }
    }

    /// Grows `disk` to `size` bytes (`--shrink` is never passed, so qemu refuses to
    /// shrink).
    pub async fn resize(&self, disk: &Disk, size: u64) -> Result<(), ConvertError> {
        disk.check().await?;
        let args = vec![
            "resize".into(),
            "-q".into(),
            "--image-opts".into(),
            disk.image_opts()?.into(),
            "--".into(),
            size.to_string().into(),
        ];
        self.quick(args).await.map(|_| ())
    }

    /// Virtual and actual size of `disk`.
    pub async fn info(&self, disk: &Disk) -> Result<DiskInfo, ConvertError> {
        disk.check().await?;
        let args = vec![
            "info".into(),
            "--output=json".into(),
            "--image-opts".into(),
            disk.image_opts()?.into(),
        ];
        let out = self.quick(args).await?;
        let json: serde_json::Value = serde_json::from_slice(&out)
            .map_err(|e| ConvertError::Failed(format!("unreadable qemu-img info: {e}")))?;
        let get = |k: &str| json.get(k).and_then(serde_json::Value::as_u64);
        match (get("virtual-size"), get("actual-size")) {
            (Some(virtual_size), actual) => Ok(DiskInfo {
                virtual_size,
                actual_size: actual.unwrap_or(0),
            }),
            _ => Err(ConvertError::Failed(
                "qemu-img info gave no virtual size".into(),
            )),
        }
    }

    /// Writes `disk`'s whole content, backing folded in, to `output` as `format`, in a
    /// conversion slot under the conversion limits; the output is inspected like any
    /// conversion's and must refer to nothing.
    pub async fn flatten(
        &self,
        disk: &Disk,
        output: &Path,
        format: Format,
        mut progress: impl FnMut(f32),
    ) -> Result<Report, ConvertError> {
        disk.check().await?;
        let out_name = qemu_name(format)?;
        let opts = disk.image_opts()?;
        self.run_convert(Some(output), &mut progress, |cmd| {
            cmd.args(["convert", "-p", "-O", out_name, "--image-opts"])
                .arg(opts)
                .arg(output);
            Ok(())
        })
        .await?;
        crate::check_off_runtime(output, format)
            .await
            .map_err(ConvertError::BadOutput)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_opts_name_the_backing_and_escape_commas() {
        let disk = Disk {
            path: "/d/vol,1.qcow2".into(),
            format: Format::Qcow2,
            backing: Some(("/d/images/x".into(), Format::Raw)),
        };
        assert_eq!(
            disk.image_opts().unwrap(),
            "driver=qcow2,file.driver=file,file.filename=/d/vol,,1.qcow2,\
             backing.driver=raw,backing.file.driver=file,backing.file.filename=/d/images/x"
        );
    }
}
