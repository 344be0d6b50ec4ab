//! `cache-store-value` (inbound): stores `value` (a key template such as
//! `{header:x-token}`, or a policy expression of any type) under `key`
//! for `duration` seconds, in the cache `caching_type` names;
//! `cache-lookup-value` reads it back.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::{cache_lookup::CachingType, expr::Text, key_template::KeyText};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The entry's key: a key template or a policy expression.
    #[serde(default, deserialize_with = "super::expr::text")]
    key: Option<Text>,
    /// The value: a key template or a policy expression.
    #[serde(default, deserialize_with = "super::expr::text")]
    value: Option<Text>,
    /// Seconds the entry is kept (1 to a year).
    duration: Value,
    /// internal, external or prefer-external (default).
    #[serde(default)]
    caching_type: Option<String>,
}

/// What is stored: text of the key template language, or an expression's
/// value (its type kept, so a stored number is read back as one).
#[derive(Clone, Debug, PartialEq)]
pub enum StoredValue {
    Template(super::key_template::KeyTemplate),
    Expr(std::sync::Arc<edgegw_policy_expr::Expression>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct CacheStoreValueSpec {
    pub key: KeyText,
    pub value: StoredValue,
    pub duration: Duration,
    pub caching_type: CachingType,
}

impl CacheStoreValueSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let value = match f
            .value
            .ok_or("value is required, e.g. value: \"{header:x-token}\"")?
        {
            Text::Expr(e) => StoredValue::Expr(e),
            Text::Literal(l) => {
                StoredValue::Template(super::cache_lookup_value::template(&l, "value")?)
            }
        };
        Ok(CacheStoreValueSpec {
            key: super::cache_lookup_value::key(f.key)?,
            value,
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
        let s = parse("{key: k, value: '@(context.Request.Headers.Count)', duration: 10}").unwrap();
        assert!(matches!(s.value, StoredValue::Expr(_)));
        for (yaml, says) in [
            ("{key: k, value: v}", "duration"),
            ("{key: k, value: v, duration: 1d}", "write e.g."),
            ("{key: k, value: '{x}', duration: 1}", "value:"),
            ("{key: k, duration: 1}", "value is required"),
            ("{key: k, value: '@(nope)', duration: 1}", "nope"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }
}
