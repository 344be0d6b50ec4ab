//! Rendering the key template language of `*-by-key` policies
//! (`counter_key`) and of conditions' operands, per request. The language
//! and its parsing: `gateway_model::policy::key_template`.

use std::{borrow::Cow, fmt::Write};

pub use gateway_model::policy::key_template::KeyTemplate;
use gateway_model::policy::key_template::{CertField, Part};

use super::context::Ctx;

/// A parsed template, against a request.
pub trait Render {
    /// Whether every header, query parameter and claim the template
    /// names is present in the request (`exists` of conditions).
    fn present(&self, ctx: &Ctx) -> bool;

    /// The key for this request; a template of one part that is already
    /// text in the request (`{subscription_id}`, `{header:x}`, ...) is
    /// borrowed, not copied.
    fn render<'c>(&'c self, ctx: &'c Ctx) -> Cow<'c, str>;
}

impl Render for KeyTemplate {
    fn present(&self, ctx: &Ctx) -> bool {
        self.0.iter().all(|part| match part {
            Part::Header(name) => ctx.headers.contains_key(name),
            Part::Query(name) => ctx.query.get(name).is_some(),
            Part::Jwt(claim) => ctx
                .jwt_claims
                .as_ref()
                .is_some_and(|c| c.contains_key(claim)),
            Part::ClientCert(field) => ctx.client_cert.is_some_and(|c| match field {
                CertField::DnsName => !c.info.dns_names.is_empty(),
                CertField::IssuerThumbprint => c.issuer_thumbprint.is_some(),
                _ => true,
            }),
            _ => true,
        })
    }

    fn render<'c>(&'c self, ctx: &'c Ctx) -> Cow<'c, str> {
        if let [part] = self.0.as_slice()
            && let Some(text) = borrowed(part, ctx)
        {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(64);
        for part in &self.0 {
            if let Some(text) = borrowed(part, ctx) {
                out.push_str(text);
                continue;
            }
            match part {
                Part::ClientIp => {
                    let _ = write!(out, "{}", ctx.client_ip);
                }
                Part::Query(name) => out.push_str(&ctx.query.get(name).unwrap_or_default()),
                Part::Jwt(claim) => match ctx.jwt_claims.as_ref().and_then(|c| c.get(claim)) {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(other) => out.push_str(&other.to_string()),
                    None => {}
                },
                Part::ClientCert(CertField::NotBefore) => {
                    if let Some(c) = ctx.client_cert {
                        let _ = write!(out, "{}", c.info.not_before);
                    }
                }
                Part::ClientCert(CertField::NotAfter) => {
                    if let Some(c) = ctx.client_cert {
                        let _ = write!(out, "{}", c.info.not_after);
                    }
                }
                _ => unreachable!("borrowed() renders every other part"),
            }
        }
        Cow::Owned(out)
    }
}

/// The text of a part that the template or the request already holds.
fn borrowed<'c>(part: &'c Part, ctx: &'c Ctx) -> Option<&'c str> {
    Some(match part {
        Part::Text(t) => t,
        Part::Subscription => ctx.subscription.unwrap_or_default(),
        Part::Product => ctx.product.unwrap_or_default(),
        Part::Api => ctx.api,
        Part::Operation => ctx.operation.unwrap_or_default(),
        Part::Method => ctx.method.as_str(),
        Part::Path => &ctx.path,
        Part::Header(name) => ctx
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
        Part::ClientCert(field) => cert_field(*field, ctx)?,
        Part::ClientIp | Part::Query(_) | Part::Jwt(_) => return None,
    })
}

/// A text field of the client certificate ("" without one); `None` for
/// the numeric ones, which are rendered.
fn cert_field<'c>(field: CertField, ctx: &'c Ctx) -> Option<&'c str> {
    let Some(c) = ctx.client_cert else {
        return (!matches!(field, CertField::NotBefore | CertField::NotAfter)).then_some("");
    };
    Some(match field {
        CertField::Thumbprint => &c.info.thumbprint,
        CertField::SerialNumber => &c.info.serial_number,
        CertField::Subject => &c.info.subject,
        CertField::Issuer => &c.info.issuer,
        CertField::CommonName => &c.info.common_name,
        CertField::DnsName => c.info.dns_names.first().map_or("", String::as_str),
        CertField::IssuerThumbprint => c.issuer_thumbprint.as_deref().unwrap_or_default(),
        CertField::NotBefore | CertField::NotAfter => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::Query;

    #[test]
    fn renders_every_placeholder() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-tenant", "t1".parse().unwrap());
        let method = hyper::Method::GET;
        let mut ctx = Ctx {
            path: "/1".into(),
            query: Query::parse(Some("region=eu")),
            api: "orders",
            operation: Some("get"),
            subscription: Some("alice"),
            ..Ctx::test(&method, &mut headers)
        };
        let t = KeyTemplate::parse(
            "{client_ip}|{subscription_id}|{product}|{api}|{operation}|{header:X-Tenant}|{query:region}|{jwt:sub}|{{x}}",
        )
        .unwrap();
        assert_eq!(t.render(&ctx), "10.0.0.1|alice||orders|get|t1|eu||{x}");
        ctx.jwt_claims = serde_json::json!({"sub": "u1"}).as_object().cloned();
        assert!(t.render(&ctx).ends_with("|u1|{x}"));
        let aliases = KeyTemplate::parse("{subscription}|{claim:sub}|{method}|{path}").unwrap();
        assert_eq!(aliases.render(&ctx), "alice|u1|GET|/1");
        // One part: borrowed from the request, or rendered.
        for (t, v, borrowed) in [
            ("{subscription}", "alice", true),
            ("{header:X-TENANT}", "t1", true),
            ("{header:x-absent}", "", true),
            ("literal", "literal", true),
            ("{client_ip}", "10.0.0.1", false),
            ("{query:region}", "eu", false),
        ] {
            let r = KeyTemplate::parse(t).unwrap();
            let r = r.render(&ctx);
            assert_eq!((&*r, matches!(r, Cow::Borrowed(_))), (v, borrowed), "{t}");
        }
    }

    #[test]
    fn presence_of_headers_queries_and_claims() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-tier", "".parse().unwrap());
        let method = hyper::Method::GET;
        let ctx = Ctx {
            query: Query::parse(Some("debug")),
            ..Ctx::test(&method, &mut headers)
        };
        let present = |t: &str| KeyTemplate::parse(t).unwrap().present(&ctx);
        assert!(present("{header:X-Tier}"));
        assert!(present("{query:debug}"));
        assert!(present("{client_ip}"));
        assert!(!present("{header:x-other}"));
        assert!(!present("{query:other}"));
        assert!(!present("{jwt:sub}"));
    }
}
