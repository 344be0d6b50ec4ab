//! `trace`: a message (literal or expression) with a source, a severity
//! and metadata, written into the request's access-log line (`trace`)
//! and, when the request's span is sampled, as an event of its span.

use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Who writes it (shown with the message).
    source: String,
    /// `verbose` (default), `information` or `error`.
    #[serde(default)]
    severity: Option<String>,
    /// The message: literal text or a policy expression.
    #[serde(default, deserialize_with = "super::expr::text")]
    message: Option<Text>,
    /// Name/value pairs added to the event.
    #[serde(default)]
    metadata: Vec<MetaFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaFile {
    name: String,
    /// Literal text or a policy expression.
    #[serde(default, deserialize_with = "super::expr::text")]
    value: Option<Text>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Verbose,
    Information,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Verbose => "verbose",
            Severity::Information => "information",
            Severity::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceSpec {
    pub source: String,
    pub severity: Severity,
    pub message: Text,
    pub metadata: Vec<(String, Text)>,
}

impl TraceSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.source.trim().is_empty() {
            return Err("source is empty; name who writes the trace".into());
        }
        let severity = match f.severity.as_deref() {
            None | Some("verbose") => Severity::Verbose,
            Some("information") => Severity::Information,
            Some("error") => Severity::Error,
            Some(other) => {
                return Err(format!(
                    "severity \"{other}\" is unknown; use verbose, information or error"
                ));
            }
        };
        let message = f
            .message
            .ok_or("message is required: literal text or @(...)")?;
        let mut metadata = Vec::with_capacity(f.metadata.len());
        for m in f.metadata {
            if m.name.trim().is_empty() {
                return Err("metadata: a name is empty; give each entry a name".into());
            }
            metadata.push((m.name, m.value.unwrap_or(Text::Literal(String::new()))));
        }
        Ok(TraceSpec {
            source: f.source,
            severity,
            message,
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<TraceSpec, String> {
        TraceSpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn settings_and_refusals() {
        let t = parse("{source: s, message: hi, metadata: [{name: a, value: 1}]}").unwrap();
        assert_eq!(t.severity, Severity::Verbose);
        assert_eq!(
            t.metadata,
            vec![("a".to_string(), Text::Literal("1".into()))]
        );
        assert!(
            parse("{source: s, severity: error, message: '@(context.Request.Method)'}")
                .unwrap()
                .message
                .is_expression()
        );
        assert!(
            parse("{source: s, severity: loud, message: m}")
                .unwrap_err()
                .contains("severity \"loud\"")
        );
        assert!(
            parse("{source: '', message: m}")
                .unwrap_err()
                .contains("source is empty")
        );
        assert!(
            parse("{source: s}")
                .unwrap_err()
                .contains("message is required")
        );
        assert!(
            parse("{source: s, message: m, metadata: [{name: '', value: v}]}")
                .unwrap_err()
                .contains("name is empty")
        );
    }
}
