//! `forward-request` (backend section): how the request is sent: the time
//! the backend has to send its response headers (504 after), and whether
//! the client's body is read into memory first so that `retry` can send
//! it again (`buffer_request_body`; a streamed body is sent once).

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Seconds until the response headers must arrive.
    timeout: u64,
    /// Read the body whole (up to the gateway's body limit) so a retry
    /// can resend it.
    #[serde(default)]
    buffer_request_body: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardRequestSpec {
    pub timeout: Duration,
    pub buffer_request_body: bool,
}

impl ForwardRequestSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.timeout == 0 {
            return Err("timeout must be at least 1 second".into());
        }
        Ok(ForwardRequestSpec {
            timeout: Duration::from_secs(f.timeout),
            buffer_request_body: f.buffer_request_body,
        })
    }
}
