//! `cargo xtask bench expr`: the policy-expression engine against the
//! gateway's native key templates, in one process and one run.
//!
//! - A counter key built by an expression, `String.Concat` of a header
//!   and a JWT claim (the token decoded from the request, as APIM does),
//!   against the native template `{header:x-tier}-{jwt:tid}` (claims
//!   that `validate-jwt` already parsed).
//! - A key from a header and the subscription id, both ways.
//! - A comparison of a header with a literal (a `choose` condition).
//! - Load: parsing and checking 1,000 distinct expressions, against
//!   parsing 1,000 key templates.
//!
//! Prints nanoseconds per evaluation (median of rounds) and ratios;
//! asserts nothing about speed. Options: `--rounds N` (default 7),
//! `--iterations N` per round (default 200000).
#![forbid(unsafe_code)]

use std::{
    hint::black_box,
    net::IpAddr,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use edgegw::policy::{
    context::{Ctx, ExtraHeaders, Query},
    template::{KeyTemplate, Render},
};
use edgegw_policy_expr as expr;
use http::{HeaderMap, HeaderValue, Method};

fn main() -> anyhow::Result<()> {
    let mut rounds = 7usize;
    let mut iterations = 200_000u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().unwrap_or_default().parse()?,
            "--iterations" => iterations = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown option {other:?}; known: --rounds N, --iterations N"),
        }
    }
    let claims = r#"{"sub":"alice","tid":"tenant-7","roles":["a","b"],"exp":2000000000}"#;
    let token = format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut headers = HeaderMap::new();
    headers.insert("x-tier", HeaderValue::from_static("gold"));
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));

    // The gateway's context, for the native templates.
    let method = Method::GET;
    let mut native_headers = headers.clone();
    let claims_map = match serde_json::from_str(claims)? {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("the claims are an object"),
    };
    let ctx = Ctx {
        client_ip: IpAddr::from([10, 0, 0, 1]),
        client_cert: None,
        method: &method,
        headers: &mut native_headers,
        path: "/orders/42".into(),
        original: ("/orders/orders/42", None),
        query: Query::default(),
        api: "orders",
        operation: Some("get-order"),
        params: &[],
        subscription: Some("sub-1"),
        product: Some("starter"),
        response_headers: ExtraHeaders::default(),
        jwt_claims: Some(claims_map),
        backend: None,
        client_identity: None,
        slots: Vec::new(),
        charges: Vec::new(),
        deferred: Vec::new(),
        xdp: None,
        cache: None,
        variables: Default::default(),
        set_method: None,
        body: Default::default(),
        traces: Vec::new(),
        tokens: None,
    };

    // The expression engine's context for the same request.
    let variables = expr::Variables::new();
    let url = expr::Url {
        scheme: "https",
        host: "api.local",
        port: 443,
        path: "/orders/42",
        query: &[],
        query_string: "",
    };
    let ectx = expr::Context {
        request: expr::Request {
            method: "GET",
            url,
            original_url: url,
            headers: &headers,
            ip_address: "10.0.0.1",
            body: None,
            matched_parameters: &[],
        },
        response: None,
        subscription: Some(expr::Subscription {
            id: "sub-1",
            ..Default::default()
        }),
        product: None,
        api: None,
        operation: None,
        user: None,
        variables: &variables,
        last_error: None,
        deployment: expr::Deployment::default(),
        request_id: 1,
        timestamp: time::OffsetDateTime::UNIX_EPOCH,
        elapsed: time::Duration::ZERO,
    };

    let pairs: [(&str, &str, &str); 3] = [
        (
            "header + JWT claim",
            r#"@(String.Concat(context.Request.Headers.GetValueOrDefault("X-Tier", ""), "-", context.Request.Headers.GetValueOrDefault("Authorization", "").AsJwt()?.Claims.GetValueOrDefault("tid", "")))"#,
            "{header:x-tier}-{jwt:tid}",
        ),
        (
            "header + subscription",
            r#"@(String.Concat(context.Request.Headers.GetValueOrDefault("X-Tier", ""), "-", context.Subscription.Id))"#,
            "{header:x-tier}-{subscription_id}",
        ),
        (
            "one header",
            r#"@(context.Request.Headers.GetValueOrDefault("X-Tier", ""))"#,
            "{header:x-tier}",
        ),
    ];
    println!("bench expr: {rounds} rounds of {iterations} evaluations, median ns per evaluation");
    println!(
        "{:<24} {:>12} {:>12} {:>8}",
        "key", "expression", "native", "ratio"
    );
    for (label, text, template) in pairs {
        let e = expr::Expression::parse(text)?;
        let t = KeyTemplate::parse(template).map_err(anyhow::Error::msg)?;
        let got = e.eval(&ectx)?;
        let want = t.render(&ctx);
        anyhow::ensure!(
            got.as_str() == Some(want.as_ref()),
            "{label}: the expression gives {got:?}, the template {want:?}"
        );
        let e_ns = median_ns(rounds, iterations, || {
            black_box(e.eval(black_box(&ectx)).ok());
        });
        let n_ns = median_ns(rounds, iterations, || {
            black_box(t.render(black_box(&ctx)));
        });
        println!(
            "{label:<24} {e_ns:>12.1} {n_ns:>12.1} {:>7.1}x",
            e_ns / n_ns
        );
    }

    // A condition: the native one is a string comparison.
    let cond = expr::Expression::parse(
        r#"@(context.Request.Headers.GetValueOrDefault("X-Tier", "") == "gold")"#,
    )?;
    let tier = KeyTemplate::parse("{header:x-tier}").map_err(anyhow::Error::msg)?;
    let c_ns = median_ns(rounds, iterations, || {
        black_box(cond.eval(black_box(&ectx)).ok());
    });
    let n_ns = median_ns(rounds, iterations, || {
        black_box(tier.render(black_box(&ctx)) == "gold");
    });
    println!(
        "{:<24} {c_ns:>12.1} {n_ns:>12.1} {:>7.1}x",
        "header == \"gold\"",
        c_ns / n_ns
    );

    // Load: 1,000 distinct expressions, parsed and checked.
    let texts: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"@{{ var t = context.Request.Headers.GetValueOrDefault("X-Tier-{i}", ""); if (t.Equals("gold", StringComparison.OrdinalIgnoreCase)) {{ return String.Concat(t, "-", context.Subscription?.Id ?? "anon"); }} return context.Request.Headers.GetValueOrDefault("Authorization", "").AsJwt()?.Claims.GetValueOrDefault("tid", "{i}"); }}"#
            )
        })
        .collect();
    let templates: Vec<String> = (0..1000)
        .map(|i| format!("{{header:x-tier-{i}}}-{{subscription_id}}-{{jwt:tid}}"))
        .collect();
    let mut load = Vec::new();
    let mut native_load = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for t in &texts {
            black_box(expr::Expression::parse(t)?);
        }
        load.push(start.elapsed());
        let start = Instant::now();
        for t in &templates {
            black_box(KeyTemplate::parse(t).map_err(anyhow::Error::msg)?);
        }
        native_load.push(start.elapsed());
    }
    let (l, nl) = (median(&mut load), median(&mut native_load));
    println!(
        "load 1,000 expressions (a 5-statement block each): {:.2} ms; 1,000 key templates: {:.2} ms ({:.0}x)",
        l.as_secs_f64() * 1e3,
        nl.as_secs_f64() * 1e3,
        l.as_secs_f64() / nl.as_secs_f64()
    );
    Ok(())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median over `rounds` of the mean time of one call.
fn median_ns(rounds: usize, iterations: u32, mut f: impl FnMut()) -> f64 {
    let mut per = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        per.push(start.elapsed().as_secs_f64() * 1e9 / f64::from(iterations));
    }
    per.sort_by(f64::total_cmp);
    per[per.len() / 2]
}
