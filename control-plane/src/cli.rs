//! Command line: `serve` runs the control plane, `admin-token create`
//! adds an admin token to the database (also while `serve` runs).

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand};

use crate::{server, store::Store, tokens};

#[derive(Debug, Parser)]
#[command(name = "edgegw-cp", version, about = "edgegw control plane")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the management API and the gateway endpoints.
    Serve(ServeArgs),
    /// Exit 0 if the control plane at --url answers GET /healthz with 200
    /// (container health checks; the certificate is not verified).
    Healthcheck {
        /// e.g. https://127.0.0.1:9443/healthz
        #[arg(long)]
        url: String,
    },
    /// Manage admin tokens.
    AdminToken {
        #[command(subcommand)]
        command: AdminTokenCommand,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// SQLite database file (created and migrated if needed).
    #[arg(long)]
    pub db: PathBuf,
    /// Listen address, e.g. 0.0.0.0:9443.
    #[arg(long)]
    pub listen: SocketAddr,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Lifetime of gateway tokens, e.g. "30d", "12h".
    #[arg(long, default_value = "30d", value_parser = parse_ttl)]
    pub token_ttl: u64,
}

fn parse_ttl(text: &str) -> Result<u64, String> {
    gateway_model::config::parse_duration(text).map(|d| d.as_secs())
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin token and print it once (only its hash is stored).
    Create {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// A label for the token (who or what uses it).
        #[arg(long, default_value = "admin")]
        name: String,
    },
    /// List admin tokens (labels and creation times; tokens are not stored).
    List {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
    },
    /// Revoke every admin token with this label.
    Revoke {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// The label given at creation.
        #[arg(long)]
        name: String,
    },
}

pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => server::run(args),
        Command::Healthcheck { url } => crate::healthcheck::run(&url),
        Command::AdminToken {
            command: AdminTokenCommand::Create { db, name },
        } => {
            let store = Store::open(&db)?;
            let token = store.read(|c| tokens::create_admin(c, &name))?;
            println!("{token}");
            Ok(())
        }
        Command::AdminToken {
            command: AdminTokenCommand::List { db },
        } => {
            let store = Store::open(&db)?;
            for (name, created) in store.read(tokens::list_admin)? {
                println!("{name}\t{}", crate::clock::rfc3339(created));
            }
            Ok(())
        }
        Command::AdminToken {
            command: AdminTokenCommand::Revoke { db, name },
        } => {
            let store = Store::open(&db)?;
            let revoked = store.read(|c| tokens::revoke_admin(c, &name))?;
            anyhow::ensure!(
                revoked > 0,
                "no admin token is named \"{name}\"; see the names with `edgegw-cp admin-token list --db {}`",
                db.display()
            );
            println!("revoked {revoked} admin token(s) named \"{name}\"");
            Ok(())
        }
    }
}
