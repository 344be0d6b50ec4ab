//! `[escalation]`: L7 abuse becomes an XDP ban. A client IP that gets more
//! than `threshold` answers with one of `statuses` within `window_secs` is
//! banned in the kernel for `ban_secs` (visible in `edgegw bans`, lifted
//! with `edgegw unban`).

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSection {
    /// Statuses that count as abuse (default 401, 403, 429).
    #[serde(default = "default_statuses")]
    statuses: Vec<u16>,
    /// Answers tolerated per window; one more bans the client.
    threshold: u32,
    /// Length of the counting window.
    window_secs: u64,
    /// How long the XDP ban lasts.
    ban_secs: u64,
}

fn default_statuses() -> Vec<u16> {
    vec![401, 403, 429]
}

/// Validated escalation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    pub statuses: Vec<u16>,
    pub threshold: u32,
    pub window: Duration,
    pub ban: Duration,
}

impl EscalationSection {
    pub fn validate(&self) -> Result<Escalation, String> {
        if self.statuses.is_empty() || self.statuses.iter().any(|s| !(400..=599).contains(s)) {
            return Err(format!(
                "escalation.statuses: {:?} must be a non-empty list of 4xx/5xx statuses such as [401, 403, 429]",
                self.statuses
            ));
        }
        if self.threshold == 0 {
            return Err(
                "escalation.threshold: 0 would ban on the first answer; use 1 or more".into(),
            );
        }
        for (field, secs) in [
            ("window_secs", self.window_secs),
            ("ban_secs", self.ban_secs),
        ] {
            if secs == 0 || secs > 366 * 86_400 {
                return Err(format!(
                    "escalation.{field}: {secs} is out of range; use 1 to 31622400 seconds"
                ));
            }
        }
        Ok(Escalation {
            statuses: self.statuses.clone(),
            threshold: self.threshold,
            window: Duration::from_secs(self.window_secs),
            ban: Duration::from_secs(self.ban_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(
        statuses: Vec<u16>,
        threshold: u32,
        window_secs: u64,
        ban_secs: u64,
    ) -> EscalationSection {
        EscalationSection {
            statuses,
            threshold,
            window_secs,
            ban_secs,
        }
    }

    #[test]
    fn validates_each_field_by_name() {
        let ok = section(vec![401], 3, 60, 600).validate().unwrap();
        assert_eq!(ok.window, Duration::from_secs(60));
        let cases = [
            (section(vec![], 3, 60, 600), "escalation.statuses"),
            (section(vec![200], 3, 60, 600), "escalation.statuses"),
            (section(vec![401], 0, 60, 600), "escalation.threshold"),
            (section(vec![401], 3, 0, 600), "escalation.window_secs"),
            (section(vec![401], 3, 60, u64::MAX), "escalation.ban_secs"),
        ];
        for (s, want) in cases {
            let err = s.validate().unwrap_err();
            assert!(err.starts_with(want), "{err}");
        }
    }
}
