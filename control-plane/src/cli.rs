//! Command line: `serve` runs the control plane, `admin-token create`
//! adds an admin token to the database (also while `serve` runs),
//! `export` and `apply` read and write a running control plane's catalog
//! as a folder of YAML files (`crate::declarative`), `import apim` reads
//! an APIOps extractor folder into it (`crate::apiops`).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    server,
    store::{Location, Store},
    tokens,
};

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
    /// Write the catalog of a running control plane into DIR, one YAML
    /// file per resource (secrets as references, never values).
    Export {
        /// The folder (created if needed).
        dir: PathBuf,
        #[command(flatten)]
        remote: crate::declarative::client::Remote,
    },
    /// Make a running control plane match DIR in one transaction. Exit
    /// codes: 0 applied or nothing to do, 1 refused (nothing changed),
    /// 2 a diff is present under --dry-run.
    Apply {
        /// The folder, as `export` writes it.
        dir: PathBuf,
        /// Print the diff and validate it, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Delete resources that have no file in DIR.
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        remote: crate::declarative::client::Remote,
    },
    /// Import from another product's configuration into a running
    /// control plane.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// An Azure API Management APIOps extractor folder, in one
    /// transaction. Exit codes: 0 imported, 1 refused (nothing created).
    Apim {
        /// The folder the extractor wrote (apis/, products/, policy.xml ...).
        dir: PathBuf,
        /// Report what would be imported, create nothing.
        #[arg(long)]
        dry_run: bool,
        /// Import what is valid, leave out what is refused.
        #[arg(long)]
        partial: bool,
        #[command(flatten)]
        remote: crate::declarative::client::Remote,
    },
}

/// The database, for every command.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The database: a SQLite file (created and migrated if needed), or
    /// PostgreSQL as postgres://USER@HOST:PORT/DATABASE (migrated if
    /// needed; several `serve` replicas may share it). Never put the
    /// password in the URL.
    #[arg(long)]
    pub db: Location,
    /// A file holding the PostgreSQL password (its first line). Without
    /// it the PGPASSWORD environment variable is used, if set.
    #[arg(long)]
    pub db_password_file: Option<PathBuf>,
}

impl DbArgs {
    /// Opens the store; PostgreSQL on the current runtime.
    pub fn open(&self) -> Result<Store, crate::store::StoreError> {
        Store::open(&self.db, self.db_password_file.as_deref())
    }

    /// Runs `f` on the opened store, with a runtime for PostgreSQL's
    /// driver (a command-line tool's one-off work).
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let _entered = runtime.enter();
        f(&self.open()?)
    }
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Listen address, e.g. 0.0.0.0:9443.
    #[arg(long)]
    pub listen: SocketAddr,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of the CAs gateways' client certificates chain to
    /// (mutual TLS, with --tls-cert): the gateway endpoints
    /// (`/v1/gateway/...`) then refuse a request without such a
    /// certificate (403), beside the token; a certificate that does not
    /// chain is refused in the handshake. Re-read on SIGHUP.
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Lifetime of gateway tokens, e.g. "30d", "12h".
    #[arg(long, default_value = "30d", value_parser = parse_ttl)]
    pub token_ttl: u64,
    /// How long request analytics stay at the period gateways send (a
    /// minute by default) before they are rolled up into hours, e.g. "2d".
    #[arg(long, default_value = "2d", value_parser = parse_ttl)]
    pub analytics_minutes_for: u64,
    /// How long request analytics and XDP drops are kept at all, e.g. "90d".
    #[arg(long, default_value = "90d", value_parser = parse_ttl)]
    pub analytics_retention: u64,
    /// Lifetime of a web console or portal session (signed in with an
    /// admin token or a consumer's password), e.g. "8h".
    #[arg(long, default_value = "8h", value_parser = parse_ttl)]
    pub session_ttl: u64,
    /// A gateway base URL (http://HOST:PORT) the developer portal's try-it
    /// form sends requests through; repeat for several. None: no try-it.
    #[arg(long = "portal-gateway", value_parser = parse_gateway_url)]
    pub portal_gateways: Vec<String>,
    /// OTLP collector (HTTP/protobuf) to export a span per request to,
    /// e.g. http://127.0.0.1:4318.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces exported, 0.0 to 1.0 (with --otlp-endpoint).
    #[arg(long, default_value_t = 1.0, requires = "otlp_endpoint")]
    pub otlp_sampling_ratio: f64,
}

impl ServeArgs {
    /// The OTLP settings of the command line, validated as the gateway's.
    pub fn otlp(&self) -> anyhow::Result<Option<gateway_model::config::Otlp>> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(None);
        };
        gateway_model::config::Otlp::from_endpoint(endpoint, self.otlp_sampling_ratio)
            .map(Some)
            .map_err(|m| {
                anyhow::anyhow!(
                    "--otlp-{}",
                    m.replacen("endpoint:", "endpoint", 1).replacen(
                        "sampling_ratio:",
                        "sampling-ratio",
                        1
                    )
                )
            })
    }
}

fn parse_gateway_url(text: &str) -> Result<String, String> {
    let url: hyper::Uri = text
        .parse()
        .map_err(|e| format!("{e}; give a base URL such as http://10.0.0.5:8080"))?;
    if url.scheme_str() != Some("http") || url.host().is_none() {
        return Err(
            "give an http:// base URL of a gateway, such as http://10.0.0.5:8080".to_string(),
        );
    }
    Ok(text.trim_end_matches('/').to_string())
}

fn parse_ttl(text: &str) -> Result<u64, String> {
    gateway_model::config::parse_duration(text).map(|d| d.as_secs())
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin token and print it once (only its hash is stored).
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// A label for the token (who or what uses it).
        #[arg(long, default_value = "admin")]
        name: String,
    },
    /// List admin tokens (labels and creation times; tokens are not stored).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke every admin token with this label.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        /// The label given at creation.
        #[arg(long)]
        name: String,
    },
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    use crate::declarative::commands;
    match cli.command {
        Command::Export { dir, remote } => commands::export(&remote, &dir),
        Command::Apply {
            dir,
            dry_run,
            prune,
            remote,
        } => commands::apply(&remote, &dir, dry_run, prune),
        Command::Import {
            source:
                ImportSource::Apim {
                    dir,
                    dry_run,
                    partial,
                    remote,
                },
        } => crate::apiops::command::import_apim(&remote, &dir, dry_run, partial),
        Command::Serve(args) => done(server::run(args)),
        Command::Healthcheck { url } => done(crate::healthcheck::run(&url)),
        Command::AdminToken { command } => done(admin_token(command)),
    }
}

fn done(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    result.map(|()| ExitCode::SUCCESS)
}

fn admin_token(command: AdminTokenCommand) -> anyhow::Result<()> {
    match command {
        AdminTokenCommand::Create { db, name } => db.with_store(|store| {
            let token = store.write(|c| tokens::create_admin(c, &name))?;
            println!("{token}");
            Ok(())
        }),
        AdminTokenCommand::List { db } => db.with_store(|store| {
            for (name, created) in store.read(tokens::list_admin)? {
                println!("{name}\t{}", crate::clock::rfc3339(created));
            }
            Ok(())
        }),
        AdminTokenCommand::Revoke { db, name } => db.with_store(|store| {
            let revoked = store.write(|c| tokens::revoke_admin(c, &name))?;
            anyhow::ensure!(
                revoked > 0,
                "no admin token is named \"{name}\"; see the names with `edgegw-cp admin-token list --db {}`",
                db.db
            );
            println!("revoked {revoked} admin token(s) named \"{name}\"");
            Ok(())
        }),
    }
}
