//! `cargo xtask bench console` (after the page weights): the time to
//! first render of the console's fleet page in Debian's headless
//! chromium, with a fleet of `--gateways N` (default 1000) registered
//! gateways that have sent heartbeats, `--apis N` (default 100) APIs, ten
//! assigned to each gateway; `--rounds N` (default 5), median.
//!
//! Two figures per round, both timed inside the page, up to the mark the
//! fleet page sets once its rows are painted (`fleet-rendered`):
//! - **cold**: a fresh load of `/ui/#/fleet` (HTML, scripts, session check,
//!   `GET /v1/gateways`, render), from the navigation's start;
//! - **in-app**: from the click on "Fleet" on another page of the console.
//!
//! Target: under 1 s. Prints numbers; asserts nothing about speed.
#![forbid(unsafe_code)]

use std::time::Instant;

use edgegw_tests::{browser::Chromium, cp::ControlPlane, process::TempDir};
use serde_json::{Value, json};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("{name} takes a positive number")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gateways = arg(&args, "--gateways", 1000);
    let apis = arg(&args, "--apis", 100);
    let rounds = arg(&args, "--rounds", 5);
    let tmp = TempDir::new("console-bench");
    let cp = ControlPlane::start(&tmp.0);

    let seeded = Instant::now();
    seed(&cp, gateways, apis);
    println!(
        "fleet: {gateways} gateways with heartbeats, {apis} APIs (seeded in {:.1} s)",
        seeded.elapsed().as_secs_f64()
    );

    let browser = Chromium::start();
    let page = browser.page();
    page.goto(&format!("{}/ui/", cp.url()));
    page.fill("input[name=token]", &cp.admin_token);
    page.click("form[data-testid=signin] button[type=submit]");
    page.wait_text("nav", "Sign out");

    // The fleet page marks `fleet-rendered` once its rows are painted.
    let rendered = format!(
        "new Promise(done => {{ const check = () => {{ const m = performance.getEntriesByName('fleet-rendered'); m.length && document.querySelectorAll('[data-testid=fleet] tbody tr').length >= {gateways} ? done(m[m.length - 1].startTime) : setTimeout(check, 10); }}; check(); }})"
    );
    let (mut cold, mut in_app, mut breakdown) = (Vec::new(), Vec::new(), Value::Null);
    for _ in 0..rounds {
        page.goto(&format!("{}/ui/#/fleet", cp.url()));
        cold.push(number(page.js(&rendered)));
        breakdown = page.js(BREAKDOWN);

        page.click_text("nav a", "Products");
        page.wait_text("main h2", "Products");
        let started = number(page.js(
            "(() => { performance.clearMarks('fleet-rendered'); const t = performance.now(); document.querySelector('nav a[href=\"#/fleet\"]').click(); return t; })()",
        ));
        in_app.push(number(page.js(&rendered)) - started);
    }
    page.screenshot("bench-fleet");
    println!("fleet page, time to first render (median of {rounds}; target under 1000 ms):");
    println!(
        "  cold load   {:>7.0} ms  (rounds, sorted: {})",
        median(&mut cold),
        list(&cold)
    );
    println!(
        "  in-app      {:>7.0} ms  (rounds, sorted: {})",
        median(&mut in_app),
        list(&in_app)
    );
    println!("  where the last cold load's time went (ms from the navigation's start):");
    for step in breakdown.as_array().into_iter().flatten() {
        println!(
            "    {:>7.0}  {}",
            step[1].as_f64().unwrap_or_default(),
            step[0].as_str().unwrap_or_default()
        );
    }
}

/// When each part of the page's load ended: the document, then each
/// script, stylesheet and API call (resource timing), as `[name, ms]`.
const BREAKDOWN: &str = "[['document', performance.getEntriesByType('navigation')[0].responseEnd], ['DOMContentLoaded', performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd], ...performance.getEntriesByType('resource').map(r => [r.name.replace(location.origin, '') + ' (took ' + Math.round(r.responseEnd - r.startTime) + ' ms)', r.responseEnd])]";

/// The APIs, then each gateway (ten APIs each) and one heartbeat from it
/// at its desired version, so every row shows health, version and drops.
fn seed(cp: &ControlPlane, gateways: u64, apis: u64) {
    for i in 0..apis {
        let (status, body) = cp.admin(
            "PUT",
            &format!("/v1/apis/api-{i:03}"),
            Some(&json!({"path": format!("/api-{i:03}"), "backend": "http://127.0.0.1:9"})),
        );
        assert_eq!(status, 201, "api-{i:03}: {body}");
    }
    std::thread::scope(|s| {
        // Four clients at once: each request is a curl process.
        for part in 0..4 {
            s.spawn(move || {
                for i in (part..gateways).step_by(4) {
                    let names: Vec<String> = (0..10)
                        .map(|k| format!("api-{:03}", (i * 10 + k) % apis))
                        .collect();
                    let (status, gw) = cp.admin(
                        "POST",
                        "/v1/gateways",
                        Some(&json!({"name": format!("gw-{i:04}"), "apis": names})),
                    );
                    assert_eq!(status, 201, "gw-{i:04}: {gw}");
                    let beat = cp.gateway(
                        gw["token"].as_str().expect("a gateway token"),
                        "POST",
                        "/v1/gateway/heartbeat",
                        &[],
                        Some(&json!({
                            "version": gw["desired_version"], "uptime_secs": 60 + i,
                            "healthy": i % 50 != 0, "last_sync_error": null,
                            "xdp": {"passed": 1000 + i, "rate_limited": i % 7},
                            "usage": []
                        })),
                    );
                    assert_eq!(beat.status, 200, "heartbeat gw-{i:04}: {}", beat.body);
                }
            });
        }
    });
}

fn number(v: Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("the page answered {v}, not a time"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|t| format!("{t:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}
