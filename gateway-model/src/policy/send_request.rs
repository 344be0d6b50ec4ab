//! `send-request` (inbound): sends a request of its own — to a token
//! endpoint, a lookup service, a validation API — and keeps the whole
//! response in a policy variable (`((IResponse)context.Variables["r"])`
//! in later expressions: `StatusCode`, `Headers`, `Body.As<JObject>()`).
//! `one_way` (APIM's `send-one-way-request`) sends it without waiting.
//!
//! `mode: copy` starts from the client's request (method, headers and
//! body) instead of an empty GET. A failure (no answer within `timeout`,
//! refused connection, bad URL) goes to on-error with `send-request` as
//! `context.LastError.Source`, unless `ignore_error`, which leaves the
//! variable null.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::{
    authentication_managed_identity::AuthenticationManagedIdentitySpec,
    expr::Text,
    set_body::SetBodySpec,
    set_header::SetHeaderSpec,
    set_method::{self, SetMethodSpec},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// `new` (default) or `copy`.
    #[serde(default)]
    mode: Option<String>,
    /// Where it goes: an absolute http(s) URL, or an expression giving one.
    #[serde(default, deserialize_with = "super::expr::text")]
    url: Option<Text>,
    /// GET unless given (in `copy` mode: the client's method).
    #[serde(default, deserialize_with = "super::expr::text")]
    method: Option<Text>,
    /// `set-header` settings, applied in order.
    #[serde(default)]
    headers: Vec<Value>,
    /// `set-body` settings.
    #[serde(default)]
    body: Option<Value>,
    /// The variable that receives the response.
    #[serde(default)]
    response_variable_name: Option<String>,
    /// Seconds to wait for the whole answer (default 60, at most 240).
    #[serde(default)]
    timeout: Option<u64>,
    /// A failure leaves the variable null instead of going to on-error.
    #[serde(default)]
    ignore_error: bool,
    /// Send without waiting for the answer.
    #[serde(default)]
    one_way: bool,
    /// `authentication-managed-identity` settings: the node's identity's
    /// token in this request's `Authorization`.
    #[serde(default)]
    authentication_managed_identity: Option<Value>,
}

#[derive(Clone, Debug)]
pub struct SendRequestSpec {
    pub copy: bool,
    pub url: Text,
    pub method: Option<SetMethodSpec>,
    pub headers: Vec<SetHeaderSpec>,
    pub body: Option<SetBodySpec>,
    pub variable: Option<String>,
    pub timeout: Duration,
    pub ignore_error: bool,
    pub one_way: bool,
    pub identity: Option<AuthenticationManagedIdentitySpec>,
}

/// What `send-request` waits at most: APIM's limit.
const MAX_TIMEOUT: u64 = 240;

impl SendRequestSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let copy = match f.mode.as_deref() {
            None | Some("new") => false,
            Some("copy") => true,
            Some(other) => {
                return Err(format!("mode \"{other}\" is unknown; use new or copy"));
            }
        };
        let url = f
            .url
            .ok_or("url is required, e.g. url: https://login.example.com/token")?;
        if let Text::Literal(u) = &url {
            check_url(u)?;
        }
        let method = match f.method {
            None => None,
            Some(Text::Expr(e)) => Some(SetMethodSpec::Expr(e)),
            Some(Text::Literal(m)) => Some(SetMethodSpec::Literal(set_method::method(&m)?)),
        };
        let headers = f
            .headers
            .into_iter()
            .map(|h| SetHeaderSpec::parse(h).map_err(|e| format!("headers: {e}")))
            .collect::<Result<_, _>>()?;
        let body = f
            .body
            .map(|b| SetBodySpec::parse(b).map_err(|e| format!("body: {e}")))
            .transpose()?;
        let timeout = f.timeout.unwrap_or(60);
        if timeout == 0 || timeout > MAX_TIMEOUT {
            return Err(format!(
                "timeout {timeout} is out of range; give 1 to {MAX_TIMEOUT} seconds"
            ));
        }
        let variable = match (f.response_variable_name, f.one_way) {
            (Some(v), false) if v.trim().is_empty() => {
                return Err("response_variable_name is empty; name the variable".into());
            }
            (Some(_), true) => {
                return Err(
                    "a one-way request has no response: remove response_variable_name".into(),
                );
            }
            (v, _) => v,
        };
        let identity = f
            .authentication_managed_identity
            .map(|v| {
                AuthenticationManagedIdentitySpec::parse(v)
                    .map_err(|e| format!("authentication_managed_identity: {e}"))
            })
            .transpose()?;
        if identity
            .as_ref()
            .is_some_and(|i| i.output_variable.is_some())
        {
            return Err("authentication_managed_identity: output_token_variable_name has no place in a request of its own; remove it (the token goes into this request's Authorization)".into());
        }
        Ok(SendRequestSpec {
            identity,
            copy,
            url,
            method,
            headers,
            body,
            variable,
            timeout: Duration::from_secs(timeout),
            ignore_error: f.ignore_error,
            one_way: f.one_way,
        })
    }
}

/// An absolute http or https URL.
pub fn check_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|_| format!("url \"{url}\" is not a URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(format!(
            "url \"{url}\" must be an absolute http:// or https:// URL"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SendRequestSpec, String> {
        SendRequestSpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn settings_and_refusals() {
        let s = parse(
            "{url: 'https://idp.example/token', method: post, response_variable_name: r,
              headers: [{name: Content-Type, value: application/x-www-form-urlencoded}],
              body: {value: 'grant_type=client_credentials'}, timeout: 20, ignore_error: true}",
        )
        .unwrap();
        assert!(!s.copy && s.ignore_error && s.headers.len() == 1);
        assert_eq!(s.method, Some(SetMethodSpec::Literal(http::Method::POST)));
        assert_eq!(
            (s.timeout.as_secs(), s.variable.as_deref()),
            (20, Some("r"))
        );
        let s = parse("{url: 'http://h/', authentication_managed_identity: {resource: 'https://vault.azure.net'}}").unwrap();
        assert_eq!(s.identity.unwrap().resource, "https://vault.azure.net");
        let s = parse("{mode: copy, url: '@(\"http://h/\" + context.Request.Method)'}").unwrap();
        assert!(s.copy && s.url.is_expression() && s.variable.is_none());
        for (yaml, says) in [
            ("{}", "url is required"),
            ("{url: 'ftp://x/'}", "absolute http"),
            ("{url: '/relative'}", "absolute http"),
            ("{url: 'http://h/', mode: clone}", "mode \"clone\""),
            ("{url: 'http://h/', timeout: 0}", "timeout 0"),
            ("{url: 'http://h/', timeout: 241}", "1 to 240"),
            ("{url: 'http://h/', method: 'GE T'}", "not an HTTP method"),
            (
                "{url: 'http://h/', headers: [{name: 'a b', value: x}]}",
                "headers:",
            ),
            ("{url: 'http://h/', body: {}}", "body: value is required"),
            (
                "{url: 'http://h/', response_variable_name: r, one_way: true}",
                "one-way",
            ),
            ("{url: 'http://h/', url2: x}", "unknown field"),
            (
                "{url: 'http://h/', authentication_managed_identity: {}}",
                "authentication_managed_identity: missing field `resource`",
            ),
            (
                "{url: 'http://h/', authentication_managed_identity: {resource: r, output_token_variable_name: t}}",
                "has no place in a request of its own",
            ),
            ("{url: '@(context.Nope)'}", "Nope"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }
}
