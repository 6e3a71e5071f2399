//! `ims`: the image service binary.

mod admin;
mod app;
mod bucket;
mod config;
mod convert;
mod inspect;
mod metrics;
mod private;
mod progress;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// One image service speaking the OpenStack Image (Glance) and Keystone APIs and Huawei
/// Cloud IMS.
#[derive(Parser)]
#[command(name = "ims", version)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "IMS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (catalog, image data, clouds.yaml).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// No progress bars (they are drawn only on a terminal anyway).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (all APIs on one listener, workers in-process).
    Serve {
        /// Listen address, e.g. 127.0.0.1:9292 (port 0: any free port).
        #[arg(long)]
        listen: Option<String>,
        /// Once serving, write the address really listened on (`ip:port`) to this file,
        /// atomically: how a caller that asked for port 0 learns the port.
        #[arg(long)]
        addr_file: Option<PathBuf>,
    },
    /// Stage files in the buckets (embedded or S3/OBS) that imports read and exports write.
    Bucket {
        #[command(subcommand)]
        command: bucket::BucketCommand,
    },
    /// Inspect a disk image file: format, virtual size and safety verdict.
    Inspect(inspect::InspectArgs),
    /// Convert a disk image through the service's qemu-img wrapper.
    Convert(convert::ConvertArgs),
    /// Provision projects, users and roles directly in the catalog.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Inspect(args) = &cli.command {
        std::process::exit(inspect::run(args)?);
    }
    let mut config = config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve { listen, addr_file } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            app::init_logging(&config.log_format);
            runtime.block_on(app::serve(config, addr_file.as_deref()))
        }
        Command::Admin { command } => runtime.block_on(admin::run(config, command)),
        Command::Bucket { command } => runtime.block_on(bucket::run(config, command, cli.quiet)),
        Command::Convert(args) => runtime.block_on(convert::run(args, cli.quiet)),
        Command::Inspect(_) => unreachable!("handled before the runtime starts"),
    }
}
