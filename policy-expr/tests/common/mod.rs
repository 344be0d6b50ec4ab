//! A request as the gateway would describe it to expressions, owned by
//! the test so that contexts can borrow it.
#![allow(dead_code, reason = "each test binary uses part of the fixture")]

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use edgegw_policy_expr::{
    Api, Context, Deployment, Jwt, LastError, Operation, Product, Request, Response, Subscription,
    Url, User, Value, Variables,
};
use http::{HeaderMap, HeaderValue};
use time::{Duration, OffsetDateTime};

pub const CLAIMS: &str = r#"{"sub":"alice","iss":"https://login.example","aud":["api://orders","other"],"exp":2000000000,"iat":1700000000,"roles":["admin","reader"],"tid":"t-1","scp":"read write","jti":"id-9","age":42}"#;

pub fn token(claims: &str) -> String {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

pub struct Fixture {
    pub headers: HeaderMap,
    pub response_headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub variables: Variables<'static>,
    pub subscription: bool,
    pub last_error: bool,
}

impl Fixture {
    pub fn new() -> Fixture {
        let mut headers = HeaderMap::new();
        let bearer = format!("Bearer {}", token(CLAIMS));
        headers.insert("authorization", HeaderValue::from_str(&bearer).unwrap());
        headers.insert("x-tier", HeaderValue::from_static("gold"));
        headers.insert(
            "user-agent",
            HeaderValue::from_static("Mozilla/5.0 (iPad; CPU OS 17_0)"),
        );
        headers.append("accept", HeaderValue::from_static("text/html"));
        headers.append("accept", HeaderValue::from_static("application/json"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let mut response_headers = HeaderMap::new();
        response_headers.insert("retry-after", HeaderValue::from_static("5"));
        response_headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
        let mut variables = Variables::new();
        variables.insert("maxAge".into(), Value::string("120".into()));
        variables.insert("count".into(), Value::Int(3));
        variables.insert("flag".into(), Value::Bool(true));
        variables.insert(
            "jwt".into(),
            Value::Jwt(Arc::new(Jwt::decode(&token(CLAIMS)).unwrap())),
        );
        let mut token_headers = HeaderMap::new();
        token_headers.insert("content-type", HeaderValue::from_static("application/json"));
        variables.insert(
            "tokenResponse".into(),
            Value::Response(Arc::new(edgegw_policy_expr::KeptResponse {
                status: 200,
                reason: "OK".into(),
                headers: token_headers,
                body: br#"{"access_token":"abc","expires_in":3599}"#.to_vec(),
            })),
        );
        variables.insert(
            "payload".into(),
            Value::Json(Arc::new(
                serde_json::json!({"a": {"b": [1, 2]}, "name": "x"}),
            )),
        );
        Fixture {
            headers,
            response_headers,
            query: vec![
                ("tier".into(), "gold".into()),
                ("x".into(), "1".into()),
            ],
            params: vec![("id".into(), "42".into())],
            body: br#"{"customer":{"id":7,"name":"Ann"},"items":[{"sku":"a","qty":2},{"sku":"b","qty":5}]}"#.to_vec(),
            response_body: b"[1,2,3]".to_vec(),
            variables,
            subscription: true,
            last_error: true,
        }
    }

    pub fn ctx(&self) -> Context<'_> {
        let url = Url {
            scheme: "https",
            host: "api.contoso.com",
            port: 443,
            path: "/orders/42",
            query: &self.query,
            query_string: "?tier=gold&x=1",
        };
        Context {
            request: Request {
                method: "POST",
                url,
                original_url: Url {
                    scheme: "http",
                    host: "edge.local",
                    port: 8080,
                    path: "/v1/orders/42",
                    ..url
                },
                headers: &self.headers,
                ip_address: "10.1.2.3",
                body: Some(&self.body),
                matched_parameters: &self.params,
            },
            response: Some(Response {
                status_code: 503,
                status_reason: "Service Unavailable",
                headers: &self.response_headers,
                body: Some(&self.response_body),
            }),
            subscription: self.subscription.then_some(Subscription {
                id: "sub-1",
                key: "k1",
                name: "Gold subscription",
                primary_key: "k1",
                secondary_key: "k2",
            }),
            product: Some(Product {
                id: "starter",
                name: "Starter",
            }),
            api: Some(Api {
                id: "orders",
                name: "Orders API",
                path: "orders",
                service_url: Url {
                    scheme: "https",
                    host: "backend.internal",
                    port: 443,
                    path: "/api",
                    query: &[],
                    query_string: "",
                },
            }),
            operation: Some(Operation {
                id: "get-order",
                name: "GetOrder",
                method: "GET",
                url_template: "/orders/{id}",
            }),
            user: Some(User {
                id: "u1",
                email: "ann@example.com",
                first_name: "Ann",
                last_name: "Lee",
            }),
            variables: &self.variables,
            last_error: self.last_error.then_some(LastError {
                source: "rate-limit-by-key",
                reason: "RateLimitExceeded",
                message: "Rate limit is exceeded.",
                scope: "api",
                section: "inbound",
                path: "rate-limit-by-key[1]",
                policy_id: "",
            }),
            deployment: Deployment {
                region: "West Europe",
                service_name: "contoso-apim",
                gateway_id: "edge-1",
            },
            request_id: 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
            timestamp: OffsetDateTime::from_unix_timestamp(1_796_500_000).unwrap(),
            elapsed: Duration::milliseconds(1500),
        }
    }
}
