//! `rewrite-uri`: replaces the path sent to the backend (relative to the
//! backend's base path) with a template filled from the operation's URL
//! template parameters: `template: /v2/orders/{id}`.

use std::sync::Arc;

use edgegw_policy_expr::Expression;
use gateway_model::policy::rewrite_uri::RewriteUriSpec;

use super::{
    context::{Ctx, Query},
    expr,
    respond::Answer,
};

#[derive(Debug)]
pub struct RewriteUri {
    path: String,
    /// Computes `path?query` per request instead of the template.
    expression: Option<Arc<Expression>>,
    query: Query,
    copy_query: bool,
}

impl RewriteUri {
    pub fn new(spec: &RewriteUriSpec) -> Self {
        RewriteUri {
            path: spec.path.clone(),
            expression: spec.expression.clone(),
            query: spec
                .query
                .as_deref()
                .map_or_else(Query::default, |q| Query::parse(Some(q))),
            copy_query: spec.copy_query,
        }
    }

    /// Rewrites the path (and query); an expression that fails, or whose
    /// text is not a path, answers 500 (through on-error).
    pub fn run(&self, ctx: &mut Ctx) -> Option<Answer> {
        let Some(e) = &self.expression else {
            self.apply(ctx);
            return None;
        };
        let text = match expr::text(e, ctx) {
            Ok(t) if t.starts_with('/') => t,
            Ok(t) => {
                let err = expr::message(e, &format!("the new URL \"{t}\" does not start with '/'"));
                return Some(expr::failure("rewrite-uri", e, &err));
            }
            Err(err) => return Some(expr::failure("rewrite-uri", e, &err)),
        };
        let (path, query) = match text.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (text.as_str(), None),
        };
        ctx.path = path.to_string();
        if !self.copy_query {
            ctx.query = Query::default();
        }
        if let Some(q) = query {
            ctx.query.0.extend(Query::parse(Some(q)).0);
        }
        None
    }

    /// Fills the template; a parameter the operation does not have is an
    /// empty string.
    fn apply(&self, ctx: &mut Ctx) {
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
        let r = |t: &str| {
            RewriteUriSpec::parse(serde_yaml::from_str(t).unwrap()).map(|s| RewriteUri::new(&s))
        };
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
        // An expression computes path and query per request.
        ctx.query = Query::parse(Some("a=1"));
        let e = r(
            "{template: '@(\"/v3/\" + context.Request.MatchedParameters[\"id\"] + \"?via=\" + context.Request.Method)'}",
        )
        .unwrap();
        assert!(e.run(&mut ctx).is_none());
        assert_eq!(
            (ctx.path.as_str(), ctx.query.to_suffix().as_str()),
            ("/v3/42", "?a=1&via=GET")
        );
        // Not a path: 500, the request unchanged.
        let bad = r("{template: '@(context.Request.Method)'}").unwrap();
        assert_eq!(bad.run(&mut ctx).map(|a| a.status().as_u16()), Some(500));
        assert_eq!(ctx.path, "/v3/42");
    }
}
