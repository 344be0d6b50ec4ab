//! `rewrite-uri`: replaces the path sent to the backend (relative to the
//! backend's base path) with a template filled from the operation's URL
//! template parameters: `template: /v2/orders/{id}`.

use serde::Deserialize;
use serde_yaml::Value;

use super::context::{Ctx, Query};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// New path, with `{param}` from the operation's URL template; may end
    /// with a query string whose parameters are added.
    template: String,
    /// Whether the client's query parameters are kept (default true).
    #[serde(default = "yes")]
    copy_unmatched_params: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug)]
pub struct RewriteUri {
    path: String,
    query: Query,
    copy_query: bool,
}

impl RewriteUri {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        if !f.template.starts_with('/') {
            return Err(format!("template \"{}\" must start with '/'", f.template));
        }
        let (path, query) = match f.template.split_once('?') {
            Some((p, q)) => (p.to_string(), Query::parse(Some(q))),
            None => (f.template.clone(), Query::default()),
        };
        Ok(RewriteUri {
            path,
            query,
            copy_query: f.copy_unmatched_params,
        })
    }

    /// Fills the template; a parameter the operation does not have is an
    /// empty string.
    pub fn apply(&self, ctx: &mut Ctx) {
        let mut out = String::with_capacity(self.path.len());
        let mut rest = self.path.as_str();
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            if let Some((_, v)) = ctx.params.iter().find(|(n, _)| n == name) {
                out.push_str(v);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        ctx.path = out;
        if !self.copy_query {
            ctx.query = Query::default();
        }
        ctx.query.0.extend(self.query.0.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_parameters_and_merges_the_query() {
        let mut headers = hyper::HeaderMap::new();
        let method = hyper::Method::GET;
        let params = vec![("id".to_string(), "42".to_string())];
        let mut ctx = Ctx {
            path: "/42".into(),
            query: Query::parse(Some("a=1")),
            params: &params,
            ..Ctx::test(&method, &mut headers)
        };
        let r = |t: &str| RewriteUri::parse(serde_yaml::from_str(t).unwrap());
        r("{template: '/v2/orders/{id}/detail?v=2'}")
            .unwrap()
            .apply(&mut ctx);
        assert_eq!(ctx.path, "/v2/orders/42/detail");
        assert_eq!(ctx.query.to_suffix(), "?a=1&v=2");
        r("{template: /x, copy_unmatched_params: false}")
            .unwrap()
            .apply(&mut ctx);
        assert_eq!(
            (ctx.path.as_str(), ctx.query.to_suffix().as_str()),
            ("/x", "")
        );
        assert!(r("{template: x}").is_err());
    }
}
