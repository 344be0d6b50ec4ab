//! `check-header`: the request must carry a header, optionally with one of
//! the listed values; otherwise the configured status and message.

use http::{StatusCode, header::HeaderName};
use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Header that must be present.
    name: String,
    /// Accepted values; empty accepts any value.
    #[serde(default)]
    values: Vec<String>,
    /// Compare values ignoring ASCII case (default false).
    #[serde(default)]
    ignore_case: bool,
    /// Status when the check fails (default 401).
    #[serde(default)]
    failed_check_httpcode: Option<u16>,
    /// Message when the check fails.
    #[serde(default)]
    failed_check_error_message: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct CheckHeaderSpec {
    pub name: HeaderName,
    /// Accepted values; empty accepts any value.
    pub values: Vec<String>,
    pub ignore_case: bool,
    pub status: StatusCode,
    pub message: String,
}

// The values may come from secret named values: never shown.
impl std::fmt::Debug for CheckHeaderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckHeader({})", self.name)
    }
}

impl CheckHeaderSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let name = HeaderName::from_bytes(f.name.as_bytes())
            .map_err(|_| format!("\"{}\" is not a valid header name", f.name))?;
        Ok(CheckHeaderSpec {
            message: f
                .failed_check_error_message
                .unwrap_or_else(|| format!("Header {} was not found or has a wrong value", f.name)),
            name,
            values: f.values,
            ignore_case: f.ignore_case,
            status: super::status(f.failed_check_httpcode.unwrap_or(401))?,
        })
    }
}
