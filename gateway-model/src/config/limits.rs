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
    /// Connections the kernel queues for the client listeners before the
    /// proxy accepts them (the listen backlog); more are dropped as SYN
    /// floods are. Default: the kernel's `net.core.somaxconn`, which also
    /// caps it. Read at start.
    listen_backlog: Option<u32>,
    /// Bytes the in-memory response cache (`cache-lookup`/`cache-store`,
    /// `cache-*-value` with `caching_type: internal`) may hold; the least
    /// used entries are evicted past it. At least 65536; default 64 MiB.
    cache_memory_bytes: u64,
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
            listen_backlog: None,
            cache_memory_bytes: 64 * 1024 * 1024,
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
    pub listen_backlog: u32,
    /// Bound of the in-memory response cache, in bytes.
    pub cache_memory_bytes: u64,
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
        let listen_backlog = match self.listen_backlog {
            None => somaxconn(),
            Some(n) if (1..=MAX_BACKLOG).contains(&n) => n,
            Some(n) => {
                return Err(format!(
                    "limits.listen_backlog: {n} is outside 1..={MAX_BACKLOG}"
                ));
            }
        };
        if self.cache_memory_bytes < 65536 {
            return Err(format!(
                "limits.cache_memory_bytes: {} is below the minimum 65536; write e.g. cache_memory_bytes = 67108864 (64 MiB)",
                self.cache_memory_bytes
            ));
        }
        Ok(Limits {
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_body_bytes: self.max_body_bytes,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
            listen_backlog,
            cache_memory_bytes: self.cache_memory_bytes,
        })
    }
}

/// The largest listen backlog `listen(2)` takes (an `int`).
const MAX_BACKLOG: u32 = i32::MAX as u32;

/// Where the kernel keeps its cap on listen backlogs.
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

/// The kernel's cap on listen backlogs (per network namespace), or
/// Linux's default since 5.4 when it cannot be read.
fn somaxconn() -> u32 {
    std::fs::read_to_string(SOMAXCONN)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| (1..=MAX_BACKLOG).contains(n))
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Limits, String> {
        toml::from_str::<LimitsSection>(toml_text)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn the_listen_backlog_defaults_to_the_kernels_cap() {
        let kernel: u32 = std::fs::read_to_string(SOMAXCONN)
            .expect("reading net.core.somaxconn")
            .trim()
            .parse()
            .unwrap();
        assert_eq!(parse("").unwrap().listen_backlog, kernel);
        assert_eq!(parse("listen_backlog = 77").unwrap().listen_backlog, 77);
        for bad in ["listen_backlog = 0", "listen_backlog = 2147483648"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("limits.listen_backlog"), "{bad}: {err}");
        }
        assert!(parse("listen_backlog = -1").is_err());
    }
}
