//! The key template language of `*-by-key` policies (`counter_key`):
//! literal text with placeholders, rendered per request.
//!
//! | placeholder | value |
//! | --- | --- |
//! | `{client_ip}` | the client's IP address |
//! | `{subscription_id}` or `{subscription}` | the subscription id ("" without one) |
//! | `{product}` / `{api}` / `{operation}` | names ("" when none) |
//! | `{method}` / `{path}` | the request method; the path after the API prefix |
//! | `{header:NAME}` | the request header NAME ("" when absent) |
//! | `{query:NAME}` | the query parameter NAME ("" when absent) |
//! | `{jwt:CLAIM}` or `{claim:CLAIM}` | a claim of the token `validate-jwt` accepted earlier in the section ("" otherwise) |
//! | `{client_cert:FIELD}` | a field of the client's TLS certificate ("" without one): `thumbprint`, `serial_number`, `subject`, `issuer`, `common_name`, `dns_name` (the first), `issuer_thumbprint`, `not_before`, `not_after` (Unix seconds) |
//!
//! Parsed here; rendered per request by the gateway's `policy/template.rs`.
//! `{{` and `}}` are a literal brace. Conditions of `choose`
//! (`condition.rs`) use the same placeholders as operands.

use std::sync::Arc;

use edgegw_policy_expr::Expression;
use http::header::HeaderName;

use super::expr::Text;

/// A key given as a template or (APIM) as a policy expression.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyText {
    Template(KeyTemplate),
    Expr(Arc<Expression>),
}

impl KeyText {
    /// `what` names the setting in errors.
    pub fn parse(text: Text, what: &str) -> Result<KeyText, String> {
        match text {
            Text::Expr(e) => Ok(KeyText::Expr(e)),
            Text::Literal(l) if l.trim().is_empty() => Err(format!(
                "{what} is empty; write e.g. {what}: \"user-{{subscription}}\""
            )),
            Text::Literal(l) => KeyTemplate::parse(&l)
                .map(KeyText::Template)
                .map_err(|e| format!("{what}: {e}")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    ClientIp,
    Subscription,
    Product,
    Api,
    Operation,
    Method,
    Path,
    /// Parsed once: a lookup by `&str` would parse the name per request.
    Header(HeaderName),
    Query(String),
    Jwt(String),
    ClientCert(CertField),
}

/// A field of the client certificate (`{client_cert:FIELD}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertField {
    Thumbprint,
    SerialNumber,
    Subject,
    Issuer,
    CommonName,
    DnsName,
    IssuerThumbprint,
    NotBefore,
    NotAfter,
}

impl CertField {
    const NAMES: [(&str, CertField); 9] = [
        ("thumbprint", CertField::Thumbprint),
        ("serial_number", CertField::SerialNumber),
        ("subject", CertField::Subject),
        ("issuer", CertField::Issuer),
        ("common_name", CertField::CommonName),
        ("dns_name", CertField::DnsName),
        ("issuer_thumbprint", CertField::IssuerThumbprint),
        ("not_before", CertField::NotBefore),
        ("not_after", CertField::NotAfter),
    ];

    fn parse(name: &str) -> Option<CertField> {
        let name = name.replace('-', "_");
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate(pub Vec<Part>);

impl KeyTemplate {
    pub fn parse(text: &str) -> Result<KeyTemplate, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(placeholder(&name, text)?);
                }
                '}' => return Err(format!("key template \"{text}\": unmatched '}}'")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if parts.is_empty() {
            return Err("key template is empty; use e.g. \"{client_ip}\"".into());
        }
        Ok(KeyTemplate(parts))
    }

    /// Whether it names a header, query parameter or claim (which may be
    /// absent: what `exists` tests).
    pub fn may_be_absent(&self) -> bool {
        self.0.iter().any(|p| {
            matches!(
                p,
                Part::Header(_) | Part::Query(_) | Part::Jwt(_) | Part::ClientCert(_)
            )
        })
    }

    /// Whether the rendered key includes the client's IP address.
    pub fn uses_client_ip(&self) -> bool {
        self.0.contains(&Part::ClientIp)
    }
}

fn placeholder(name: &str, text: &str) -> Result<Part, String> {
    Ok(match name.split_once(':') {
        None => match name {
            "client_ip" => Part::ClientIp,
            "subscription_id" | "subscription" => Part::Subscription,
            "product" => Part::Product,
            "api" => Part::Api,
            "operation" => Part::Operation,
            "method" => Part::Method,
            "path" => Part::Path,
            _ => return Err(unknown(name, text)),
        },
        Some(("header", h)) => match HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) => Part::Header(name),
            Err(_) => return Err(unknown(name, text)),
        },
        Some(("query", q)) if !q.is_empty() => Part::Query(q.into()),
        Some(("jwt" | "claim", c)) if !c.is_empty() => Part::Jwt(c.into()),
        Some(("client_cert", f)) => match CertField::parse(f) {
            Some(f) => Part::ClientCert(f),
            None => {
                let known: Vec<&str> = CertField::NAMES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "key template \"{text}\": unknown client certificate field \"{f}\"; use {}",
                    known.join(", ")
                ));
            }
        },
        Some(_) => return Err(unknown(name, text)),
    })
}

fn unknown(name: &str, text: &str) -> String {
    format!(
        "key template \"{text}\": unknown placeholder \"{{{name}}}\"; use client_ip, subscription_id, product, api, operation, method, path, header:NAME, query:NAME, jwt:CLAIM or client_cert:FIELD"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_placeholders() {
        assert!(
            KeyTemplate::parse("{cliet_ip}")
                .unwrap_err()
                .contains("cliet_ip")
        );
        assert!(KeyTemplate::parse("{header:}").is_err());
        assert!(KeyTemplate::parse("").is_err());
        assert!(KeyTemplate::parse("a}").is_err());
        assert!(
            KeyTemplate::parse("{client_cert:thumbprnt}")
                .unwrap_err()
                .contains("unknown client certificate field \"thumbprnt\"")
        );
        assert_eq!(
            KeyTemplate::parse("{client_cert:serial-number}").unwrap().0,
            [Part::ClientCert(CertField::SerialNumber)]
        );
    }
}
