//! Command-line interface: one module per subcommand.

mod catalog;
mod detach;
mod drops;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::datapath::XdpMode;

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
    },
    /// Detach the XDP program from an interface and remove its pins.
    Detach {
        /// Interface to detach from.
        #[arg(long)]
        iface: String,
    },
    /// API-management catalog tools.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Show XDP packet and byte counters per verdict reason.
    Drops {
        /// Interface (defaults to the only attached one).
        #[arg(long)]
        iface: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Print the SHA-256 of a subscription key, as the catalog stores it.
    HashKey {
        /// The subscription key.
        key: String,
    },
    /// Validate a catalog file; with --config, also against the gateway's APIs.
    Validate {
        /// The catalog file (YAML).
        file: PathBuf,
        /// Gateway configuration whose APIs the catalog refers to.
        #[arg(long, short)]
        config: Option<PathBuf>,
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
        } => run::run(&config, iface, xdp_mode.map(Into::into)),
        Command::Detach { iface } => detach::detach(&iface),
        Command::Drops { iface, json } => drops::drops(iface.as_deref(), json),
        Command::Catalog(CatalogCommand::HashKey { key }) => catalog::hash(&key),
        Command::Catalog(CatalogCommand::Validate { file, config }) => {
            catalog::validate(&file, config.as_deref())
        }
    }
}
