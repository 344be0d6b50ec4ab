//! `cache-remove-value` (inbound): removes the entry `cache-store-value`
//! stored under `key` (a key template or a policy expression).

use serde::Deserialize;
use serde_yaml::Value;

use super::{cache_lookup::CachingType, expr::Text, key_template::KeyText};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The entry's key: a key template or a policy expression.
    #[serde(default, deserialize_with = "super::expr::text")]
    key: Option<Text>,
    /// internal, external or prefer-external (default).
    #[serde(default)]
    caching_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CacheRemoveValueSpec {
    pub key: KeyText,
    pub caching_type: CachingType,
}

impl CacheRemoveValueSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        Ok(CacheRemoveValueSpec {
            key: super::cache_lookup_value::key(f.key)?,
            caching_type: CachingType::parse(f.caching_type.as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_refusals() {
        let parse = |s: &str| CacheRemoveValueSpec::parse(serde_yaml::from_str(s).unwrap());
        assert!(parse("{key: 'a-{subscription}'}").is_ok());
        assert!(
            parse("{key: a, duration: 3}")
                .unwrap_err()
                .contains("`duration`")
        );
    }
}
