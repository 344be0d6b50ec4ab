//! The policy-expression engine (`edgegw-policy-expr`): any text as an
//! `@(...)` expression or an `@{...}` block never panics or overflows
//! the stack; it is refused with a located message, or accepted — then
//! its printed tree parses back to the same tree, and evaluating it
//! against a request gives a value or an error, never a panic.
#![no_main]

use edgegw_policy_expr::{
    Api, Context, Deployment, Expression, Request, Response, Subscription, Url, Variables, parser,
    print,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As written when it starts like an expression, else both wrappers.
    let candidates = if edgegw_policy_expr::is_expression(text) {
        vec![text.to_string()]
    } else {
        vec![format!("@({text})"), format!("@{{{text}}}")]
    };
    for source in candidates {
        if let Ok(tree) = parser::parse(&source) {
            let printed = print::source(&tree);
            assert_eq!(
                parser::parse(&printed).ok().as_ref(),
                Some(&tree),
                "{printed}"
            );
        }
        match Expression::parse(&source) {
            Ok(expr) => evaluate(&expr),
            Err(e) => assert!(e.line >= 1 && !e.problem.is_empty() && !e.hint.is_empty()),
        }
    }
});

fn evaluate(expr: &Expression) {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-tier", http::HeaderValue::from_static("gold"));
    headers.insert(
        "authorization",
        http::HeaderValue::from_static(
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsInJvbGVzIjpbImEiLCJiIl19.",
        ),
    );
    let query = vec![("a".to_string(), "1".to_string())];
    let mut variables = Variables::new();
    variables.insert("n".into(), edgegw_policy_expr::Value::Int(1));
    variables.insert("s".into(), edgegw_policy_expr::Value::string("x".into()));
    let url = Url {
        scheme: "https",
        host: "h",
        port: 443,
        path: "/p",
        query: &query,
        query_string: "?a=1",
    };
    let ctx = Context {
        request: Request {
            method: "GET",
            url,
            original_url: url,
            headers: &headers,
            ip_address: "10.0.0.1",
            body: Some(br#"{"a":[1,2],"b":"c"}"#),
            matched_parameters: &[],
        },
        response: Some(Response {
            status_code: 200,
            status_reason: "OK",
            headers: &headers,
            body: Some(b"[]"),
        }),
        subscription: Some(Subscription::default()),
        product: None,
        api: Some(Api::default()),
        operation: None,
        user: None,
        variables: &variables,
        last_error: None,
        deployment: Deployment::default(),
        request_id: 1,
        timestamp: time::OffsetDateTime::UNIX_EPOCH,
        elapsed: time::Duration::ZERO,
    };
    if let Err(e) = expr.eval(&ctx) {
        assert!(e.message.starts_with("Expression evaluation failed."));
    }
}
