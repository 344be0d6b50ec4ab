//! `cache-lookup-value` (inbound): reads a value that `cache-store-value`
//! stored under `key` (a key template such as `user-{subscription}`, or
//! a policy expression) into the policy variable `variable_name`
//! (`context.Variables`, as in API Management) or the request header
//! `header_name` (which key templates, conditions and the backend read).
//!
//! On a miss the default is used; without one the variable stays unset
//! (what `context.Variables.ContainsKey` checks in APIM's token-caching
//! samples) and the header is left as it is.

use edgegw_policy_expr::Value as ExprValue;
use http::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_yaml::Value;

use super::{
    cache_lookup::CachingType,
    expr::Text,
    key_template::{KeyTemplate, KeyText},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The entry's key: a key template or a policy expression.
    #[serde(default, deserialize_with = "super::expr::text")]
    key: Option<Text>,
    /// Request header that receives the value.
    #[serde(default)]
    header_name: Option<String>,
    /// Policy variable that receives the value.
    #[serde(default)]
    variable_name: Option<String>,
    /// Used when the key has no entry.
    #[serde(default, deserialize_with = "super::scalar")]
    default_value: Option<String>,
    /// internal, external or prefer-external (default).
    #[serde(default)]
    caching_type: Option<String>,
}

/// Where a looked-up value goes, with the default for a miss.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Header(HeaderName, Option<HeaderValue>),
    Variable(String, Option<ExprValue<'static>>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct CacheLookupValueSpec {
    pub key: KeyText,
    pub target: Target,
    pub caching_type: CachingType,
}

impl CacheLookupValueSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let target = match (f.header_name, f.variable_name) {
            (Some(h), None) => {
                let default = f
                    .default_value
                    .map(|d| {
                        HeaderValue::from_str(&d).map_err(|_| {
                            "default_value is not valid in a header; use visible ASCII".to_string()
                        })
                    })
                    .transpose()?;
                Target::Header(header_name(&h)?, default)
            }
            (None, Some(v)) if v.trim().is_empty() => {
                return Err("variable_name is empty; give the variable's name".into());
            }
            (None, Some(v)) => Target::Variable(v, f.default_value.map(ExprValue::string)),
            (Some(_), Some(_)) => {
                return Err("give variable_name or header_name, not both".into());
            }
            (None, None) => {
                return Err("variable_name (or header_name) is required: where the value goes, e.g. variable_name: token".into());
            }
        };
        Ok(CacheLookupValueSpec {
            key: key(f.key)?,
            target,
            caching_type: CachingType::parse(f.caching_type.as_deref())?,
        })
    }
}

/// The `key` setting of the value-caching policies.
pub(super) fn key(text: Option<Text>) -> Result<KeyText, String> {
    let text = text.ok_or("key is required, e.g. key: \"user-{subscription}\"")?;
    KeyText::parse(text, "key")
}

/// A template of the key language, for settings that are one.
pub(super) fn template(text: &str, what: &str) -> Result<KeyTemplate, String> {
    KeyTemplate::parse(text).map_err(|e| format!("{what}: {e}"))
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
        assert_eq!(
            s.target,
            Target::Header("x-v".parse().unwrap(), Some("7".parse().unwrap()))
        );
        let s =
            parse("{key: '@(\"t-\" + context.Subscription.Id)', variable_name: token}").unwrap();
        assert!(matches!(s.key, KeyText::Expr(_)));
        assert_eq!(s.target, Target::Variable("token".into(), None));
        for (yaml, says) in [
            ("{key: k}", "variable_name (or header_name) is required"),
            ("{key: k, variable_name: v, header_name: x}", "not both"),
            ("{key: k, variable_name: ' '}", "variable_name is empty"),
            ("{key: '', header_name: x}", "key is empty"),
            ("{header_name: x}", "key is required"),
            ("{key: '{nope}', header_name: x}", "key:"),
            ("{key: '@(context.Nope)', header_name: x}", "Nope"),
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
