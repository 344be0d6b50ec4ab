//! The `[control_plane]` section: where a centrally managed gateway gets
//! its APIs, backends, catalog and DoS profile (see
//! `docs/sync-protocol.md`). With it, the file holds only what is the
//! node's own (listeners, XDP attachment, limits, admin).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ControlPlaneSection {
    /// Base URL of the control plane, `https://` only.
    #[serde(default)]
    url: Option<String>,
    /// Several base URLs of one control plane (replicas on one database),
    /// tried in order: a gateway moves to the next when one is down.
    /// Instead of `url`.
    #[serde(default)]
    urls: Vec<String>,
    /// File holding this gateway's token; re-read on every attempt so an
    /// operator can replace it without a restart.
    token_file: PathBuf,
    /// CA bundle (PEM) the control plane's certificate chains to; default:
    /// the system trust store.
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// PEM certificate (chain) this gateway presents to a control plane
    /// that requires client certificates (`edgegw-cp serve
    /// --tls-client-ca`); with `client_key`. The token is still sent.
    #[serde(default)]
    client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default)]
    client_key: Option<PathBuf>,
    /// Where applied configurations are kept for a start without the
    /// control plane.
    #[serde(default = "default_backup_dir")]
    backup_dir: PathBuf,
    /// How many applied configurations are kept.
    #[serde(default = "default_generations")]
    backup_generations: usize,
    /// Seconds between heartbeats (status and quota usage).
    #[serde(default = "default_heartbeat")]
    heartbeat_secs: u64,
    /// Seconds the control plane may hold a configuration long-poll.
    #[serde(default = "default_poll_wait")]
    poll_wait_secs: u64,
    /// Seconds a start without a valid backup waits for the control plane.
    #[serde(default = "default_startup_timeout")]
    startup_timeout_secs: u64,
}

fn default_backup_dir() -> PathBuf {
    "/var/lib/edgegw/backup".into()
}
fn default_generations() -> usize {
    5
}
fn default_heartbeat() -> u64 {
    5
}
fn default_poll_wait() -> u64 {
    30
}
fn default_startup_timeout() -> u64 {
    10
}

/// Validated `[control_plane]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPlane {
    /// Base URL without a trailing slash, e.g. `https://cp.example:8443`:
    /// the first of `urls`.
    pub url: String,
    /// Every base URL, in the order they are tried (one or more).
    pub urls: Vec<String>,
    pub token_file: PathBuf,
    pub ca_file: Option<PathBuf>,
    /// The client certificate presented to the control plane, if any.
    pub client_identity: Option<super::ClientIdentity>,
    pub backup_dir: PathBuf,
    pub backup_generations: usize,
    pub heartbeat: Duration,
    pub poll_wait: Duration,
    pub startup_timeout: Duration,
}

impl ControlPlaneSection {
    pub(super) fn validate(&self) -> Result<ControlPlane, String> {
        let urls: Vec<String> = match (&self.url, self.urls.as_slice()) {
            (Some(url), []) => vec![check_url("control_plane.url", url)?],
            (None, []) => {
                return Err(
                    "control_plane: give the control plane's url = \"https://...\" (or urls = [...] for several replicas)"
                        .into(),
                );
            }
            (None, urls) => urls
                .iter()
                .enumerate()
                .map(|(i, u)| check_url(&format!("control_plane.urls[{i}]"), u))
                .collect::<Result<_, _>>()?,
            (Some(_), _) => {
                return Err(
                    "control_plane: url and urls both given; keep one (urls lists every replica)"
                        .into(),
                );
            }
        };
        if let Some((i, dup)) = urls
            .iter()
            .enumerate()
            .find(|(i, u)| urls[..*i].contains(u))
        {
            return Err(format!(
                "control_plane.urls[{i}]: \"{dup}\" is listed twice; list each replica once"
            ));
        }
        if self.token_file.as_os_str().is_empty() {
            return Err(
                "control_plane.token_file: empty; give the file holding this gateway's token"
                    .into(),
            );
        }
        if self.backup_generations == 0 || self.backup_generations > 100 {
            return Err(format!(
                "control_plane.backup_generations: {} is out of range; use 1 to 100",
                self.backup_generations
            ));
        }
        for (field, value, max) in [
            ("heartbeat_secs", self.heartbeat_secs, 3600),
            ("poll_wait_secs", self.poll_wait_secs, 60),
            ("startup_timeout_secs", self.startup_timeout_secs, 3600),
        ] {
            if value == 0 || value > max {
                return Err(format!(
                    "control_plane.{field}: {value} is out of range; use 1 to {max}"
                ));
            }
        }
        let client_identity = match (&self.client_cert, &self.client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(super::ClientIdentity {
                cert: super::CertSource::File(cert.clone()),
                key: key.clone(),
            }),
            (Some(_), None) => {
                return Err(
                    "control_plane.client_cert needs client_key, the PEM file of its private key"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "control_plane.client_key needs client_cert, the PEM file of the certificate"
                        .into(),
                );
            }
        };
        Ok(ControlPlane {
            client_identity,
            url: urls[0].clone(),
            urls,
            token_file: self.token_file.clone(),
            ca_file: self.ca_file.clone(),
            backup_dir: self.backup_dir.clone(),
            backup_generations: self.backup_generations,
            heartbeat: Duration::from_secs(self.heartbeat_secs),
            poll_wait: Duration::from_secs(self.poll_wait_secs),
            startup_timeout: Duration::from_secs(self.startup_timeout_secs),
        })
    }
}

/// A base URL without its trailing slash; `https://` with a host only.
fn check_url(field: &str, url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let uri: http::Uri = trimmed.parse().map_err(|_| {
        format!("{field}: \"{url}\" is not a URL such as \"https://cp.example:8443\"")
    })?;
    if uri.scheme_str() != Some("https") || uri.authority().is_none() {
        return Err(format!(
            "{field}: \"{url}\" must start with https:// (the gateway only talks to its control plane over TLS)"
        ));
    }
    Ok(trimmed.to_string())
}

impl ControlPlane {
    /// Relative paths as seen from the directory of the file at `config`.
    pub(super) fn resolve(&mut self, config: &Path) {
        self.token_file = super::catalog::resolve(&self.token_file, config);
        self.backup_dir = super::catalog::resolve(&self.backup_dir, config);
        if let Some(ca) = &self.ca_file {
            self.ca_file = Some(super::catalog::resolve(ca, config));
        }
        if let Some(id) = &mut self.client_identity {
            id.key = super::catalog::resolve(&id.key, config);
            if let super::CertSource::File(f) = &id.cert {
                id.cert = super::CertSource::File(super::catalog::resolve(f, config));
            }
        }
    }
}

/// With a control plane, the managed sections come from it only: one
/// source of truth. `present` lists the sections the file defines.
pub(super) fn check_no_managed(present: &[(&str, bool)]) -> Result<(), String> {
    let clashing: Vec<&str> = present
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
    if clashing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} cannot be used with [control_plane]: the control plane serves APIs, backends, the catalog and the DoS profile; remove {} from this file",
        clashing.join(", "),
        if clashing.len() == 1 { "it" } else { "them" }
    ))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[gateway]\nlisten = \"127.0.0.1:8080\"\n";

    fn parse(rest: &str) -> Result<Config, String> {
        Config::parse("t.toml", &format!("{BASE}{rest}")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_paths() {
        let c = parse("[control_plane]\nurl = \"https://cp:8443/\"\ntoken_file = \"t\"\n")
            .unwrap()
            .control_plane
            .unwrap();
        assert_eq!(c.url, "https://cp:8443");
        assert_eq!(c.urls, ["https://cp:8443"]);
        assert_eq!(c.backup_generations, 5);
        assert_eq!(c.heartbeat.as_secs(), 5);
        assert_eq!(c.poll_wait.as_secs(), 30);
        assert_eq!(c.startup_timeout.as_secs(), 10);
        assert_eq!(c.backup_dir.to_str(), Some("/var/lib/edgegw/backup"));
    }

    #[test]
    fn several_urls_are_kept_in_order() {
        let c = parse(
            "[control_plane]\nurls = [\"https://a:1/\", \"https://b:2\"]\ntoken_file = \"t\"\n",
        )
        .unwrap()
        .control_plane
        .unwrap();
        assert_eq!(c.urls, ["https://a:1", "https://b:2"]);
        assert_eq!(c.url, "https://a:1");
    }

    #[test]
    fn refuses_plain_http_bad_values_and_managed_sections() {
        for (rest, want) in [
            (
                "url = \"http://cp:80\"\ntoken_file = \"t\"",
                "must start with https://",
            ),
            (
                "url = \"https://cp\"\ntoken_file = \"t\"\nbackup_generations = 0",
                "backup_generations",
            ),
            (
                "url = \"https://cp\"\ntoken_file = \"t\"\npoll_wait_secs = 61",
                "poll_wait_secs",
            ),
            ("url = \"https://cp\"\ntoken_fiel = \"t\"", "token_fiel"),
            (
                "urls = [\"https://a\", \"http://b\"]\ntoken_file = \"t\"",
                "control_plane.urls[1]: \"http://b\" must start with https://",
            ),
            (
                "urls = [\"https://a\", \"https://a/\"]\ntoken_file = \"t\"",
                "listed twice",
            ),
            (
                "url = \"https://a\"\nurls = [\"https://b\"]\ntoken_file = \"t\"",
                "url and urls both given",
            ),
            ("token_file = \"t\"", "give the control plane's url"),
            (
                "url = \"https://cp\"\ntoken_file = \"t\"\nclient_cert = \"c.pem\"",
                "control_plane.client_cert needs client_key",
            ),
        ] {
            let err = parse(&format!("[control_plane]\n{rest}\n")).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let err = parse(
            "[control_plane]\nurl = \"https://cp\"\ntoken_file = \"t\"\n[[apis]]\nname = \"a\"\npath = \"/a\"\nbackend = \"http://h:1\"\n[dos]\npackets_per_sec = 10\npacket_burst = 10\n",
        )
        .unwrap_err();
        assert!(
            err.contains("[[apis]], [dos] cannot be used with [control_plane]"),
            "{err}"
        );
    }
}
