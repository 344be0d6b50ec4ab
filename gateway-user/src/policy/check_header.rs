//! `check-header`: the request must carry a header, optionally with one of
//! the listed values; otherwise the configured status and message.

use hyper::{Response, StatusCode, header::HeaderName};
use serde::Deserialize;
use serde_yaml::Value;

use super::{context::Ctx, respond};
use crate::proxy::ProxyBody;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Header that must be present.
    name: String,
    /// Accepted values; empty accepts any value.
    #[serde(default)]
    values: Vec<String>,
    /// Compare values ignoring ASCII case (default false).
    #[serde(default)]
    ignore_case: bool,
    /// Status when the check fails (default 401).
    #[serde(default)]
    failed_check_httpcode: Option<u16>,
    /// Message when the check fails.
    #[serde(default)]
    failed_check_error_message: Option<String>,
}

pub struct CheckHeader {
    name: HeaderName,
    values: Vec<String>,
    ignore_case: bool,
    status: StatusCode,
    message: String,
}

impl std::fmt::Debug for CheckHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckHeader({})", self.name)
    }
}

impl CheckHeader {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        let name = HeaderName::from_bytes(f.name.as_bytes())
            .map_err(|_| format!("\"{}\" is not a valid header name", f.name))?;
        Ok(CheckHeader {
            message: f
                .failed_check_error_message
                .unwrap_or_else(|| format!("Header {} was not found or has a wrong value", f.name)),
            name,
            values: f.values,
            ignore_case: f.ignore_case,
            status: respond::status(f.failed_check_httpcode.unwrap_or(401))?,
        })
    }

    pub fn check(&self, ctx: &Ctx) -> Option<Response<ProxyBody>> {
        let found = ctx.headers.get_all(&self.name).iter().any(|v| {
            let Ok(v) = v.to_str() else { return false };
            self.values.is_empty()
                || self.values.iter().any(|want| {
                    if self.ignore_case {
                        want.eq_ignore_ascii_case(v)
                    } else {
                        want == v
                    }
                })
        });
        (!found).then(|| respond::json_error(self.status, &self.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &str, header: Option<&str>) -> Option<u16> {
        let p = CheckHeader::parse(serde_yaml::from_str(args).unwrap()).unwrap();
        let mut headers = hyper::HeaderMap::new();
        if let Some(v) = header {
            headers.insert("x-env", v.parse().unwrap());
        }
        let method = hyper::Method::GET;
        let ctx = Ctx::test(&method, &mut headers);
        p.check(&ctx).map(|r| r.status().as_u16())
    }

    #[test]
    fn presence_values_and_case() {
        assert_eq!(run("{name: X-Env}", None), Some(401));
        assert_eq!(run("{name: X-Env}", Some("x")), None);
        let listed = "{name: X-Env, values: [prod], failed_check_httpcode: 400}";
        assert_eq!(run(listed, Some("PROD")), Some(400));
        assert_eq!(run(listed, Some("prod")), None);
        assert_eq!(
            run(
                "{name: X-Env, values: [prod], ignore_case: true}",
                Some("PROD")
            ),
            None
        );
    }
}
