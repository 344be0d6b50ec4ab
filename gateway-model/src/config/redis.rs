//! The `[redis]` section: the Redis that cluster-scoped rate limits
//! (`scope: cluster`) count in, shared by every gateway of the cluster.
//! The password is read from a file, never written in the configuration
//! or given on the command line.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// The `[redis]` section as written: in the node's file, or as the
/// control plane's `PUT /v1/redis` document carried in every bundle.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSection {
    /// `redis://HOST:PORT[/DB]`, or `rediss://...` for TLS (the server's
    /// certificate is checked against `ca_file`, or the system's CA
    /// certificates without it). A user name
    /// (`redis://USER@HOST`) is allowed; a password is not: use
    /// `password_file`.
    url: String,
    /// File holding the Redis password (or the ACL user's password); read
    /// once at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_file: Option<PathBuf>,
    /// PEM file of the CA certificates that sign the Redis server's
    /// certificate (`rediss://` only); without it, the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_file: Option<PathBuf>,
    /// PEM certificate the gateway presents to Redis (`rediss://` only),
    /// for a Redis with `tls-auth-clients yes` (its default). Needs
    /// `client_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_key_file: Option<PathBuf>,
    /// Milliseconds a connection attempt may take (default 500).
    #[serde(default = "default_connect_timeout")]
    connect_timeout_ms: u64,
    /// Milliseconds a command may take before Redis is taken as down and
    /// the cluster limits fall back to local counting (default 200).
    #[serde(default = "default_command_timeout")]
    command_timeout_ms: u64,
}

fn default_connect_timeout() -> u64 {
    500
}
fn default_command_timeout() -> u64 {
    200
}

/// Validated `[redis]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redis {
    /// As written, without a password.
    pub url: String,
    /// `rediss://`.
    pub tls: bool,
    pub password_file: Option<PathBuf>,
    /// CA certificates for the server (TLS only; `None`: the system's).
    pub ca_file: Option<PathBuf>,
    /// The client certificate and its key (TLS only).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

impl RedisSection {
    pub fn validate(&self) -> Result<Redis, String> {
        let url = self.url.trim();
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rediss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("redis://") {
            (false, rest)
        } else {
            return Err(format!(
                "redis.url: \"{}\" must start with redis:// (or rediss:// for TLS), e.g. \"redis://10.0.0.5:6379\"",
                self.url
            ));
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host = match authority.rsplit_once('@') {
            Some((user, _)) if user.contains(':') => {
                return Err(
                    "redis.url: holds a password; remove it from the URL and put it in password_file"
                        .into(),
                );
            }
            Some((_, host)) => host,
            None => authority,
        };
        let valid_host = match host.rsplit_once(':') {
            _ if host.starts_with('[') => host.contains(']'),
            Some((h, port)) => !h.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
            None => !host.is_empty(),
        };
        if !valid_host {
            return Err(format!(
                "redis.url: \"{}\" has no valid host[:port], e.g. \"redis://10.0.0.5:6379\"",
                self.url
            ));
        }
        for (field, value) in [
            ("password_file", &self.password_file),
            ("ca_file", &self.ca_file),
            ("client_cert_file", &self.client_cert_file),
            ("client_key_file", &self.client_key_file),
        ] {
            if value.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(format!(
                    "redis.{field}: empty; give the file's path, or remove the setting"
                ));
            }
            if field != "password_file" && value.is_some() && !tls {
                return Err(format!(
                    "redis.{field}: only used with TLS; write the url as rediss://, or remove {field}"
                ));
            }
        }
        let client_cert = match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(
                    "redis.client_cert_file: needs client_key_file, the certificate's private key"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "redis.client_key_file: needs client_cert_file, the certificate it belongs to"
                        .into(),
                );
            }
        };
        for (field, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("command_timeout_ms", self.command_timeout_ms),
        ] {
            if value == 0 || value > 60_000 {
                return Err(format!(
                    "redis.{field}: {value} is out of range; use 1 to 60000 (milliseconds)"
                ));
            }
        }
        Ok(Redis {
            url: url.into(),
            tls,
            password_file: self.password_file.clone(),
            ca_file: self.ca_file.clone(),
            client_cert,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            command_timeout: Duration::from_millis(self.command_timeout_ms),
        })
    }
}

impl Redis {
    /// The files a bundle's `redis` names are on every gateway node, and
    /// no config file gives a relative path a meaning there.
    pub(super) fn check_absolute(&self) -> Result<(), String> {
        let mut files = vec![
            ("password_file", &self.password_file),
            ("ca_file", &self.ca_file),
        ];
        let (cert, key) = match &self.client_cert {
            Some((cert, key)) => (Some(cert.clone()), Some(key.clone())),
            None => (None, None),
        };
        files.push(("client_cert_file", &cert));
        files.push(("client_key_file", &key));
        for (field, path) in files {
            if let Some(p) = path.as_ref().filter(|p| p.is_relative()) {
                return Err(format!(
                    "redis.{field}: \"{}\" is relative; give the absolute path the file has on the gateway nodes",
                    p.display()
                ));
            }
        }
        Ok(())
    }

    /// Relative file paths are relative to the config file.
    pub(super) fn resolve(&mut self, config: &Path) {
        let resolve = |p: &mut PathBuf| *p = super::catalog::resolve(p, config);
        self.password_file.iter_mut().for_each(resolve);
        self.ca_file.iter_mut().for_each(resolve);
        if let Some((cert, key)) = &mut self.client_cert {
            resolve(cert);
            resolve(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> Result<Redis, String> {
        toml::from_str::<RedisSection>(text)
            .map_err(|e| e.to_string())
            .and_then(|s| s.validate())
    }

    #[test]
    fn validates_urls_passwords_and_timeouts() {
        let ok = section("url = \"redis://127.0.0.1:6379\"").unwrap();
        assert_eq!(
            (ok.tls, ok.connect_timeout, ok.command_timeout),
            (
                false,
                Duration::from_millis(500),
                Duration::from_millis(200)
            )
        );
        let cases: &[(&str, Result<bool, &str>)] = &[
            ("url = \"rediss://cache.example:6380/2\"", Ok(true)),
            ("url = \"redis://edgegw@10.0.0.5\"", Ok(false)),
            ("url = \"redis://[::1]:6379\"", Ok(false)),
            (
                "url = \"redis://h:1\"\npassword_file = \"pw\"\ncommand_timeout_ms = 50",
                Ok(false),
            ),
            (
                "url = \"http://h:6379\"",
                Err("redis.url: \"http://h:6379\" must start with redis://"),
            ),
            (
                "url = \"redis://:secret@h:6379\"",
                Err("redis.url: holds a password"),
            ),
            (
                "url = \"redis://u:secret@h\"",
                Err("redis.url: holds a password"),
            ),
            (
                "url = \"redis://\"",
                Err("redis.url: \"redis://\" has no valid host"),
            ),
            (
                "url = \"redis://h:0\"",
                Err("redis.url: \"redis://h:0\" has no valid host"),
            ),
            (
                "url = \"redis://h:x\"",
                Err("redis.url: \"redis://h:x\" has no valid host"),
            ),
            (
                "url = \"redis://h\"\npassword_file = \"\"",
                Err("redis.password_file: empty"),
            ),
            (
                "url = \"rediss://h\"\nca_file = \"ca.pem\"\nclient_cert_file = \"c.pem\"\nclient_key_file = \"c.key\"",
                Ok(true),
            ),
            (
                "url = \"redis://h\"\nca_file = \"ca.pem\"",
                Err("redis.ca_file: only used with TLS; write the url as rediss://"),
            ),
            (
                "url = \"rediss://h\"\nca_file = \"\"",
                Err("redis.ca_file: empty"),
            ),
            (
                "url = \"rediss://h\"\nclient_cert_file = \"c.pem\"",
                Err("redis.client_cert_file: needs client_key_file"),
            ),
            (
                "url = \"rediss://h\"\nclient_key_file = \"c.key\"",
                Err("redis.client_key_file: needs client_cert_file"),
            ),
            (
                "url = \"redis://h\"\ncommand_timeout_ms = 0",
                Err("redis.command_timeout_ms: 0 is out of range"),
            ),
            (
                "url = \"redis://h\"\nconnect_timeout_ms = 60001",
                Err("redis.connect_timeout_ms: 60001 is out of range"),
            ),
            (
                "url = \"redis://h\"\npassword = \"x\"",
                Err("unknown field `password`"),
            ),
        ];
        for (text, want) in cases {
            match (section(text), want) {
                (Ok(got), Ok(tls)) => assert_eq!(got.tls, *tls, "{text}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
