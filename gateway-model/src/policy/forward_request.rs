//! `forward-request` (backend section): how the request is sent; here the
//! time the backend has to send its response headers (504 after).

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Seconds until the response headers must arrive.
    timeout: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardRequestSpec {
    pub timeout: Duration,
}

impl ForwardRequestSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.timeout == 0 {
            return Err("timeout must be at least 1 second".into());
        }
        Ok(ForwardRequestSpec {
            timeout: Duration::from_secs(f.timeout),
        })
    }
}
