//! The `[analytics]` section: how a gateway aggregates request analytics
//! and buffers them on disk for the control plane (see
//! `docs/analytics.md`). Every field has a default; the section is
//! optional.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::ControlPlane;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnalyticsSection {
    /// Whether requests are aggregated and sent (default true). Off: no
    /// per-request analytics work, no outbox, no batches; read at start.
    #[serde(default)]
    enabled: Option<bool>,
    /// Seconds per aggregation period (default 60: one batch a minute).
    /// Shorter periods are for tests and demos.
    #[serde(default)]
    period_secs: Option<u64>,
    /// Directory of batches not yet accepted by the control plane
    /// (default: `analytics` next to the control plane's `backup_dir`).
    #[serde(default)]
    outbox_dir: Option<PathBuf>,
    /// Bytes the outbox may hold (default 64 MiB, about a week of a busy
    /// gateway's minutes); beyond it the oldest batch is dropped and counted.
    #[serde(default)]
    outbox_max_bytes: Option<u64>,
}

/// Validated `[analytics]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analytics {
    /// Off: nothing is recorded, rolled, written or sent.
    pub enabled: bool,
    pub period: Duration,
    /// Set for a managed gateway (from `outbox_dir` or the default).
    pub outbox_dir: Option<PathBuf>,
    pub outbox_max_bytes: u64,
}

const DEFAULT_MAX_BYTES: u64 = 64 << 20;

impl AnalyticsSection {
    pub(super) fn validate(&self) -> Result<Analytics, String> {
        let period = self.period_secs.unwrap_or(60);
        if period == 0 || period > 3600 || 3600 % period != 0 {
            return Err(format!(
                "analytics.period_secs: {period} must divide an hour (1 to 3600, e.g. 60); periods roll up into hours"
            ));
        }
        let max = self.outbox_max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if max < 4096 {
            return Err(format!(
                "analytics.outbox_max_bytes: {max} is too small; give at least 4096"
            ));
        }
        if self
            .outbox_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return Err("analytics.outbox_dir: empty; give a directory or leave it out".into());
        }
        Ok(Analytics {
            enabled: self.enabled.unwrap_or(true),
            period: Duration::from_secs(period),
            outbox_dir: self.outbox_dir.clone(),
            outbox_max_bytes: max,
        })
    }
}

impl Default for Analytics {
    fn default() -> Self {
        AnalyticsSection::default()
            .validate()
            .expect("defaults are valid")
    }
}

impl Analytics {
    /// A relative `outbox_dir` as seen from the file at `config`; the
    /// default next to the backups of a managed gateway.
    pub(super) fn resolve(&mut self, config: &Path, cp: Option<&ControlPlane>) {
        self.outbox_dir = match (&self.outbox_dir, cp) {
            _ if !self.enabled => None,
            (Some(dir), _) => Some(super::catalog::resolve(dir, config)),
            (None, Some(cp)) => Some(
                cp.backup_dir
                    .parent()
                    .map_or_else(|| PathBuf::from("analytics"), |p| p.join("analytics")),
            ),
            (None, None) => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[gateway]\nlisten = \"127.0.0.1:8080\"\n";

    #[test]
    fn defaults_and_bad_values() {
        let c = Config::parse("t.toml", BASE).unwrap();
        assert_eq!(c.analytics.period.as_secs(), 60);
        assert!(c.analytics.enabled);
        assert_eq!(c.analytics.outbox_max_bytes, 64 << 20);
        let err = |rest: &str| {
            Config::parse("t.toml", &format!("{BASE}[analytics]\n{rest}\n"))
                .unwrap_err()
                .to_string()
        };
        assert!(err("period_secs = 7").contains("analytics.period_secs: 7 must divide an hour"));
        assert!(err("period_secs = 0").contains("analytics.period_secs"));
        assert!(err("outbox_max_bytes = 10").contains("analytics.outbox_max_bytes: 10"));
        assert!(err("bogus = 1").contains("bogus"));
        assert!(err("enabled = \"no\"").contains("enabled"));
        let c = Config::parse("t.toml", &format!("{BASE}[analytics]\nenabled = false\n")).unwrap();
        assert!(!c.analytics.enabled);
        let c = Config::parse("t.toml", &format!("{BASE}[analytics]\nperiod_secs = 2\n")).unwrap();
        assert_eq!(c.analytics.period.as_secs(), 2);
    }
}
