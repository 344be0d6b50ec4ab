//! `cache-lookup` (inbound): answers a GET or HEAD from the response cache
//! when a fresh entry exists for the request's key, else lets the request
//! go on and marks it for `cache-store` (outbound). The settings are API
//! Management's attributes with `-` written `_`:
//!
//! ```yaml
//! - cache-lookup:
//!     vary_by_developer: true          # one entry per subscription
//!     vary_by_developer_groups: false  # one entry per product
//!     caching_type: prefer-external    # internal | external | prefer-external
//!     downstream_caching_type: none    # none | private | public
//!     must_revalidate: true
//!     allow_private_response_caching: false
//!     vary_by_header: [Accept]
//!     vary_by_query_parameter: [page]
//! ```
//!
//! The key is always the API, the operation, the path after the API
//! prefix, the listed query parameters and headers, and the subscription
//! or product when asked: two APIs or operations never share an entry.

use http::header::HeaderName;
use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// One entry per subscription (APIM: per developer). Required.
    vary_by_developer: bool,
    /// One entry per product (APIM: per developer group). Required.
    vary_by_developer_groups: bool,
    /// `internal` (this gateway's memory), `external` (the node's Redis,
    /// shared by gateways) or `prefer-external` (default: Redis when the
    /// node has one, memory otherwise).
    #[serde(default)]
    caching_type: Option<String>,
    /// `Cache-Control` the gateway sets on cached answers and on responses
    /// it stores: `none` (default, left as the backend sent it),
    /// `private` or `public` with `max-age` the entry's remaining time.
    #[serde(default)]
    downstream_caching_type: Option<String>,
    /// Adds `must-revalidate` to that `Cache-Control` (default true).
    #[serde(default = "yes")]
    must_revalidate: bool,
    /// Cache requests that carry `Authorization` and responses marked
    /// `Cache-Control: private` (default false).
    #[serde(default)]
    allow_private_response_caching: bool,
    /// Request headers whose values are part of the key.
    #[serde(default)]
    vary_by_header: Vec<String>,
    /// Query parameters whose values are part of the key (others are
    /// not: `?page=1&utm=x` and `?page=1` share an entry).
    #[serde(default)]
    vary_by_query_parameter: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Where entries are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CachingType {
    /// This gateway's memory.
    Internal,
    /// The node's Redis (`[redis]`), shared by the gateways using it.
    External,
    /// Redis when the node has one, memory otherwise.
    #[default]
    PreferExternal,
}

impl CachingType {
    pub fn parse(value: Option<&str>) -> Result<CachingType, String> {
        match value {
            None | Some("prefer-external") => Ok(CachingType::PreferExternal),
            Some("internal") => Ok(CachingType::Internal),
            Some("external") => Ok(CachingType::External),
            Some(other) => Err(format!(
                "caching_type \"{other}\" is unknown; use internal, external or prefer-external"
            )),
        }
    }
}

/// What `Cache-Control` clients get with cached responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Downstream {
    #[default]
    None,
    Private,
    Public,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheLookupSpec {
    pub vary_by_developer: bool,
    pub vary_by_developer_groups: bool,
    pub caching_type: CachingType,
    pub downstream: Downstream,
    pub must_revalidate: bool,
    pub allow_private: bool,
    /// Lowercase, sorted, without duplicates: the key does not depend on
    /// the order they were written in.
    pub vary_by_header: Vec<HeaderName>,
    pub vary_by_query: Vec<String>,
}

impl CacheLookupSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let downstream = match f.downstream_caching_type.as_deref() {
            None | Some("none") => Downstream::None,
            Some("private") => Downstream::Private,
            Some("public") => Downstream::Public,
            Some(other) => {
                return Err(format!(
                    "downstream_caching_type \"{other}\" is unknown; use none, private or public"
                ));
            }
        };
        let mut vary_by_header = f
            .vary_by_header
            .iter()
            .map(|h| {
                HeaderName::from_bytes(h.trim().as_bytes()).map_err(|_| {
                    format!("vary_by_header: \"{h}\" is not a valid header name; write a name such as Accept")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        vary_by_header.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        vary_by_header.dedup();
        // APIM takes one element per parameter, or several separated by `;`.
        let mut vary_by_query: Vec<String> = f
            .vary_by_query_parameter
            .iter()
            .flat_map(|q| q.split(';'))
            .map(|q| q.trim().to_string())
            .collect();
        if vary_by_query.iter().any(String::is_empty) {
            return Err(
                "vary_by_query_parameter: an empty name; write parameter names such as page".into(),
            );
        }
        vary_by_query.sort();
        vary_by_query.dedup();
        Ok(CacheLookupSpec {
            vary_by_developer: f.vary_by_developer,
            vary_by_developer_groups: f.vary_by_developer_groups,
            caching_type: CachingType::parse(f.caching_type.as_deref())?,
            downstream,
            must_revalidate: f.must_revalidate,
            allow_private: f.allow_private_response_caching,
            vary_by_header,
            vary_by_query,
        })
    }
}

/// A `duration` setting: whole seconds, 1 to a year.
pub fn duration(value: &Value) -> Result<std::time::Duration, String> {
    const MAX: u64 = 365 * 24 * 3600;
    let secs = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match secs {
        Some(s) if (1..=MAX).contains(&s) => Ok(std::time::Duration::from_secs(s)),
        _ => Err(format!(
            "duration {} is not a number of seconds from 1 to {MAX}; write e.g. duration: 60",
            serde_yaml::to_string(value).unwrap_or_default().trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<CacheLookupSpec, String> {
        CacheLookupSpec::parse(serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn settings_and_defaults() {
        let s = parse(
            "{vary_by_developer: true, vary_by_developer_groups: false, vary_by_header: [X-B, accept, Accept], vary_by_query_parameter: ['b;a', c]}",
        )
        .unwrap();
        assert!(s.vary_by_developer && !s.vary_by_developer_groups);
        assert_eq!(s.caching_type, CachingType::PreferExternal);
        assert_eq!(s.downstream, Downstream::None);
        assert!(s.must_revalidate && !s.allow_private);
        assert_eq!(s.vary_by_header, ["accept", "x-b"]);
        assert_eq!(s.vary_by_query, ["a", "b", "c"]);
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let base = "vary_by_developer: true, vary_by_developer_groups: false";
        for (yaml, says) in [
            ("{vary_by_developer: true}", "vary_by_developer_groups"),
            (
                &format!("{{{base}, caching_type: disk}}"),
                "caching_type \"disk\"",
            ),
            (
                &format!("{{{base}, downstream_caching_type: all}}"),
                "none, private or public",
            ),
            (
                &format!("{{{base}, vary_by_header: ['a b']}}"),
                "vary_by_header",
            ),
            (
                &format!("{{{base}, vary_by_query_parameter: ['a;']}}"),
                "empty name",
            ),
            (
                &format!("{{{base}, duration: 5}}"),
                "unknown field `duration`",
            ),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }

    #[test]
    fn durations() {
        let v = |s: &str| serde_yaml::from_str::<Value>(s).unwrap();
        assert_eq!(duration(&v("60")).unwrap().as_secs(), 60);
        assert_eq!(duration(&v("'60'")).unwrap().as_secs(), 60);
        for bad in ["0", "1h", "-5", "99999999999"] {
            let err = duration(&v(bad)).unwrap_err();
            assert!(err.contains("write e.g. duration: 60"), "{bad}: {err}");
        }
    }
}
