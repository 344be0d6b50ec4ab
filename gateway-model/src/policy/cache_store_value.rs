//! `cache-store-value` (inbound): stores `value` (a key template:
//! `{header:x-token}`) under `key` for `duration` seconds, in the cache
//! `caching_type` names; `cache-lookup-value` reads it back.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::{cache_lookup::CachingType, key_template::KeyTemplate};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The entry's key, in the key template language.
    key: String,
    /// The value, in the key template language.
    #[serde(deserialize_with = "super::scalar")]
    value: Option<String>,
    /// Seconds the entry is kept (1 to a year).
    duration: Value,
    /// internal, external or prefer-external (default).
    #[serde(default)]
    caching_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheStoreValueSpec {
    pub key: KeyTemplate,
    pub value: KeyTemplate,
    pub duration: Duration,
    pub caching_type: CachingType,
}

impl CacheStoreValueSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let value = f
            .value
            .ok_or("value is required, e.g. value: \"{header:x-token}\"")?;
        Ok(CacheStoreValueSpec {
            key: super::cache_lookup_value::key(&f.key)?,
            value: KeyTemplate::parse(&value).map_err(|e| format!("value: {e}"))?,
            duration: super::cache_lookup::duration(&f.duration)?,
            caching_type: CachingType::parse(f.caching_type.as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_refusals() {
        let parse = |s: &str| CacheStoreValueSpec::parse(serde_yaml::from_str(s).unwrap());
        let s = parse("{key: k, value: 5, duration: 10, caching_type: internal}").unwrap();
        assert_eq!(
            (s.duration.as_secs(), s.caching_type),
            (10, CachingType::Internal)
        );
        assert!(
            parse("{key: k, value: v}")
                .unwrap_err()
                .contains("duration")
        );
        assert!(
            parse("{key: k, value: v, duration: 1d}")
                .unwrap_err()
                .contains("write e.g.")
        );
        assert!(
            parse("{key: k, value: '{x}', duration: 1}")
                .unwrap_err()
                .contains("value:")
        );
    }
}
