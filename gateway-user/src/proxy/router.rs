//! Picking the API and operation for a request.
//!
//! APIs: the longest path prefix on a segment boundary wins; for the same
//! prefix an API bound to the request's host beats one without a host.
//! Operations: the method must match and the most specific URL template
//! wins (literal over `{param}` over `*`, segment by segment).

use hyper::Method;

use crate::config::{Api, Operation};

/// A successful match: the API, operation and template parameters the
/// later phases (policies, rewrites, the access log) use.
#[derive(Debug)]
pub struct Route<'a, 'p> {
    pub api: &'a Api,
    pub operation: Option<&'a Operation>,
    pub params: Vec<(String, String)>,
    /// The path after the API prefix (starts with '/', or is empty).
    pub rest: &'p str,
}

/// Why nothing matched.
#[derive(Debug)]
pub enum NoRoute<'a> {
    Api,
    /// The API matched, none of its operations did.
    Operation {
        api: &'a Api,
    },
}

/// APIs ordered so that the first match is the most specific one.
#[derive(Debug)]
pub struct Router {
    apis: Vec<Api>,
}

impl Router {
    pub fn new(mut apis: Vec<Api>) -> Router {
        apis.sort_by_key(|a| (std::cmp::Reverse(a.prefix.len()), a.host.is_none()));
        Router { apis }
    }

    /// Whether an operation of any API names `method` explicitly.
    pub fn names_method(&self, method: &Method) -> bool {
        self.apis
            .iter()
            .flat_map(|a| &a.operations)
            .any(|o| o.method.as_ref() == Some(method))
    }

    /// The API `path` falls in, and the rest of the path after its prefix
    /// (inlined into `route`, which every request calls).
    #[inline]
    fn api_for<'a, 'p>(&'a self, host: Option<&str>, path: &'p str) -> Option<(&'a Api, &'p str)> {
        self.apis
            .iter()
            .filter(|api| api.host.is_none() || api.host.as_deref() == host)
            .find_map(|api| {
                if api.prefix == "/" {
                    return Some((api, path));
                }
                let rest = path.strip_prefix(api.prefix.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some((api, rest))
            })
    }

    /// The methods operations allow on `path`, for a 405's `Allow` (an
    /// operation for any method, or an API without operations, allows the
    /// usual ones: CONNECT and TRACE only where named).
    pub fn allowed(&self, host: Option<&str>, path: &str) -> String {
        const USUAL: [Method; 7] = [
            Method::DELETE,
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PATCH,
            Method::POST,
            Method::PUT,
        ];
        let Some((api, rest)) = self.api_for(host, path) else {
            return String::new();
        };
        let relative = if rest.is_empty() { "/" } else { rest };
        let mut methods: Vec<&str> = Vec::new();
        if api.operations.is_empty() {
            methods.extend(USUAL.iter().map(Method::as_str));
        }
        for op in &api.operations {
            if op.template.matches(relative).is_some() {
                match &op.method {
                    Some(m) => methods.push(m.as_str()),
                    None => methods.extend(USUAL.iter().map(Method::as_str)),
                }
            }
        }
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }

    pub fn route<'a, 'p>(
        &'a self,
        host: Option<&str>,
        method: &Method,
        path: &'p str,
    ) -> Result<Route<'a, 'p>, NoRoute<'a>> {
        let (api, rest) = self.api_for(host, path).ok_or(NoRoute::Api)?;
        if api.operations.is_empty() {
            return Ok(Route {
                api,
                operation: None,
                params: Vec::new(),
                rest,
            });
        }
        let relative = if rest.is_empty() { "/" } else { rest };
        let best = api
            .operations
            .iter()
            .filter(|op| op.method.as_ref().is_none_or(|m| m == method))
            .filter_map(|op| {
                let (params, key) = op.template.matches(relative)?;
                // A specific method beats "*" for the same template.
                Some(((key, op.method.is_none()), op, params))
            })
            .min_by(|a, b| a.0.cmp(&b.0));
        match best {
            Some((_, op, params)) => Ok(Route {
                api,
                operation: Some(op),
                params,
                rest,
            }),
            None => Err(NoRoute::Operation { api }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const CONFIG: &str = r#"
        [gateway]
        listen = "127.0.0.1:1"
        [[apis]]
        name = "root"
        path = "/"
        backend = "http://b:1"
        [[apis]]
        name = "orders"
        path = "/orders"
        backend = "http://b:1"
        [[apis.operations]]
        name = "list"
        method = "GET"
        url = "/"
        [[apis.operations]]
        name = "get"
        method = "GET"
        url = "/{id}"
        [[apis.operations]]
        name = "latest"
        method = "GET"
        url = "/latest"
        [[apis.operations]]
        name = "any"
        method = "*"
        url = "/*"
        [[apis]]
        name = "orders-v2"
        path = "/orders/v2"
        backend = "http://b:1"
        [[apis]]
        name = "orders-host"
        path = "/orders"
        host = "shop.example"
        backend = "http://b:1"
        [[apis]]
        name = "users"
        path = "/users"
        backend = "http://b:1"
        [[apis.operations]]
        name = "get-user"
        method = "GET"
        url = "/{id}"
    "#;

    /// API, operation, parameters, rest of the path.
    type Found = (String, Option<String>, Vec<(String, String)>, String);

    /// Or the API that matched without an operation (`None`: no API).
    fn route(host: Option<&str>, method: Method, path: &str) -> Result<Found, Option<String>> {
        let config = Config::parse("t.toml", CONFIG).unwrap();
        let router = Router::new(config.apis);
        router
            .route(host, &method, path)
            .map(|r| {
                (
                    r.api.name.to_string(),
                    r.operation.map(|o| o.name.to_string()),
                    r.params,
                    r.rest.to_string(),
                )
            })
            .map_err(|e| match e {
                NoRoute::Api => None,
                NoRoute::Operation { api } => Some(api.name.to_string()),
            })
    }

    #[test]
    fn most_specific_api_and_operation_win() {
        let r = route(None, Method::GET, "/orders/42").unwrap();
        assert_eq!(r.0, "orders");
        assert_eq!(r.1.as_deref(), Some("get"));
        assert_eq!(r.2, vec![("id".to_string(), "42".to_string())]);
        assert_eq!(r.3, "/42");
        assert_eq!(
            route(None, Method::GET, "/orders/latest")
                .unwrap()
                .1
                .as_deref(),
            Some("latest")
        );
        assert_eq!(
            route(None, Method::GET, "/orders").unwrap().1.as_deref(),
            Some("list")
        );
        assert_eq!(
            route(None, Method::POST, "/orders/1").unwrap().1.as_deref(),
            Some("any")
        );
        assert_eq!(
            route(None, Method::GET, "/orders/1/items")
                .unwrap()
                .1
                .as_deref(),
            Some("any")
        );
        assert_eq!(
            route(None, Method::GET, "/orders/v2/x").unwrap().0,
            "orders-v2"
        );
        assert_eq!(route(None, Method::GET, "/ordersx").unwrap().0, "root");
        assert_eq!(
            route(Some("shop.example"), Method::GET, "/orders/1")
                .unwrap()
                .0,
            "orders-host"
        );
    }

    #[test]
    fn allowed_methods_are_those_of_the_matching_operations() {
        let config = Config::parse("t.toml", CONFIG).unwrap();
        let router = Router::new(config.apis);
        assert_eq!(router.allowed(None, "/users/1"), "GET");
        assert_eq!(
            router.allowed(None, "/orders/1"),
            "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
        );
        assert_eq!(router.allowed(None, "/users/1/x"), "");
    }

    #[test]
    fn unmatched_operation_is_reported_with_its_api() {
        assert_eq!(
            route(None, Method::DELETE, "/users/1"),
            Err(Some("users".into()))
        );
        assert_eq!(
            route(None, Method::GET, "/users/1/x"),
            Err(Some("users".into()))
        );
    }
}
