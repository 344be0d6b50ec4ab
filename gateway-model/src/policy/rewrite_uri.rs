//! `rewrite-uri`: replaces the path sent to the backend with a template
//! filled from the operation's URL template parameters.

use serde::Deserialize;
use serde_yaml::Value;

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteUriSpec {
    /// The path template, `{param}` placeholders included.
    pub path: String,
    /// The template's query string, if any (its parameters are added).
    pub query: Option<String>,
    pub copy_query: bool,
}

impl RewriteUriSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if !f.template.starts_with('/') {
            return Err(format!("template \"{}\" must start with '/'", f.template));
        }
        let (path, query) = match f.template.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (f.template.clone(), None),
        };
        Ok(RewriteUriSpec {
            path,
            query,
            copy_query: f.copy_unmatched_params,
        })
    }
}
