//! `cache-lookup-value` (inbound): reads a value that `cache-store-value`
//! stored under `key` (a key template: `user-{subscription}`) and puts it
//! where later policies and the backend read it.
//!
//! API Management writes it into `context.Variables[variable_name]`.
//! This gateway has no policy variables yet: the native form names a
//! request header instead (`header_name`), which key templates
//! (`{header:NAME}`), conditions and the backend read; `variable_name` is
//! refused with that advice until variables exist.

use http::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_yaml::Value;

use super::{cache_lookup::CachingType, key_template::KeyTemplate};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The entry's key, in the key template language.
    key: String,
    /// Request header that receives the value.
    #[serde(default)]
    header_name: Option<String>,
    /// API Management's target: refused until policy variables exist.
    #[serde(default)]
    variable_name: Option<String>,
    /// Used when the key has no entry (else the header is left as it is).
    #[serde(default, deserialize_with = "super::scalar")]
    default_value: Option<String>,
    /// internal, external or prefer-external (default).
    #[serde(default)]
    caching_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheLookupValueSpec {
    pub key: KeyTemplate,
    pub header: HeaderName,
    pub default: Option<HeaderValue>,
    pub caching_type: CachingType,
}

impl CacheLookupValueSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let header = match (f.header_name, f.variable_name) {
            (Some(h), None) => header_name(&h)?,
            (_, Some(v)) => {
                return Err(format!(
                    "variable_name \"{v}\": policy variables are not in this gateway yet; \
                     write header_name: X-{v} to put the value in a request header"
                ));
            }
            (None, None) => {
                return Err("header_name is required: the request header that receives the value, e.g. header_name: X-Cached".into());
            }
        };
        let default = f
            .default_value
            .map(|d| {
                HeaderValue::from_str(&d).map_err(|_| {
                    "default_value is not valid in a header; use visible ASCII".to_string()
                })
            })
            .transpose()?;
        Ok(CacheLookupValueSpec {
            key: key(&f.key)?,
            header,
            default,
            caching_type: CachingType::parse(f.caching_type.as_deref())?,
        })
    }
}

pub(super) fn key(text: &str) -> Result<KeyTemplate, String> {
    if text.trim().is_empty() {
        return Err("key is empty; write a key such as key: \"user-{subscription}\"".into());
    }
    KeyTemplate::parse(text).map_err(|e| format!("key: {e}"))
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        format!("header_name \"{name}\" is not a valid header name; write e.g. X-Cached")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<CacheLookupValueSpec, String> {
        CacheLookupValueSpec::parse(serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn settings_and_refusals() {
        let s = parse("{key: 'k-{subscription}', header_name: X-V, default_value: 7}").unwrap();
        assert_eq!(s.header, "x-v");
        assert_eq!(s.default.unwrap(), "7");
        for (yaml, says) in [
            ("{key: k, variable_name: v}", "write header_name: X-v"),
            ("{key: k}", "header_name is required"),
            ("{key: '', header_name: x}", "key is empty"),
            ("{key: '{nope}', header_name: x}", "key:"),
            (
                "{key: k, header_name: x, caching_type: disk}",
                "caching_type",
            ),
            (
                "{key: k, header_name: x, value: v}",
                "unknown field `value`",
            ),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }
}
