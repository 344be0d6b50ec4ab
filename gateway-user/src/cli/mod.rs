//! Command-line interface: one module per subcommand.

mod analytics;
mod apply;
mod ban;
mod bans;
mod catalog;
mod config_cmd;
mod detach;
mod drops;
mod log_level;
mod reload;
mod run;
mod status;
mod top;
mod xdp;

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
        /// Print again every SECS seconds, with rates.
        #[arg(long, value_name = "SECS")]
        watch: Option<u64>,
    },
    /// Show the sources with the most dropped, then seen, packets.
    Top {
        /// Interface (defaults to the only attached one).
        #[arg(long)]
        iface: Option<String>,
        /// How many sources to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the active temporary bans.
    Bans {
        /// Interface (defaults to the only attached one).
        #[arg(long)]
        iface: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Ban a CIDR in XDP for a duration ("90s", "10m", "1h", "2d").
    Ban {
        /// Address or block, e.g. 192.0.2.0/24 or 2001:db8::/48.
        cidr: String,
        /// How long the ban lasts.
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Interface (defaults to the only attached one).
        #[arg(long)]
        iface: Option<String>,
    },
    /// Lift the ban of a CIDR.
    Unban {
        /// The banned address or block, as given to `edgegw ban`.
        cidr: String,
        /// Interface (defaults to the only attached one).
        #[arg(long)]
        iface: Option<String>,
    },
    /// Show the running daemon's request analytics of the period in
    /// progress (the control plane's /v1/analytics is the fleet's view).
    Analytics {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The daemon's runtime directory (default $EDGEGW_RUNTIME_DIR or /run/edgegw).
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
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
    /// Reload the running daemon's configuration file (SIGHUP) and wait
    /// for the outcome: exit 0 when applied, 1 with the reason when refused.
    Reload {
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

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Print the SHA-256 of a subscription key, as the catalog stores it.
    HashKey {
        /// The subscription key (may start with '-'); without it, the key is
        /// read from standard input (one line), out of shell history and `ps`.
        #[arg(allow_hyphen_values = true)]
        key: Option<String>,
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
            runtime_dir,
        } => run::run(
            &config,
            iface,
            xdp_mode.map(Into::into),
            &status_file::runtime_dir(runtime_dir),
        ),
        Command::Detach { iface } => detach::detach(&iface),
        Command::Analytics { json, runtime_dir } => {
            analytics::analytics(&status_file::runtime_dir(runtime_dir), json)
        }
        Command::Status { json, runtime_dir } => {
            status::status(&status_file::runtime_dir(runtime_dir), json)
        }
        Command::Reload { runtime_dir } => reload::reload(&status_file::runtime_dir(runtime_dir)),
        Command::LogLevel { level, runtime_dir } => {
            log_level::set(&status_file::runtime_dir(runtime_dir), &level)
        }
        Command::Config {
            action: ConfigAction::Validate { file },
        } => config_cmd::validate(&file),
        Command::Drops { iface, json, watch } => drops::drops(iface.as_deref(), json, watch),
        Command::Top { iface, limit, json } => top::top(iface.as_deref(), limit, json),
        Command::Bans { iface, json } => bans::bans(iface.as_deref(), json),
        Command::Ban {
            cidr,
            duration,
            iface,
        } => ban::ban(iface.as_deref(), &cidr, &duration),
        Command::Unban { cidr, iface } => ban::unban(iface.as_deref(), &cidr),
        Command::Catalog(CatalogCommand::HashKey { key }) => catalog::hash(key.as_deref()),
        Command::Catalog(CatalogCommand::Validate { file, config }) => {
            catalog::validate(&file, config.as_deref())
        }
    }
}
