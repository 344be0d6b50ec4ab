//! The daemon's configuration file (`config/edgegw.toml`).
//!
//! The file is parsed into `FileConfig` (serde, unknown fields rejected) and
//! converted into the validated `Config`; the rest of the daemon never sees
//! unvalidated values.

mod dos;
mod duration;

pub use dos::DosPolicy;
pub use duration::parse_duration;

use std::{net::SocketAddr, path::Path};

use hyper::Uri;
use serde::Deserialize;

use crate::datapath::XdpMode;

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
    /// Published APIs, matched by longest path prefix.
    #[serde(default)]
    apis: Vec<ApiSection>,
    /// Optional built-in echo backend, used by the demo configuration.
    demo_backend: Option<DemoBackendSection>,
    /// What the XDP program enforces; absent: it counts and passes everything.
    dos: Option<dos::DosSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewaySection {
    /// Address of the HTTP listener, e.g. "0.0.0.0:8080".
    listen: String,
    /// Seconds that in-flight requests get to finish on SIGTERM/SIGINT.
    #[serde(default = "default_drain_secs")]
    drain_timeout_secs: u64,
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
struct ApiSection {
    /// Unique name, used in logs and metrics.
    name: String,
    /// Path prefix, e.g. "/orders". Requests under it go to `backend`.
    path: String,
    /// Backend base URL, e.g. "http://10.0.0.5:8080/api".
    backend: String,
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
    pub demo_backend: Option<SocketAddr>,
    pub detach_on_exit: bool,
    pub dos: Option<DosPolicy>,
}

/// One published API.
#[derive(Clone, Debug)]
pub struct Api {
    pub name: String,
    /// Normalised prefix: starts with '/', no trailing '/' unless it is "/".
    pub prefix: String,
    /// Backend base: scheme and authority, plus a path without trailing '/'.
    pub backend: Backend,
}

#[derive(Clone, Debug)]
pub struct Backend {
    pub scheme: String,
    pub authority: String,
    pub base_path: String,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&shown, &text)
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
        if file.xdp.iface.is_empty() || file.xdp.iface.len() >= libc::IF_NAMESIZE {
            return Err(invalid(format!(
                "xdp.iface: \"{}\" is not a valid interface name (1 to 15 characters)",
                file.xdp.iface
            )));
        }
        let mut apis = Vec::with_capacity(file.apis.len());
        for api in &file.apis {
            let at = |m: String| invalid(format!("api \"{}\": {m}", api.name));
            if api.name.is_empty() {
                return Err(invalid(
                    "apis: an API has an empty name; give each API a unique name".into(),
                ));
            }
            if apis.iter().any(|a: &Api| a.name == api.name) {
                return Err(at("duplicate API name; names must be unique".into()));
            }
            let prefix = normalise_prefix(&api.path).map_err(at)?;
            if let Some(other) = apis.iter().find(|a: &&Api| a.prefix == prefix) {
                return Err(at(format!(
                    "path \"{prefix}\" is already used by api \"{}\"",
                    other.name
                )));
            }
            let backend = parse_backend(&api.backend).map_err(at)?;
            apis.push(Api {
                name: api.name.clone(),
                prefix,
                backend,
            });
        }
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
        Ok(Config {
            detach_on_exit: file.xdp.detach_on_exit,
            dos,
            listen,
            drain_timeout: std::time::Duration::from_secs(file.gateway.drain_timeout_secs),
            iface: file.xdp.iface,
            xdp_mode,
            apis,
            demo_backend,
        })
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("\"{s}\" is not an address:port such as \"127.0.0.1:8080\""))
}

fn normalise_prefix(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("path \"{path}\" must start with '/'"));
    }
    if path.contains(['?', '#', ' ']) {
        return Err(format!(
            "path \"{path}\" must not contain '?', '#' or spaces"
        ));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    })
}

fn parse_backend(url: &str) -> Result<Backend, String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("backend \"{url}\" is not a URL such as \"http://127.0.0.1:9000\""))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if scheme != "http" {
        return Err(format!(
            "backend \"{url}\": only http:// backends are supported"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("backend \"{url}\" has no host"))?
        .to_string();
    if uri.query().is_some() {
        return Err(format!("backend \"{url}\" must not have a query string"));
    }
    Ok(Backend {
        scheme: scheme.into(),
        authority,
        base_path: uri.path().trim_end_matches('/').into(),
    })
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
                "path = \"/orders/\"",
                "path = \"orders\"",
                "must start with '/'",
            ),
            ("http://127.0.0.1:9000/api/", "ftp://x", "only http://"),
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
