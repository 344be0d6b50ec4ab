//! `return-response` / `mock-response` (answer without the backend) and
//! `set-status` (change the response's status).

use http::{
    HeaderMap, StatusCode,
    header::{HeaderName, HeaderValue},
};
use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnFile {
    /// Status code (default 200).
    #[serde(default = "ok")]
    status_code: u16,
    /// Content-Type of the body.
    #[serde(default = "json")]
    content_type: String,
    /// The body.
    #[serde(default)]
    body: String,
    /// Extra response headers.
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

fn ok() -> u16 {
    200
}

fn json() -> String {
    "application/json".into()
}

#[derive(Clone, Debug)]
pub struct ReturnResponseSpec {
    pub status: StatusCode,
    pub content_type: String,
    pub body: String,
    pub headers: HeaderMap,
}

impl ReturnResponseSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: ReturnFile = super::settings(args)?;
        Ok(ReturnResponseSpec {
            status: super::status(f.status_code)?,
            content_type: f.content_type,
            body: f.body,
            headers: headers(&f.headers)?,
        })
    }
}

fn headers(map: &std::collections::BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut out = HeaderMap::new();
    for (name, value) in map {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("\"{name}\" is not a valid header name"))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| format!("header \"{name}\": value is not valid in a header"))?;
        out.append(n, v);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetStatusFile {
    /// The new status code.
    code: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetStatusSpec(pub StatusCode);

impl SetStatusSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: SetStatusFile = super::settings(args)?;
        Ok(SetStatusSpec(super::status(f.code)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_statuses_and_settings_are_refused() {
        let parse = |s: &str| ReturnResponseSpec::parse(serde_yaml::from_str(s).unwrap());
        assert!(parse("{status_code: 99}").is_err());
        assert!(parse("{statuscode: 200}").is_err());
        assert!(parse("{headers: {'bad name': x}}").is_err());
        assert!(SetStatusSpec::parse(serde_yaml::from_str("{code: 1000}").unwrap()).is_err());
    }
}
