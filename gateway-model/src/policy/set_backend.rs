//! `set-backend-service`: sends the request to another backend base URL
//! or to one of the gateway's named backends (`backend_id`; the path after
//! the API prefix is appended to it, as for the API's own backend).

use std::{sync::Arc, time::Duration};

use http::Uri;
use serde::Deserialize;
use serde_yaml::Value;

use crate::config::{Backend, BackendProtocol};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Backend base URL: http:// or https://.
    #[serde(default)]
    base_url: Option<String>,
    /// The name of a `[[backends]]` entry (checked against the gateway's
    /// backends when the catalog is validated with them).
    #[serde(default)]
    backend_id: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Target {
    Url(Arc<Backend>),
    Named(String),
}

#[derive(Clone, Debug)]
pub struct SetBackendSpec {
    pub target: Target,
}

impl SetBackendSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let url = match (f.base_url, f.backend_id) {
            (Some(url), None) => url,
            (None, Some(id)) if !id.is_empty() => {
                return Ok(SetBackendSpec {
                    target: Target::Named(id),
                });
            }
            _ => {
                return Err(
                    "give either base_url (a URL) or backend_id (a named backend), one of them"
                        .into(),
                );
            }
        };
        let url = &url;
        let uri: Uri = url.parse().map_err(|_| {
            format!("base_url \"{url}\" is not a URL such as \"http://10.0.0.5:8080/api\"")
        })?;
        let scheme = uri.scheme_str().unwrap_or_default();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "base_url \"{url}\": only http:// and https:// are supported"
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("base_url \"{url}\" has no host"))?
            .to_string();
        if uri.query().is_some() {
            return Err(format!("base_url \"{url}\" must not have a query string"));
        }
        Ok(SetBackendSpec {
            target: Target::Url(Arc::new(Backend {
                scheme: scheme.into(),
                authority,
                base_path: uri.path().trim_end_matches('/').into(),
                protocol: BackendProtocol::Http1,
                ca_file: None,
                connect_timeout: Duration::from_secs(5),
                response_timeout: Duration::from_secs(60),
                pool: None,
                client_identity: None,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let p = |t: &str| SetBackendSpec::parse(serde_yaml::from_str(t).unwrap());
        let Target::Url(b) = p("{base_url: 'http://10.0.0.5:8080/api/'}").unwrap().target else {
            panic!("a URL")
        };
        assert_eq!(
            (b.authority.as_str(), b.base_path.as_str()),
            ("10.0.0.5:8080", "/api")
        );
        assert!(p("{base_url: 'ftp://x'}").is_err());
        assert!(p("{base_url: 'http://x/?a=1'}").is_err());
        assert!(p("{url: 'http://x'}").is_err());
    }

    #[test]
    fn parses_backend_ids() {
        let p = |t: &str| SetBackendSpec::parse(serde_yaml::from_str(t).unwrap());
        assert!(
            matches!(p("{backend_id: orders}").unwrap().target, Target::Named(n) if n == "orders")
        );
        assert!(p("{backend_id: orders, base_url: 'http://x'}").is_err());
        assert!(p("{backend_id: ''}").is_err());
        assert!(p("{}").is_err());
    }
}
