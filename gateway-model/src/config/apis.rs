//! The `[[apis]]` and `[[backends]]` sections: published APIs, their
//! operations (method + URL template) and the backends they forward to.

use std::{path::PathBuf, time::Duration};

use http::{Method, Uri};
use serde::{Deserialize, Serialize};

use super::{pool, template::UrlTemplate};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// Path prefix, e.g. "/orders". Requests under it go to `backend`.
    pub path: String,
    /// Optional host (the Host header or :authority, without port); an API
    /// with a host is preferred over one without for the same prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Backend base URL ("http://10.0.0.5:8080/api") or the name of a
    /// `[[backends]]` entry.
    pub backend: String,
    /// Operations; when empty every request under the prefix is accepted.
    #[serde(default)]
    pub operations: Vec<OperationSection>,
    /// Whether clients may open WebSocket connections (HTTP/1.1 Upgrade)
    /// through this API; an operation can say otherwise. Default false:
    /// upgrade requests are refused with 403.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub websocket: bool,
    /// What to do with `%2F` in a request path: "refuse" (default, 400)
    /// or "keep" it as data inside its segment (for backends that read
    /// `a%2Fb` as one name and never decode it into a separator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded_slashes: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSection {
    /// Unique name within the API, used in logs and metrics.
    pub name: String,
    /// HTTP method, or "*" for any.
    pub method: String,
    /// URL template relative to the API path: "/orders/{id}", "/*".
    pub url: String,
    /// Whether WebSocket upgrades are allowed; default: the API's setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// Name APIs refer to.
    pub name: String,
    /// Base URL: http:// or https://. Leave it out for a pool (`members`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// A pool: several members sharing the load, instead of `url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<pool::MemberSection>,
    /// How a pool's member is chosen: "round-robin" (default, weighted) or
    /// "least-requests".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    /// Active health checks of each member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<pool::HealthCheckSection>,
    /// Passive ejection of members failing live traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ejection: Option<pool::EjectionSection>,
    /// The circuit breaker (per member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<pool::CircuitBreakerSection>,
    /// Milliseconds between resolutions of a pool's host names (default
    /// 30000): every address a name resolves to is a member of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_interval_ms: Option<u64>,
    /// "http1" (default) or "http2" (prior knowledge on http://, ALPN on https://).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// PEM file of CA certificates that sign the backend's certificate
    /// (https only; default: the system bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM certificate (chain) presented to a backend that asks for a
    /// client certificate (https only; with `client_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Milliseconds to establish the connection (502 when it fails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Milliseconds until the response headers arrive (504 after).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_timeout_ms: Option<u64>,
}

/// One published API.
#[derive(Clone, Debug)]
pub struct Api {
    /// Shared: every request's record holds it.
    pub name: std::sync::Arc<str>,
    /// Normalised prefix: starts with '/', no trailing '/' unless it is "/".
    pub prefix: String,
    /// Lower-case host without port, if the API is bound to one.
    pub host: Option<String>,
    pub backend: Backend,
    pub operations: Vec<Operation>,
    /// WebSocket upgrades allowed on requests without an operation.
    pub websocket: bool,
    pub encoded_slashes: EncodedSlashes,
}

/// What an API does with `%2F` in a request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodedSlashes {
    Refuse,
    /// Kept as data in its segment (never a separator).
    Keep,
}

/// One operation of an API.
#[derive(Clone, Debug)]
pub struct Operation {
    pub name: std::sync::Arc<str>,
    /// `None` matches any method.
    pub method: Option<Method>,
    pub template: UrlTemplate,
    /// WebSocket upgrades allowed (its own setting, else the API's).
    pub websocket: bool,
}

/// HTTP version spoken to a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendProtocol {
    Http1,
    Http2,
}

/// Where and how requests of an API are forwarded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Backend {
    pub scheme: String,
    pub authority: String,
    pub base_path: String,
    pub protocol: BackendProtocol,
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// Set for a pool (`members`, or a `url` with a health check or a
    /// circuit breaker): `authority` is then its first member's.
    pub pool: Option<std::sync::Arc<pool::PoolSpec>>,
    /// The client certificate presented to it (mutual TLS), if any.
    pub client_identity: Option<ClientIdentity>,
}

/// A client certificate and its key, presented to a backend or the
/// control plane that asks for one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    pub cert: CertSource,
    /// PEM private key file.
    pub key: PathBuf,
}

/// Where a client certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CertSource {
    /// A PEM file (the chain, leaf first).
    File(PathBuf),
    /// A catalog certificate (`authentication-certificate`), DER.
    Der(std::sync::Arc<[u8]>),
}

const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_RESPONSE_TIMEOUT_MS: u64 = 60_000;

/// A `[[backends]]` entry (or one the control plane serves), by the name
/// APIs and `set-backend-service backend-id` refer to.
pub type NamedBackend = (String, Backend);

/// Validates the APIs and the backends they use; also gives the named
/// backends back, for policies that pick one by name.
pub(super) fn build(
    apis: &[ApiSection],
    backends: &[BackendSection],
) -> Result<(Vec<Api>, Vec<NamedBackend>), String> {
    let mut named = Vec::with_capacity(backends.len());
    for b in backends {
        if b.name.is_empty() || named.iter().any(|(n, _): &(String, Backend)| *n == b.name) {
            return Err(format!(
                "backends: name \"{}\" is empty or used twice; give each backend a unique name",
                b.name
            ));
        }
        let backend = parse_backend(b).map_err(|m| format!("backend \"{}\": {m}", b.name))?;
        named.push((b.name.clone(), backend));
    }
    let mut out: Vec<Api> = Vec::with_capacity(apis.len());
    for api in apis {
        let at = |m: String| format!("api \"{}\": {m}", api.name);
        if api.name.is_empty() {
            return Err("apis: an API has an empty name; give each API a unique name".into());
        }
        if out.iter().any(|a| *a.name == *api.name) {
            return Err(at("duplicate API name; names must be unique".into()));
        }
        let prefix = normalise_prefix(&api.path).map_err(at)?;
        let host = api.host.as_ref().map(|h| h.to_ascii_lowercase());
        if let Some(other) = out.iter().find(|a| a.prefix == prefix && a.host == host) {
            return Err(at(format!(
                "path \"{prefix}\" is already used by api \"{}\"",
                other.name
            )));
        }
        let backend = if api.backend.contains("://") {
            parse_backend(&BackendSection {
                name: String::new(),
                url: api.backend.clone(),
                members: Vec::new(),
                balance: None,
                health_check: None,
                ejection: None,
                circuit_breaker: None,
                resolve_interval_ms: None,
                protocol: None,
                ca_file: None,
                client_cert: None,
                client_key: None,
                connect_timeout_ms: None,
                response_timeout_ms: None,
            })
            .map_err(at)?
        } else {
            named
                .iter()
                .find(|(n, _)| *n == api.backend)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| {
                    at(format!(
                        "backend \"{}\" is neither a URL nor the name of a [[backends]] entry",
                        api.backend
                    ))
                })?
        };
        let mut operations: Vec<Operation> = Vec::with_capacity(api.operations.len());
        for op in &api.operations {
            let at = |m: String| at(format!("operation \"{}\": {m}", op.name));
            if op.name.is_empty() || operations.iter().any(|o| *o.name == *op.name) {
                return Err(at("name is empty or used twice in this API".into()));
            }
            let method = match op.method.as_str() {
                "*" => None,
                m => Some(
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| at(format!("method \"{m}\" is not an HTTP method")))?,
                ),
            };
            let template = UrlTemplate::parse(&op.url).map_err(at)?;
            operations.push(Operation {
                name: op.name.as_str().into(),
                method,
                template,
                websocket: op.websocket.unwrap_or(api.websocket),
            });
        }
        let encoded_slashes = match api.encoded_slashes.as_deref() {
            None | Some("refuse") => EncodedSlashes::Refuse,
            Some("keep") => EncodedSlashes::Keep,
            Some(other) => {
                return Err(at(format!(
                    "encoded_slashes \"{other}\" is unknown; use \"refuse\" or \"keep\""
                )));
            }
        };
        out.push(Api {
            name: api.name.as_str().into(),
            prefix,
            host,
            backend,
            operations,
            websocket: api.websocket,
            encoded_slashes,
        });
    }
    Ok((out, named))
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

fn parse_backend(b: &BackendSection) -> Result<Backend, String> {
    let pooled = !b.members.is_empty()
        || b.balance.is_some()
        || b.health_check.is_some()
        || b.ejection.is_some()
        || b.circuit_breaker.is_some()
        || b.resolve_interval_ms.is_some();
    let single = [pool::MemberSection {
        url: b.url.clone(),
        weight: None,
        priority: None,
    }];
    let pool = match (b.url.is_empty(), b.members.is_empty()) {
        (true, true) => {
            return Err("has neither url nor members; give it url = \"http://HOST:PORT\" or a list of members".into());
        }
        (false, false) => {
            return Err(
                "has both url and members; keep one (a pool lists its URLs in members)".into(),
            );
        }
        (_, false) => Some(&b.members[..]),
        (false, true) => pooled.then_some(&single[..]),
    };
    let pool = pool
        .map(|members| {
            pool::PoolSections {
                name: &b.name,
                members,
                balance: b.balance.as_deref(),
                health_check: b.health_check.as_ref(),
                ejection: b.ejection.as_ref(),
                circuit_breaker: b.circuit_breaker.as_ref(),
                resolve_interval_ms: b.resolve_interval_ms,
            }
            .parse()
        })
        .transpose()?;
    let first;
    let url = match &pool {
        Some(p) => {
            first = format!(
                "{}://{}{}",
                p.scheme, p.spec.members[0].authority, p.base_path
            );
            &first
        }
        None => &b.url,
    };
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("backend \"{url}\" is not a URL such as \"http://127.0.0.1:9000\""))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "backend \"{url}\": only http:// and https:// backends are supported"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("backend \"{url}\" has no host"))?
        .to_string();
    if uri.query().is_some() {
        return Err(format!("backend \"{url}\" must not have a query string"));
    }
    let protocol = match b.protocol.as_deref() {
        None | Some("http1") => BackendProtocol::Http1,
        Some("http2") => BackendProtocol::Http2,
        Some(other) => {
            return Err(format!(
                "protocol \"{other}\" is unknown; use \"http1\" or \"http2\""
            ));
        }
    };
    if b.ca_file.is_some() && scheme != "https" {
        return Err(format!(
            "ca_file is set but backend \"{url}\" is not https://"
        ));
    }
    let client_identity = match (&b.client_cert, &b.client_key) {
        (None, None) => None,
        (Some(_), Some(_)) if scheme != "https" => {
            return Err(format!(
                "client_cert is set but backend \"{url}\" is not https://; a client certificate is only presented over TLS"
            ));
        }
        (Some(cert), Some(key)) => Some(ClientIdentity {
            cert: CertSource::File(cert.clone()),
            key: key.clone(),
        }),
        (Some(_), None) => {
            return Err("client_cert needs client_key, the PEM file of its private key".into());
        }
        (None, Some(_)) => {
            return Err("client_key needs client_cert, the PEM file of the certificate".into());
        }
    };
    let ms = |v: Option<u64>, default: u64, field: &str| match v.unwrap_or(default) {
        0 => Err(format!("{field} must be greater than 0")),
        v => Ok(Duration::from_millis(v)),
    };
    Ok(Backend {
        scheme: scheme.into(),
        authority,
        base_path: uri.path().trim_end_matches('/').into(),
        protocol,
        ca_file: b.ca_file.clone(),
        connect_timeout: ms(
            b.connect_timeout_ms,
            DEFAULT_CONNECT_TIMEOUT_MS,
            "connect_timeout_ms",
        )?,
        response_timeout: ms(
            b.response_timeout_ms,
            DEFAULT_RESPONSE_TIMEOUT_MS,
            "response_timeout_ms",
        )?,
        pool: pool.map(|p| p.spec),
        client_identity,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, EncodedSlashes};

    #[test]
    fn websocket_and_encoded_slashes_defaults_and_overrides() {
        let text = r#"
            [gateway]
            listen = "127.0.0.1:1"
            [[apis]]
            name = "plain"
            path = "/plain"
            backend = "http://b:1"
            [[apis.operations]]
            name = "op"
            method = "GET"
            url = "/x"
            [[apis]]
            name = "live"
            path = "/live"
            backend = "http://b:1"
            websocket = true
            encoded_slashes = "keep"
            [[apis.operations]]
            name = "inherits"
            method = "GET"
            url = "/a"
            [[apis.operations]]
            name = "not-here"
            method = "GET"
            url = "/b"
            websocket = false
        "#;
        let apis = Config::parse("t.toml", text).unwrap().apis;
        let (plain, live) = (&apis[0], &apis[1]);
        assert!(!plain.websocket && !plain.operations[0].websocket);
        assert_eq!(plain.encoded_slashes, EncodedSlashes::Refuse);
        assert!(live.websocket && live.operations[0].websocket);
        assert!(!live.operations[1].websocket);
        assert_eq!(live.encoded_slashes, EncodedSlashes::Keep);
    }
}
