//! `limit-concurrency`: at most `max_count` requests of this scope at once.

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Requests allowed at once.
    max_count: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitConcurrencySpec {
    pub max: usize,
}

impl LimitConcurrencySpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.max_count == 0 {
            return Err("max_count must be at least 1".into());
        }
        Ok(LimitConcurrencySpec { max: f.max_count })
    }
}
