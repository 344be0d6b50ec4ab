//! Hostile documents against the real `edgegw-cp`: 10 MB of nesting, an
//! alias bomb, a 10 MB key, each posted to the OpenAPI import four at a
//! time. Each is refused (400, its position, nothing written), while the
//! management API and a gateway's configuration poll keep answering: the
//! documents are parsed in their own lane, within budgets, in one pass.
//! Timings are printed, never asserted.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use edgegw_tests::{
    cp::{ControlPlane, Store},
    managed::admin_ok,
    process::TempDir,
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(hostile_documents_are_refused_while_admins_and_gateways_are_answered);

const SIZE: usize = 10 << 20;

fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let head = "openapi: 3.1.0\npaths:\n  /a:\n    get:\n      x: ";
    let deep_flow = format!("{head}{}", "[".repeat(SIZE));
    let deep_json = format!(
        "{{\"openapi\": \"3.1.0\", \"paths\": {{\"/a\": {{\"get\": {{\"x\": {}{}}}}}}}}}",
        "[".repeat(SIZE / 2),
        "]".repeat(SIZE / 2)
    );
    let mut deep_block = String::from("openapi: 3.1.0\npaths:\n");
    let mut depth = 1;
    while deep_block.len() < SIZE {
        deep_block.push_str(&" ".repeat(depth.min(4000)));
        deep_block.push_str("k:\n");
        depth += 1;
    }
    let mut bomb = String::from("openapi: 3.1.0\nx0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..40 {
        let p = i - 1;
        bomb.push_str(&format!(
            "x{i}: &a{i} [{}]\n",
            vec![format!("*a{p}"); 10].join(", ")
        ));
    }
    bomb.push_str("paths: {/a: {get: {x: *a39}}}\n");
    let long_key = format!(
        "openapi: 3.1.0\npaths:\n  /{}: {{get: {{}}}}\n",
        "k".repeat(SIZE)
    );
    vec![
        ("deep flow YAML", deep_flow.into_bytes()),
        ("deep JSON", deep_json.into_bytes()),
        ("deep block YAML", deep_block.into_bytes()),
        ("alias bomb", bomb.into_bytes()),
        ("10 MB key", long_key.into_bytes()),
    ]
}

fn hostile_documents_are_refused_while_admins_and_gateways_are_answered(store: Store) {
    let tmp = TempDir::new("cphostile");
    let cp = Arc::new(ControlPlane::launch(store, &tmp.0, &[]));
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/orders",
        json!({"path": "/orders", "backend": "http://127.0.0.1:9000", "operations": []}),
    );
    let token = cp.gateway_token("edge-1");
    admin_ok(
        &cp,
        "PUT",
        "/v1/gateways/edge-1",
        json!({"apis": ["orders"]}),
    );

    // Unloaded, for comparison.
    let mut quiet = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(cp.admin("GET", "/v1/apis", None).0, 200);
        quiet.push(started.elapsed());
    }
    quiet.sort();
    eprintln!(
        "GET /v1/apis unloaded: p50 {:?}, max {:?}",
        quiet[2], quiet[4]
    );

    let documents = hostile();
    // Alone: how long each takes to be refused.
    for (what, body) in &documents {
        let started = Instant::now();
        let answer = cp.request(
            "POST",
            "/v1/apis/import?name=h&path=/h&backend=http://127.0.0.1:9",
            Some(&cp.admin_token),
            &[],
            Some(body),
        );
        let took = started.elapsed();
        let json: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let message = json["message"].as_str().unwrap_or_default();
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        assert!(message.contains(" line "), "{what}: a position: {message}");
        assert!(!message.contains('\n'), "{message}");
        eprintln!(
            "{what:>16}: {} bytes refused in {took:?} (upload included): {message}",
            body.len()
        );
    }

    // Four at a time, twice over, while an admin lists the APIs and the
    // gateway polls its configuration.
    let done = Arc::new(AtomicBool::new(false));
    let posters: Vec<_> = (0..4)
        .map(|i| {
            let cp = cp.clone();
            let bodies: Vec<Vec<u8>> = [i, i + 1]
                .iter()
                .map(|j| documents[j % documents.len()].1.clone())
                .collect();
            std::thread::spawn(move || {
                for body in bodies {
                    let answer = cp.request(
                        "POST",
                        "/v1/apis/import?name=h&path=/h&backend=http://127.0.0.1:9",
                        Some(&cp.admin_token),
                        &[],
                        Some(&body),
                    );
                    assert!(
                        answer.status == 400 || answer.status == 503,
                        "{}",
                        answer.body
                    );
                }
            })
        })
        .collect();
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            for p in posters {
                p.join().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let (mut admin_times, mut gateway_times) = (Vec::new(), Vec::new());
    loop {
        let finished = done.load(Ordering::SeqCst);
        let started = Instant::now();
        let (status, apis) = cp.admin("GET", "/v1/apis", None);
        admin_times.push(started.elapsed());
        assert_eq!(status, 200, "{apis}");
        assert_eq!(apis.as_array().unwrap().len(), 1, "{apis}");
        let started = Instant::now();
        let answer = cp.gateway(&token, "GET", "/v1/gateway/config", &[], None);
        gateway_times.push(started.elapsed());
        assert_eq!(answer.status, 200, "{}", answer.body);
        if finished {
            break;
        }
    }
    watcher.join().unwrap();
    for (what, times) in [
        ("GET /v1/apis", &mut admin_times),
        ("GET /v1/gateway/config", &mut gateway_times),
    ] {
        times.sort();
        let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        eprintln!(
            "{what}: {} answers while hostile imports ran: p50 {:?}, p99 {:?}, max {:?} (curl process and TLS handshake included)",
            times.len(),
            p(0.5),
            p(0.99),
            times.last().copied().unwrap_or(Duration::ZERO)
        );
        assert!(!times.is_empty(), "{what} answered during the imports");
    }
    // Nothing was written.
    assert_eq!(cp.admin("GET", "/v1/apis/h", None).0, 404);
}
