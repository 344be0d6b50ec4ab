//! `authentication-managed-identity` (inbound): obtains an access token
//! for `resource` with the gateway's own identity and sends it to the
//! backend as `Authorization: Bearer <token>` (or keeps it in a variable).
//!
//! API Management uses the instance's managed identity, and on its
//! self-hosted gateway the workload's identity. An edgegw node has the
//! `[identity]` section of its configuration for that: an OAuth 2.0
//! client (secret or federated token) at a token endpoint such as
//! Microsoft Entra ID's. Tokens are cached until shortly before they
//! expire, per resource and client id.

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The application ID URI or scope the token is for, e.g.
    /// `https://storage.azure.com/`.
    resource: String,
    /// Another client (application) id to ask the token for, with the
    /// gateway's credential (API Management: a user-assigned identity).
    #[serde(default)]
    client_id: Option<String>,
    /// Keep the token in this variable instead of setting Authorization.
    #[serde(default)]
    output_token_variable_name: Option<String>,
    /// On failure, go on without a token instead of to on-error.
    #[serde(default)]
    ignore_error: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticationManagedIdentitySpec {
    pub resource: String,
    pub client_id: Option<String>,
    pub output_variable: Option<String>,
    pub ignore_error: bool,
}

impl AuthenticationManagedIdentitySpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let resource = f.resource.trim().to_string();
        if resource.is_empty() {
            return Err(
                "resource is empty; give the application ID URI the token is for, e.g. https://storage.azure.com/".into(),
            );
        }
        let blank = |v: Option<String>, what: &str| match v {
            Some(v) if v.trim().is_empty() => {
                Err(format!("{what} is empty; remove it or name one"))
            }
            v => Ok(v),
        };
        Ok(AuthenticationManagedIdentitySpec {
            resource,
            client_id: blank(f.client_id, "client_id")?,
            output_variable: blank(f.output_token_variable_name, "output_token_variable_name")?,
            ignore_error: f.ignore_error,
        })
    }

    /// The OAuth 2.0 scope asked for: Entra ID's `<resource>/.default`
    /// (a resource that already names a scope is kept).
    pub fn scope(&self) -> String {
        if self.resource.ends_with("/.default") {
            self.resource.clone()
        } else {
            format!("{}/.default", self.resource.trim_end_matches('/'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<AuthenticationManagedIdentitySpec, String> {
        AuthenticationManagedIdentitySpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn settings_scopes_and_refusals() {
        let s = parse("{resource: 'https://storage.azure.com/'}").unwrap();
        assert_eq!(s.scope(), "https://storage.azure.com/.default");
        assert!(!s.ignore_error && s.client_id.is_none() && s.output_variable.is_none());
        let s = parse(
            "{resource: 'api://backend/.default', client_id: abc, output_token_variable_name: t, ignore_error: true}",
        )
        .unwrap();
        assert_eq!(s.scope(), "api://backend/.default");
        assert_eq!(s.client_id.as_deref(), Some("abc"));
        assert_eq!(s.output_variable.as_deref(), Some("t"));
        assert!(s.ignore_error);
        for (bad, why) in [
            ("{}", "missing field `resource`"),
            ("{resource: ' '}", "resource is empty"),
            ("{resource: r, client_id: ''}", "client_id is empty"),
            ("{resource: r, other: 1}", "unknown field"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
