//! Longest-prefix routing of request paths to APIs.

use crate::config::Api;

/// APIs ordered so that the first match is the most specific one.
#[derive(Debug)]
pub struct Router {
    apis: Vec<Api>,
}

impl Router {
    pub fn new(mut apis: Vec<Api>) -> Router {
        apis.sort_by_key(|a| std::cmp::Reverse(a.prefix.len()));
        Router { apis }
    }

    /// The API whose prefix matches `path` on a segment boundary, with the
    /// rest of the path (always starting with '/', or empty).
    pub fn route<'a>(&self, path: &'a str) -> Option<(&Api, &'a str)> {
        self.apis.iter().find_map(|api| {
            if api.prefix == "/" {
                return Some((api, path));
            }
            let rest = path.strip_prefix(api.prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((api, rest))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;

    fn api(name: &str, prefix: &str) -> Api {
        Api {
            name: name.into(),
            prefix: prefix.into(),
            backend: Backend {
                scheme: "http".into(),
                authority: "b".into(),
                base_path: String::new(),
            },
        }
    }

    #[test]
    fn longest_prefix_on_segment_boundary_wins() {
        let r = Router::new(vec![
            api("root", "/"),
            api("orders", "/orders"),
            api("v2", "/orders/v2"),
        ]);
        let name = |p: &str| {
            r.route(p)
                .map(|(a, rest)| (a.name.clone(), rest.to_string()))
        };
        assert_eq!(name("/orders/v2/x"), Some(("v2".into(), "/x".into())));
        assert_eq!(name("/orders/1"), Some(("orders".into(), "/1".into())));
        assert_eq!(name("/orders"), Some(("orders".into(), "".into())));
        assert_eq!(name("/ordersx"), Some(("root".into(), "/ordersx".into())));
        assert_eq!(name("/other"), Some(("root".into(), "/other".into())));
    }

    #[test]
    fn no_match_without_root() {
        let r = Router::new(vec![api("orders", "/orders")]);
        assert!(r.route("/users").is_none());
    }
}
