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

#[derive(Debug)]
pub struct ForwardRequest {
    pub timeout: Duration,
}

impl ForwardRequest {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        if f.timeout == 0 {
            return Err("timeout must be at least 1 second".into());
        }
        Ok(ForwardRequest {
            timeout: Duration::from_secs(f.timeout),
        })
    }
}
