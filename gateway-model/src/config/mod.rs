//! The daemon's configuration file (`config/edgegw.toml`).
//!
//! The file is parsed into `FileConfig` (serde, unknown fields rejected) and
//! converted into the validated `Config`; the rest of the daemon never sees
//! unvalidated values.

mod dos;
mod duration;
mod ephemeral;
mod xdp_mode;

pub use dos::{DosPolicy, DosSection, PortGroupSection};
pub use duration::parse_duration;
pub use ephemeral::{EphemeralRangeError, ephemeral_ports};
pub use escalation::Escalation;
pub use xdp_mode::XdpMode;
mod analytics;
mod apis;
mod bundle;
mod catalog;
mod control_plane;
mod delta;
mod escalation;
mod identity;
mod limits;
mod listeners;
pub mod pool;
mod redis;
mod telemetry;
mod template;
pub mod yaml;

pub use analytics::Analytics;
pub use apis::{
    Api, ApiSection, Backend, BackendProtocol, BackendSection, CertSource, ClientIdentity,
    EncodedSlashes, NamedBackend, Operation, OperationSection,
};
pub use bundle::Bundle;
pub use control_plane::ControlPlane;
pub use delta::{BundleDelta, DELTA_CONTENT_TYPE};
pub use identity::{Credential, Identity, IdentitySection};
pub use limits::Limits;
pub use listeners::{Certificate, ClientAuth, TlsListener};
pub use redis::{Redis, RedisSection};
pub use telemetry::{Otlp, Telemetry};
pub use template::UrlTemplate;

use std::{net::SocketAddr, path::Path};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}; check the path and its permissions")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The file as written by the operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Listener settings.
    gateway: GatewaySection,
    /// XDP attachment.
    #[serde(default)]
    xdp: XdpSection,
    /// Optional HTTPS listener.
    tls: Option<listeners::TlsSection>,
    /// Protection limits.
    #[serde(default)]
    limits: limits::LimitsSection,
    /// Optional admin listener (/healthz, /readyz, /metrics).
    admin: Option<listeners::AdminSection>,
    /// Named backends APIs can refer to.
    #[serde(default)]
    backends: Vec<apis::BackendSection>,
    /// Published APIs, matched by longest path prefix.
    #[serde(default)]
    apis: Vec<apis::ApiSection>,
    /// Optional built-in echo backend, used by the demo configuration.
    demo_backend: Option<DemoBackendSection>,
    /// What the XDP program enforces; absent: it counts and passes everything.
    dos: Option<dos::DosSection>,
    /// Optional API-management catalog (products, subscriptions, policies).
    catalog: Option<catalog::CatalogSection>,
    /// Optional L7-to-XDP escalation (ban abusive client IPs in the kernel).
    escalation: Option<escalation::EscalationSection>,
    /// Optional control plane that serves the managed sections.
    control_plane: Option<control_plane::ControlPlaneSection>,
    /// Optional Redis that cluster-scoped rate limits count in.
    redis: Option<redis::RedisSection>,
    /// Optional OAuth 2.0 client of `authentication-managed-identity`.
    identity: Option<identity::IdentitySection>,
    /// Request analytics sent to the control plane.
    #[serde(default)]
    analytics: analytics::AnalyticsSection,
    /// Access-log redaction and the optional OTLP collector.
    #[serde(default)]
    telemetry: telemetry::TelemetrySection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewaySection {
    /// Address of the HTTP listener, e.g. "0.0.0.0:8080".
    listen: String,
    /// Seconds that in-flight requests get to finish on SIGTERM/SIGINT.
    #[serde(default = "default_drain_secs")]
    drain_timeout_secs: u64,
    /// Where the JSON access log goes: "stdout" (default), "off", or a file
    /// path (appended).
    #[serde(default)]
    access_log: Option<String>,
    /// Request headers with `_` in their name (`Transfer_Encoding`, which
    /// CGI-style backends read as `Transfer-Encoding`): "drop" (default,
    /// not forwarded and counted), "refuse" (400) or "allow".
    #[serde(default)]
    underscores_in_headers: Option<String>,
}

fn default_drain_secs() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XdpSection {
    /// Interface the XDP program attaches to.
    #[serde(default = "default_iface")]
    iface: String,
    /// "native" (driver), "skb" (generic) or "off".
    #[serde(default = "default_mode")]
    mode: String,
    /// Detach and unpin on exit (demo); by default the program and its
    /// state stay pinned so a restart has no protection gap.
    #[serde(default)]
    detach_on_exit: bool,
}

impl Default for XdpSection {
    fn default() -> Self {
        Self {
            iface: default_iface(),
            mode: default_mode(),
            detach_on_exit: false,
        }
    }
}

fn default_iface() -> String {
    "lo".into()
}

fn default_mode() -> String {
    "skb".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoBackendSection {
    /// Address the built-in echo backend listens on.
    listen: String,
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub drain_timeout: std::time::Duration,
    pub iface: String,
    pub xdp_mode: XdpMode,
    pub apis: Vec<Api>,
    /// Named backends (`set-backend-service backend-id`).
    pub backends: Vec<NamedBackend>,
    pub demo_backend: Option<SocketAddr>,
    pub detach_on_exit: bool,
    pub dos: Option<DosPolicy>,
    pub tls: Option<TlsListener>,
    pub limits: Limits,
    pub admin: Option<SocketAddr>,
    pub access_log: AccessLogTarget,
    /// The API-management catalog, if any.
    pub catalog: Option<CatalogSource>,
    pub escalation: Option<Escalation>,
    /// The control plane serving the managed parts, if any.
    pub control_plane: Option<ControlPlane>,
    pub underscores_in_headers: Underscores,
    /// The Redis of cluster-scoped rate limits, if any.
    pub redis: Option<Redis>,
    /// The gateway's own OAuth 2.0 client, if any.
    pub identity: Option<Identity>,
    /// Request analytics: period and the outbox bound.
    pub analytics: Analytics,
    /// Access-log redaction and OTLP export.
    pub telemetry: Telemetry,
}

/// What the proxy does with request headers whose name has a `_`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Underscores {
    Drop,
    Refuse,
    Allow,
}

/// Where the API-management catalog comes from.
#[derive(Clone, Debug)]
pub enum CatalogSource {
    /// A YAML file on the node (`[catalog] file`), read when the gateway
    /// is built.
    File(std::path::PathBuf),
    /// The catalog of a control-plane bundle, validated with the bundle
    /// (read once).
    Bundled(std::sync::Arc<crate::catalog::Catalog>),
}

/// Destination of the access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogTarget {
    Stdout,
    Off,
    File(std::path::PathBuf),
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config = Self::parse(&shown, &text)?;
        if let Some(CatalogSource::File(f)) = &config.catalog {
            config.catalog = Some(CatalogSource::File(catalog::resolve(f, path)));
        }
        if let Some(cp) = &mut config.control_plane {
            cp.resolve(path);
        }
        if let Some(r) = &mut config.redis {
            r.resolve(path);
        }
        if let Some(i) = &mut config.identity {
            i.resolve(path);
        }
        config
            .analytics
            .resolve(path, config.control_plane.as_ref());
        Ok(config)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(path: &str, text: &str) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: one_line(&e.to_string()),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };

        let listen = parse_addr(&file.gateway.listen)
            .map_err(|m| invalid(format!("gateway.listen: {m}")))?;
        let xdp_mode = file
            .xdp
            .mode
            .parse::<XdpMode>()
            .map_err(|m| invalid(format!("xdp.mode: {m}")))?;
        if file.xdp.iface.is_empty() || file.xdp.iface.len() >= IF_NAMESIZE {
            return Err(invalid(format!(
                "xdp.iface: \"{}\" is not a valid interface name (1 to 15 characters)",
                file.xdp.iface
            )));
        }
        let (apis, backends) = apis::build(&file.apis, &file.backends).map_err(invalid)?;
        let tls = match &file.tls {
            Some(t) => Some(t.validate().map_err(invalid)?),
            None => None,
        };
        let limits = file.limits.validate().map_err(invalid)?;
        let admin = match &file.admin {
            Some(a) => Some(a.validate().map_err(invalid)?),
            None => None,
        };
        let access_log = match file.gateway.access_log.as_deref() {
            None | Some("stdout") => AccessLogTarget::Stdout,
            Some("off") => AccessLogTarget::Off,
            Some("") => {
                return Err(invalid(
                    "gateway.access_log: empty; use \"stdout\", \"off\" or a file path".into(),
                ));
            }
            Some(path) => AccessLogTarget::File(path.into()),
        };
        let underscores_in_headers = match file.gateway.underscores_in_headers.as_deref() {
            None | Some("drop") => Underscores::Drop,
            Some("refuse") => Underscores::Refuse,
            Some("allow") => Underscores::Allow,
            Some(other) => {
                return Err(invalid(format!(
                    "gateway.underscores_in_headers: \"{other}\" is unknown; use \"drop\", \"refuse\" or \"allow\""
                )));
            }
        };
        let demo_backend = match &file.demo_backend {
            Some(d) => Some(
                parse_addr(&d.listen).map_err(|m| invalid(format!("demo_backend.listen: {m}")))?,
            ),
            None => None,
        };
        let dos = match &file.dos {
            Some(section) => Some(DosPolicy::try_from(section).map_err(invalid)?),
            None => None,
        };
        let catalog = match &file.catalog {
            Some(c) => Some(CatalogSource::File(c.validate().map_err(invalid)?)),
            None => None,
        };
        let escalation = match &file.escalation {
            Some(e) => Some(e.validate().map_err(invalid)?),
            None => None,
        };
        let control_plane = match &file.control_plane {
            Some(section) => {
                control_plane::check_no_managed(&[
                    ("[[apis]]", !file.apis.is_empty()),
                    ("[[backends]]", !file.backends.is_empty()),
                    ("[catalog]", file.catalog.is_some()),
                    ("[dos]", file.dos.is_some()),
                ])
                .map_err(invalid)?;
                Some(section.validate().map_err(invalid)?)
            }
            None => None,
        };
        let redis = match &file.redis {
            Some(r) => Some(r.validate().map_err(invalid)?),
            None => None,
        };
        let identity = match &file.identity {
            Some(i) => Some(i.validate().map_err(invalid)?),
            None => None,
        };
        let analytics = file.analytics.validate().map_err(invalid)?;
        let telemetry = file.telemetry.validate().map_err(invalid)?;
        Ok(Config {
            analytics,
            telemetry,
            redis,
            identity,
            control_plane,
            escalation,
            detach_on_exit: file.xdp.detach_on_exit,
            dos,
            catalog,
            listen,
            drain_timeout: std::time::Duration::from_secs(file.gateway.drain_timeout_secs),
            iface: file.xdp.iface,
            xdp_mode,
            apis,
            backends,
            demo_backend,
            tls,
            limits,
            admin,
            access_log,
            underscores_in_headers,
        })
    }
}

/// Linux's interface name buffer, with its terminating zero.
const IF_NAMESIZE: usize = 16;

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("\"{s}\" is not an address:port such as \"127.0.0.1:8080\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [gateway]
        listen = "127.0.0.1:8080"
        [xdp]
        iface = "lo"
        mode = "skb"
        [[apis]]
        name = "orders"
        path = "/orders/"
        backend = "http://127.0.0.1:9000/api/"
    "#;

    #[test]
    fn the_shipped_default_config_is_valid() {
        let text = include_str!("../../../config/edgegw.toml");
        let c = Config::parse("config/edgegw.toml", text).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.admin.unwrap().to_string(), "127.0.0.1:9901");
        assert_eq!(c.limits.max_header_bytes, 16384);
        assert_eq!(c.access_log, AccessLogTarget::Stdout);
    }

    #[test]
    fn parses_and_normalises() {
        let c = Config::parse("t.toml", GOOD).unwrap();
        assert_eq!(c.apis[0].prefix, "/orders");
        assert_eq!(c.apis[0].backend.base_path, "/api");
        assert_eq!(c.apis[0].backend.authority, "127.0.0.1:9000");
        assert_eq!(c.xdp_mode, XdpMode::Skb);
    }

    #[test]
    fn rejects_unknown_fields_with_location() {
        let err = Config::parse("t.toml", &GOOD.replace("mode = \"skb\"", "mdoe = \"skb\""))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:"), "{err}");
        assert!(err.contains("mdoe"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        let cases = [
            (
                "listen = \"127.0.0.1:8080\"",
                "listen = \"nope\"",
                "gateway.listen",
            ),
            ("mode = \"skb\"", "mode = \"turbo\"", "xdp.mode"),
            (
                "listen = \"127.0.0.1:8080\"",
                "listen = \"127.0.0.1:8080\"\nunderscores_in_headers = \"strip\"",
                "gateway.underscores_in_headers: \"strip\" is unknown; use \"drop\", \"refuse\" or \"allow\"",
            ),
            (
                "path = \"/orders/\"",
                "path = \"/orders/\"\nencoded_slashes = \"decode\"",
                "api \"orders\": encoded_slashes \"decode\" is unknown; use \"refuse\" or \"keep\"",
            ),
            (
                "path = \"/orders/\"",
                "path = \"orders\"",
                "must start with '/'",
            ),
            (
                "http://127.0.0.1:9000/api/",
                "ftp://x",
                "only http:// and https://",
            ),
        ];
        for (from, to, want) in cases {
            let err = Config::parse("t.toml", &GOOD.replace(from, to))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{to}: {err}");
        }
    }

    #[test]
    fn rejects_duplicate_prefixes() {
        let text = format!(
            "{GOOD}\n[[apis]]\nname = \"b\"\npath = \"/orders\"\nbackend = \"http://h:1\"\n"
        );
        let err = Config::parse("t.toml", &text).unwrap_err().to_string();
        assert!(err.contains("already used by api \"orders\""), "{err}");
    }
}
