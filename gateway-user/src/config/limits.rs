//! The `[limits]` section: what protects the process from clients.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LimitsSection {
    /// Largest request head (request line and headers) in bytes; 431 above.
    /// At least 8192.
    max_header_bytes: usize,
    /// Most request headers; 431 above.
    max_headers: usize,
    /// Milliseconds a client gets to send a complete request head (slowloris).
    header_read_timeout_ms: u64,
    /// Largest request body in bytes; 413 above.
    max_body_bytes: u64,
    /// Seconds a connection may stay without traffic and requests.
    idle_timeout_secs: u64,
    /// Most concurrent client connections; more are closed on accept.
    max_connections: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout_ms: 10_000,
            max_body_bytes: 10 * 1024 * 1024,
            idle_timeout_secs: 60,
            max_connections: 10_000,
        }
    }
}

/// Validated limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    pub max_body_bytes: u64,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl LimitsSection {
    pub(super) fn validate(&self) -> Result<Limits, String> {
        if self.max_header_bytes < 8192 {
            return Err(format!(
                "limits.max_header_bytes: {} is below the minimum 8192",
                self.max_header_bytes
            ));
        }
        let positive = [
            ("limits.max_headers", self.max_headers as u64),
            ("limits.header_read_timeout_ms", self.header_read_timeout_ms),
            ("limits.idle_timeout_secs", self.idle_timeout_secs),
            ("limits.max_connections", self.max_connections as u64),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{field}: must be greater than 0"));
        }
        Ok(Limits {
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_body_bytes: self.max_body_bytes,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
        })
    }
}
