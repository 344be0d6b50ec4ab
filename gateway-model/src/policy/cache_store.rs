//! `cache-store` (outbound): stores the response of a request that
//! `cache-lookup` missed, for `duration` seconds. Without `cache_response:
//! true` only `200 OK` is stored (API Management's rule). Responses with
//! `Set-Cookie`, `Cache-Control: no-store` (or `private`, unless the
//! lookup allows private responses) are never stored.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Seconds an entry stays fresh (1 to a year). Required.
    duration: Value,
    /// Store any status, not only 200.
    #[serde(default)]
    cache_response: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheStoreSpec {
    pub duration: Duration,
    pub cache_response: bool,
}

impl CacheStoreSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        Ok(CacheStoreSpec {
            duration: super::cache_lookup::duration(&f.duration)?,
            cache_response: f.cache_response,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_is_required_and_checked() {
        let parse = |s: &str| CacheStoreSpec::parse(serde_yaml::from_str(s).unwrap());
        let s = parse("{duration: 30, cache_response: true}").unwrap();
        assert_eq!((s.duration.as_secs(), s.cache_response), (30, true));
        assert!(parse("{}").unwrap_err().contains("duration"));
        assert!(parse("{duration: 0}").unwrap_err().contains("write e.g."));
        assert!(
            parse("{duration: 5, ttl: 3}")
                .unwrap_err()
                .contains("`ttl`")
        );
    }
}
