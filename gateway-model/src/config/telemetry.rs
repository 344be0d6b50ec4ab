//! The `[telemetry]` section: what the access log redacts, and the optional
//! `[telemetry.otlp]` collector that traces and metrics are exported to.
//! The control plane builds the same `Otlp` from its command line
//! (`Otlp::from_endpoint`).

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TelemetrySection {
    /// Query parameters whose values the access log writes as `REDACTED`,
    /// besides `subscription-key` and each API's own key parameter.
    #[serde(default)]
    redact_query: Vec<String>,
    /// Optional OTLP collector.
    otlp: Option<OtlpSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OtlpSection {
    /// The collector's base URL, e.g. "http://127.0.0.1:4318"; spans go to
    /// `/v1/traces` and metrics to `/v1/metrics` under it.
    endpoint: String,
    /// "http/protobuf" (the default and the only one built in).
    #[serde(default)]
    protocol: Option<String>,
    /// Share of new traces recorded, 0.0 to 1.0 (default 1.0); a request
    /// that continues a trace follows its caller's sampled flag.
    #[serde(default = "default_ratio")]
    sampling_ratio: f64,
    /// Headers sent with every export (an API key of a hosted collector).
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    /// Spans waiting for export at most (default 2048); beyond it they are
    /// dropped and counted, never waited for.
    #[serde(default = "default_queue")]
    queue_size: usize,
    /// Milliseconds one export may take (default 10000).
    #[serde(default = "default_timeout_ms")]
    export_timeout_ms: u64,
    /// Milliseconds between metric exports (default 60000).
    #[serde(default = "default_interval_ms")]
    metrics_interval_ms: u64,
    /// `service.name` of what is exported (default: the program's name).
    #[serde(default)]
    service_name: Option<String>,
}

fn default_ratio() -> f64 {
    1.0
}
fn default_queue() -> usize {
    2048
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_interval_ms() -> u64 {
    60_000
}

/// Validated `[telemetry]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Telemetry {
    /// Extra query parameters the access log redacts.
    pub redact_query: Vec<String>,
    pub otlp: Option<Otlp>,
}

/// Validated `[telemetry.otlp]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Otlp {
    /// Base URL without a trailing `/`.
    pub endpoint: String,
    pub sampling_ratio: f64,
    pub headers: Vec<(String, String)>,
    pub queue_size: usize,
    pub export_timeout: Duration,
    pub metrics_interval: Duration,
    pub service_name: Option<String>,
}

impl Otlp {
    /// Spans' URL.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint)
    }

    /// Metrics' URL.
    pub fn metrics_url(&self) -> String {
        format!("{}/v1/metrics", self.endpoint)
    }

    /// The settings of a command line: an endpoint and a ratio, the rest
    /// defaults; `what` names the option in messages (`--otlp-endpoint`).
    pub fn from_endpoint(endpoint: &str, sampling_ratio: f64) -> Result<Otlp, String> {
        OtlpSection {
            endpoint: endpoint.into(),
            protocol: None,
            sampling_ratio,
            headers: Default::default(),
            queue_size: default_queue(),
            export_timeout_ms: default_timeout_ms(),
            metrics_interval_ms: default_interval_ms(),
            service_name: None,
        }
        .validate()
    }
}

impl TelemetrySection {
    pub(super) fn validate(&self) -> Result<Telemetry, String> {
        for name in &self.redact_query {
            if name.is_empty() || name.contains(['&', '=', ' ']) {
                return Err(format!(
                    "telemetry.redact_query: \"{name}\" is not a query parameter name; write names such as \"token\""
                ));
            }
        }
        Ok(Telemetry {
            redact_query: self.redact_query.clone(),
            otlp: self
                .otlp
                .as_ref()
                .map(OtlpSection::validate)
                .transpose()
                .map_err(|m| format!("telemetry.otlp.{m}"))?,
        })
    }
}

impl OtlpSection {
    /// Errors start with the setting's name (without `telemetry.otlp.`).
    fn validate(&self) -> Result<Otlp, String> {
        let endpoint = self.endpoint.trim().trim_end_matches('/');
        let example = "e.g. \"http://127.0.0.1:4318\"";
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|_| format!("endpoint: \"{}\" is not a URL; {example}", self.endpoint))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "endpoint: \"{}\": https is not supported; export over http to a collector on the node or its network, {example}",
                    self.endpoint
                ));
            }
            _ => {
                return Err(format!(
                    "endpoint: \"{}\" must start with http://, {example}",
                    self.endpoint
                ));
            }
        }
        if uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
            return Err(format!(
                "endpoint: \"{}\" needs a host and no query, {example}",
                self.endpoint
            ));
        }
        match self.protocol.as_deref() {
            None | Some("http/protobuf") => {}
            Some("grpc") => {
                return Err(
                    "protocol: \"grpc\" is not built into this gateway; use \"http/protobuf\" (the collector's port 4318)"
                        .into(),
                );
            }
            Some(other) => {
                return Err(format!(
                    "protocol: \"{other}\" is unknown; use \"http/protobuf\""
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            return Err(format!(
                "sampling_ratio: {} is outside 0.0 to 1.0; use e.g. 0.01 for one trace in a hundred",
                self.sampling_ratio
            ));
        }
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!(
                    "headers: \"{name}\" is not a header name; use letters, digits and '-'"
                ));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(format!(
                    "headers: the value of \"{name}\" is not a valid header value; use visible ASCII"
                ));
            }
            headers.push((name.clone(), value.clone()));
        }
        if !(1..=1_000_000).contains(&self.queue_size) {
            return Err(format!(
                "queue_size: {} is outside 1 to 1000000; the default is 2048",
                self.queue_size
            ));
        }
        for (name, ms) in [
            ("export_timeout_ms", self.export_timeout_ms),
            ("metrics_interval_ms", self.metrics_interval_ms),
        ] {
            if !(100..=3_600_000).contains(&ms) {
                return Err(format!(
                    "{name}: {ms} is outside 100 to 3600000 milliseconds"
                ));
            }
        }
        if self.service_name.as_deref().is_some_and(str::is_empty) {
            return Err("service_name: empty; remove it or give a name".into());
        }
        Ok(Otlp {
            endpoint: endpoint.into(),
            sampling_ratio: self.sampling_ratio,
            headers,
            queue_size: self.queue_size,
            export_timeout: Duration::from_millis(self.export_timeout_ms),
            metrics_interval: Duration::from_millis(self.metrics_interval_ms),
            service_name: self.service_name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Telemetry, String> {
        let s: TelemetrySection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()
    }

    #[test]
    fn defaults_and_values() {
        let t = parse("[otlp]\nendpoint = \"http://127.0.0.1:4318/\"\n").unwrap();
        let o = t.otlp.unwrap();
        assert_eq!(o.traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(o.sampling_ratio, 1.0);
        assert_eq!(o.queue_size, 2048);
        assert_eq!(o.export_timeout, Duration::from_secs(10));
        let t = parse(
            "redact_query = [\"token\"]\n[otlp]\nendpoint = \"http://c:4318\"\nsampling_ratio = 0.01\nheaders = { x-api-key = \"k\" }\n",
        )
        .unwrap();
        assert_eq!(t.redact_query, ["token"]);
        assert_eq!(t.otlp.unwrap().headers, [("x-api-key".into(), "k".into())]);
    }

    #[test]
    fn bad_settings_name_the_setting_and_the_fix() {
        for (text, want) in [
            (
                "endpoint = \"127.0.0.1:4318\"",
                "telemetry.otlp.endpoint: \"127.0.0.1:4318\" must start with http://",
            ),
            (
                "endpoint = \"https://c:4318\"",
                "telemetry.otlp.endpoint: \"https://c:4318\": https is not supported",
            ),
            (
                "endpoint = \"http://c:4318\"\nprotocol = \"grpc\"",
                "telemetry.otlp.protocol: \"grpc\" is not built into",
            ),
            (
                "endpoint = \"http://c:4318\"\nprotocol = \"json\"",
                "telemetry.otlp.protocol: \"json\" is unknown",
            ),
            (
                "endpoint = \"http://c:4318\"\nsampling_ratio = 1.5",
                "telemetry.otlp.sampling_ratio: 1.5 is outside 0.0 to 1.0",
            ),
            (
                "endpoint = \"http://c:4318\"\nheaders = { \"a b\" = \"1\" }",
                "telemetry.otlp.headers: \"a b\" is not a header name",
            ),
            (
                "endpoint = \"http://c:4318\"\nqueue_size = 0",
                "telemetry.otlp.queue_size: 0 is outside",
            ),
            (
                "endpoint = \"http://c:4318\"\nexport_timeout_ms = 5",
                "telemetry.otlp.export_timeout_ms: 5 is outside",
            ),
        ] {
            let err = parse(&format!("[otlp]\n{text}\n")).unwrap_err();
            assert!(err.starts_with(want), "{text}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let err = parse("redact_query = [\"a=b\"]").unwrap_err();
        assert!(err.starts_with("telemetry.redact_query: \"a=b\""), "{err}");
    }
}
