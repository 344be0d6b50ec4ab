//! `rewrite-uri`: replaces the path sent to the backend with a template
//! filled from the operation's URL template parameters, or with what a
//! policy expression computes per request.

use std::sync::Arc;

use edgegw_policy_expr::Expression;
use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// New path, with `{param}` from the operation's URL template; may end
    /// with a query string whose parameters are added. Or a policy
    /// expression whose text is such a path (taken as is).
    template: Value,
    /// Whether the client's query parameters are kept (default true).
    #[serde(default = "yes")]
    copy_unmatched_params: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq)]
pub struct RewriteUriSpec {
    /// The path template, `{param}` placeholders included (empty when
    /// `expression` computes the path).
    pub path: String,
    /// Computes path and query per request.
    pub expression: Option<Arc<Expression>>,
    /// The template's query string, if any (its parameters are added).
    pub query: Option<String>,
    pub copy_query: bool,
}

impl RewriteUriSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let template =
            match super::expr::text_of(&f.template, None).map_err(|e| format!("template: {e}"))? {
                Text::Literal(t) => t,
                Text::Expr(e) => {
                    return Ok(RewriteUriSpec {
                        path: String::new(),
                        expression: Some(e),
                        query: None,
                        copy_query: f.copy_unmatched_params,
                    });
                }
            };
        if !template.starts_with('/') {
            return Err(format!("template \"{template}\" must start with '/'"));
        }
        let (path, query) = match template.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (template.clone(), None),
        };
        Ok(RewriteUriSpec {
            path,
            expression: None,
            query,
            copy_query: f.copy_unmatched_params,
        })
    }
}
