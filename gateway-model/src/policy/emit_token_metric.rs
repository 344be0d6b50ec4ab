//! `llm-emit-token-metric` (APIM's `llm-emit-token-metric` and
//! `azure-openai-emit-token-metric`): the prompt, completion and total
//! tokens of each call, as counters in `/metrics` labelled with the
//! namespace and the dimensions. Emitted by the gateway's `policy/tokens`.

use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<DimensionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DimensionFile {
    name: String,
    #[serde(default, deserialize_with = "super::expr::text")]
    value: Option<Text>,
}

/// A dimension APIM fills in by its name alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Api,
    Operation,
    Product,
    Subscription,
    User,
    Location,
    GatewayId,
    ClientIp,
}

/// The names that need no value, as APIM writes them.
pub const KNOWN: &[(&str, Known)] = &[
    ("API ID", Known::Api),
    ("Operation ID", Known::Operation),
    ("Product ID", Known::Product),
    ("Subscription ID", Known::Subscription),
    ("User ID", Known::User),
    ("Location", Known::Location),
    ("Gateway ID", Known::GatewayId),
    ("Client IP", Known::ClientIp),
];

#[derive(Clone, Debug, PartialEq)]
pub enum DimensionValue {
    Known(Known),
    Text(Text),
}

/// At most this many dimensions, as APIM allows.
const MAX_DIMENSIONS: usize = 5;

#[derive(Clone, Debug, PartialEq)]
pub struct EmitTokenMetricSpec {
    pub namespace: String,
    pub dimensions: Vec<(String, DimensionValue)>,
}

impl EmitTokenMetricSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.dimensions.len() > MAX_DIMENSIONS {
            return Err(format!(
                "{} dimensions; at most {MAX_DIMENSIONS} are allowed, remove some",
                f.dimensions.len()
            ));
        }
        let mut dimensions = Vec::with_capacity(f.dimensions.len());
        for d in f.dimensions {
            let name = d.name.trim().to_string();
            if name.is_empty() {
                return Err("a dimension's name is empty; name it".into());
            }
            if dimensions.iter().any(|(n, _)| *n == name) {
                return Err(format!("dimension \"{name}\" is given twice; keep one"));
            }
            let value = match d.value {
                Some(v) => DimensionValue::Text(v),
                None => match KNOWN.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                    Some((_, k)) => DimensionValue::Known(*k),
                    None => {
                        let known: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
                        return Err(format!(
                            "dimension \"{name}\" has no value; give value: (text or @(...)) or use one of: {}",
                            known.join(", ")
                        ));
                    }
                },
            };
            dimensions.push((name, value));
        }
        let namespace = f
            .namespace
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "API Management".into());
        Ok(EmitTokenMetricSpec {
            namespace,
            dimensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<EmitTokenMetricSpec, String> {
        EmitTokenMetricSpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn known_and_valued_dimensions() {
        let s = parse("{namespace: openai, dimensions: [{name: API ID}, {name: client, value: '@(context.Request.IpAddress)'}]}").unwrap();
        assert_eq!(s.namespace, "openai");
        assert_eq!(s.dimensions[0].1, DimensionValue::Known(Known::Api));
        assert!(matches!(&s.dimensions[1].1, DimensionValue::Text(t) if t.is_expression()));
        assert_eq!(parse("{}").unwrap().namespace, "API Management");
        for (bad, want) in [
            ("{dimensions: [{name: Colour}]}", "has no value"),
            (
                "{dimensions: [{name: API ID}, {name: API ID}]}",
                "given twice",
            ),
            (
                "{dimensions: [{name: a, value: 1}, {name: b, value: 1}, {name: c, value: 1}, {name: d, value: 1}, {name: e, value: 1}, {name: f, value: 1}]}",
                "at most 5",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
