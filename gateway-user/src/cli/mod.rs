//! Command-line interface: one module per subcommand.

mod config_cmd;
mod detach;
mod drops;
mod log_level;
mod run;
mod status;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{datapath::XdpMode, status as status_file};

#[derive(Debug, Parser)]
#[command(
    name = "edgegw",
    version,
    about = "Self-hosted API gateway with an XDP DoS fast path"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: attach XDP, serve the configured APIs.
    Run {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Interface to attach XDP to (overrides xdp.iface).
        #[arg(long)]
        iface: Option<String>,
        /// XDP attach mode (overrides xdp.mode).
        #[arg(long, value_parser = clap::value_parser!(XdpModeArg))]
        xdp_mode: Option<XdpModeArg>,
        /// Directory of the status file (default $EDGEGW_RUNTIME_DIR or /run/edgegw).
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
    },
    /// Detach the XDP program from an interface and remove its pins.
    Detach {
        /// Interface to detach from.
        #[arg(long)]
        iface: String,
    },
    /// Show XDP packet and byte counters per verdict reason.
    Drops {
        /// Interface (defaults to the only attached one).
        #[arg(long)]
        iface: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the running daemon: version, uptime, config, XDP, listeners, drop totals.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The daemon's runtime directory (default $EDGEGW_RUNTIME_DIR or /run/edgegw).
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
    },
    /// Change the running daemon's log level without a restart.
    LogLevel {
        /// A level (error, warn, info, debug, trace) or directives such as "info,edgegw=debug".
        level: String,
        /// The daemon's runtime directory (default $EDGEGW_RUNTIME_DIR or /run/edgegw).
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
    },
    /// Configuration files.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Check a configuration file without touching the running daemon.
    Validate {
        /// The file to check.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum XdpModeArg {
    Native,
    Skb,
    Off,
}

impl From<XdpModeArg> for XdpMode {
    fn from(m: XdpModeArg) -> XdpMode {
        match m {
            XdpModeArg::Native => XdpMode::Native,
            XdpModeArg::Skb => XdpMode::Skb,
            XdpModeArg::Off => XdpMode::Off,
        }
    }
}

pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            config,
            iface,
            xdp_mode,
            runtime_dir,
        } => run::run(
            &config,
            iface,
            xdp_mode.map(Into::into),
            &status_file::runtime_dir(runtime_dir),
        ),
        Command::Detach { iface } => detach::detach(&iface),
        Command::Drops { iface, json } => drops::drops(iface.as_deref(), json),
        Command::Status { json, runtime_dir } => {
            status::status(&status_file::runtime_dir(runtime_dir), json)
        }
        Command::LogLevel { level, runtime_dir } => {
            log_level::set(&status_file::runtime_dir(runtime_dir), &level)
        }
        Command::Config {
            action: ConfigAction::Validate { file },
        } => config_cmd::validate(&file),
    }
}
