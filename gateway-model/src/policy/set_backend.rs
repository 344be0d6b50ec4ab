//! `set-backend-service`: sends the request to another backend base URL
//! (the path after the API prefix is appended to it, as for the API's own
//! backend).

use std::{sync::Arc, time::Duration};

use http::Uri;
use serde::Deserialize;
use serde_yaml::Value;

use crate::config::{Backend, BackendProtocol};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Backend base URL: http:// or https://.
    base_url: String,
}

#[derive(Clone, Debug)]
pub struct SetBackendSpec {
    pub backend: Arc<Backend>,
}

impl SetBackendSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let url = &f.base_url;
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
            backend: Arc::new(Backend {
                scheme: scheme.into(),
                authority,
                base_path: uri.path().trim_end_matches('/').into(),
                protocol: BackendProtocol::Http1,
                ca_file: None,
                connect_timeout: Duration::from_secs(5),
                response_timeout: Duration::from_secs(60),
                pool: None,
                client_identity: None,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let p = |t: &str| SetBackendSpec::parse(serde_yaml::from_str(t).unwrap());
        let b = p("{base_url: 'http://10.0.0.5:8080/api/'}")
            .unwrap()
            .backend;
        assert_eq!(
            (b.authority.as_str(), b.base_path.as_str()),
            ("10.0.0.5:8080", "/api")
        );
        assert!(p("{base_url: 'ftp://x'}").is_err());
        assert!(p("{base_url: 'http://x/?a=1'}").is_err());
        assert!(p("{url: 'http://x'}").is_err());
    }
}
