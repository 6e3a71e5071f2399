//! `ims convert IN OUT --from F --to F`: a conversion through the same qemu-img wrapper
//! the service uses (inspection before and after, limits, timeout).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use ims_format::Format;
use ims_qemu::{Conversion, Limits, QemuImg};

use crate::progress::Progress;

/// Arguments of `ims convert`.
#[derive(clap::Args)]
pub struct ConvertArgs {
    /// The source image.
    input: PathBuf,
    /// The file to write.
    output: PathBuf,
    /// The source's format (required: qemu-img is never left to guess).
    #[arg(long)]
    from: String,
    /// The target format: qcow2, raw, vmdk, vhd, vhdx or vdi.
    #[arg(long)]
    to: String,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 6 * 3600)]
    timeout: u64,
    /// Print progress percentages on stderr, one per line, even when it is not a terminal
    /// (on a terminal a progress bar is drawn anyway, unless `--quiet`).
    #[arg(long)]
    progress: bool,
}

fn format(name: &str) -> Result<Format> {
    Format::parse(name).with_context(|| format!("unknown format {name}"))
}

/// Runs the conversion and prints the output's format and virtual size.
pub async fn run(args: ConvertArgs, quiet: bool) -> Result<()> {
    let limits = Limits {
        timeout: Duration::from_secs(args.timeout),
        cpu_seconds: args.timeout,
        ..Limits::default()
    };
    let qemu = QemuImg::new("qemu-img", limits, 1);
    let job = Conversion {
        input: args.input,
        input_format: format(&args.from)?,
        output: args.output,
        output_format: format(&args.to)?,
    };
    let show = args.progress;
    // qemu-img reports percentages; the bar shows them as the input's bytes, for a rate
    // and a time left.
    let size = std::fs::metadata(&job.input).map(|m| m.len()).ok();
    let label = job.output.display().to_string();
    let bar = Progress::bytes(&label, size, !show && crate::progress::shown(quiet));
    let converted = qemu
        .convert(&job, |p| {
            if show {
                eprintln!("{p:.2}%");
            }
            if let Some(size) = size {
                bar.set((f64::from(p) / 100.0 * size as f64) as u64);
            }
        })
        .await;
    match &converted {
        Ok(_) => bar.finish(),
        Err(_) => bar.abandon(),
    }
    let report = converted?;
    println!(
        "{} {} virtual size {}",
        job.output.display(),
        report.format,
        report
            .virtual_size
            .map_or("unknown".into(), |s| s.to_string())
    );
    Ok(())
}
