//! `ims inspect FILE [--format F] [--json]`: the format engine's verdict on a file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ims_format::{Format, Report};

/// Arguments of `ims inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The image file.
    file: PathBuf,
    /// The declared disk format to check the content against (e.g. qcow2, raw, vhd).
    #[arg(long)]
    format: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the report; the exit code is 0 when the file would be accepted, 1 when not.
pub fn run(args: &InspectArgs) -> Result<i32> {
    if let Some(name) = &args.format {
        Format::parse(name)
            .or_else(|| {
                ["ami", "ari", "aki", "ploop"]
                    .contains(&name.as_str())
                    .then_some(Format::Raw)
            })
            .with_context(|| format!("unknown format {name}"))?;
    }
    let report = ims_format::inspect_file(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let verdict = report.accept(args.format.as_deref(), None);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["accepted"] = verdict.is_ok().into();
        if let Err(refusal) = &verdict {
            value["reason"] = refusal.reason.clone().into();
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_text(&report, verdict.as_ref().err().map(|r| r.reason.as_str()));
    }
    Ok(if verdict.is_ok() { 0 } else { 1 })
}

fn print_text(report: &Report, refusal: Option<&str>) {
    println!("format:       {}", report.format);
    match report.virtual_size {
        Some(size) => println!("virtual size: {size} bytes"),
        None => println!("virtual size: unknown"),
    }
    println!("file size:    {} bytes", report.size);
    for (key, value) in &report.details {
        println!("{:<13} {value}", format!("{key}:"));
    }
    match refusal {
        None => println!("verdict:      safe"),
        Some(reason) => println!("verdict:      refused: {reason}"),
    }
    for problem in &report.problems {
        println!("  - {problem}");
    }
}
