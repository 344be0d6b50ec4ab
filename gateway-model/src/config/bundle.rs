//! The centrally managed part of a gateway's configuration, as the control
//! plane serves it (`GET /v1/gateway/config`, JSON; see
//! `docs/sync-protocol.md`): the APIs, named backends, the API-management
//! catalog and the DoS profile. Everything else (listeners, XDP attachment,
//! limits, admin) stays in the node's own file.
//!
//! One validation for both sides: the control plane checks every write
//! with `Bundle::check`, the gateway with `Config::with_bundle` before it
//! swaps a bundle in, so what the control plane accepts the gateway runs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    CatalogSource, Config, ConfigError, DosPolicy, Redis, RedisSection,
    apis::{self, ApiSection, BackendSection},
    dos::DosSection,
};
use crate::catalog::{Catalog, CatalogError};

/// Where bundle problems are reported from.
const ORIGIN: &str = "control plane configuration";

/// Read by the gateway, built by the control plane (serialised as is).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Configuration generation; grows with every change.
    pub version: u64,
    /// Same shape as the file's `[[apis]]`.
    #[serde(default)]
    pub apis: Vec<ApiSection>,
    /// Same shape as the file's `[[backends]]`.
    #[serde(default)]
    pub backends: Vec<BackendSection>,
    /// Same model as `catalog.yaml` (`catalog::file::CatalogFile`: named
    /// values, products, subscriptions, policies at every scope). Kept as
    /// its raw text, read once by the catalog's own parser, which reports
    /// its structure errors with their place (a catalog of 100,000
    /// subscriptions is 12 MB: building a JSON tree of it first, then
    /// reading that, costs more than reading it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Box<serde_json::value::RawValue>>,
    /// Same shape as the file's `[dos]`: what XDP enforces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dos: Option<DosSection>,
    /// Same shape as the file's `[redis]`: the Redis that cluster rate
    /// limits count in, for gateways whose own file has no `[redis]`
    /// (a node's own section wins: it knows its network). File paths are
    /// absolute paths on the gateway nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSection>,
}

/// A bundle's parts, validated.
struct Managed {
    apis: Vec<super::Api>,
    backends: Vec<super::NamedBackend>,
    dos: Option<DosPolicy>,
    /// The catalog, validated against `apis`.
    catalog: Option<Arc<Catalog>>,
    redis: Option<Redis>,
}

impl Bundle {
    /// Parses the JSON text served by the control plane.
    pub fn parse(text: &str) -> Result<Bundle, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            path: ORIGIN.into(),
            message: e.to_string(),
        })
    }

    /// Validates the bundle on its own: every problem, each with its place,
    /// joined into one line.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.validated().map(drop)
    }

    fn validated(&self) -> Result<Managed, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: ORIGIN.into(),
            message,
        };
        let (apis, backends) = apis::build(&self.apis, &self.backends).map_err(invalid)?;
        let dos = match &self.dos {
            Some(section) => Some(DosPolicy::try_from(section).map_err(invalid)?),
            None => None,
        };
        let catalog = match &self.catalog {
            Some(raw) => {
                let origin = format!("{ORIGIN}: catalog");
                let catalog = Catalog::parse(&origin, raw.get(), Some(&apis), Some(&backends))
                    .map_err(|e| match e {
                        CatalogError::Invalid { problems } => ConfigError::Invalid {
                            path: ORIGIN.into(),
                            message: problems.join("; "),
                        },
                        other => invalid(other.to_string()),
                    })?;
                Some(Arc::new(catalog))
            }
            None => None,
        };
        let redis = match &self.redis {
            Some(section) => {
                let redis = section.validate().map_err(invalid)?;
                redis.check_absolute().map_err(invalid)?;
                Some(redis)
            }
            None => None,
        };
        Ok(Managed {
            apis,
            backends,
            dos,
            catalog,
            redis,
        })
    }
}

impl Config {
    /// This node's configuration with the managed parts taken from
    /// `bundle`, validated whole (nothing of a bad bundle is used).
    pub fn with_bundle(&self, bundle: &Bundle) -> Result<Config, ConfigError> {
        let Managed {
            apis,
            backends,
            dos,
            catalog,
            redis,
        } = bundle.validated()?;
        Ok(Config {
            apis,
            backends,
            dos,
            catalog: catalog.map(CatalogSource::Bundled),
            redis: self.redis.clone().or(redis),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config::parse("t.toml", "[gateway]\nlisten = \"127.0.0.1:8080\"\n").unwrap()
    }

    const GOOD: &str = r#"{
        "version": 3,
        "apis": [{"name": "orders", "path": "/orders", "backend": "http://127.0.0.1:9000",
                  "operations": [{"name": "get", "method": "GET", "url": "/{id}"}]}],
        "catalog": {"apis": [{"name": "orders", "subscription_required": false,
                              "policies": {"inbound": [{"set-header": {"name": "x-a", "value": "1"}}]}}]},
        "dos": {"packets_per_sec": 1000, "packet_burst": 2000}
    }"#;

    #[test]
    fn a_valid_bundle_replaces_the_managed_parts() {
        let bundle = Bundle::parse(GOOD).unwrap();
        bundle.check().unwrap();
        let config = base().with_bundle(&bundle).unwrap();
        assert_eq!(bundle.version, 3);
        assert_eq!(&*config.apis[0].name, "orders");
        assert!(config.dos.is_some());
        assert!(matches!(config.catalog, Some(CatalogSource::Bundled(_))));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn problems_name_their_place_on_one_line() {
        for (from, to, want) in [
            ("\"version\": 3", "\"versoin\": 3", "versoin"),
            ("/orders\"", "orders\"", "must start with '/'"),
            (
                "\"packet_burst\": 2000",
                "\"packet_burst\": 2000, \"ipv6_prefix\": 0",
                "dos.ipv6_prefix",
            ),
            ("\"set-header\"", "\"set-haeder\"", "set-haeder"),
            (
                "\"name\": \"orders\", \"subscription",
                "\"name\": \"nope\", \"subscription",
                "nope",
            ),
        ] {
            let text = GOOD.replace(from, to);
            assert_ne!(text, GOOD, "{from}");
            let err = Bundle::parse(&text)
                .and_then(|b| base().with_bundle(&b))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(ORIGIN), "{err}");
            assert!(err.contains(want), "{want}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
