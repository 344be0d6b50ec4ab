//! APIM documents that use what edgegw already has, under APIM's own
//! attribute names, translated and enforced through the real `edgegw`:
//! `increment-condition` on the by-key limits (counted once the response
//! is known), response caching with `cache-lookup` / `cache-store`
//! (`apim_cache.rs`), and the limits' `retry-after-*`, `remaining-calls-*`
//! and `total-calls-header-name`.

use std::{
    io::{Read, Write},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use edgegw_tests::apim::{ApimGateway, fetch};

/// A backend that answers `500` to its first `failures` requests, then
/// `200`; its port and request counter.
fn failing_first(failures: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let status = if n < failures {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    (port, hits)
}

/// Indents an XML document under a YAML block scalar.
fn block(xml: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    xml.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

/// As APIM's documentation writes it (a bare `<` and `&&`, which APIM
/// accepts inside expressions): only successful calls count.
const COUNT_SUCCESSES: &str = r#"<policies>
  <inbound>
    <rate-limit-by-key calls="2" renewal-period="600"
        counter-key="@(context.Request.IpAddress)"
        increment-condition="@(context.Response.StatusCode >= 200 && context.Response.StatusCode < 400)" />
  </inbound>
</policies>"#;

/// Every call counts.
const COUNT_ALL: &str = r#"<policies>
  <inbound>
    <rate-limit-by-key calls="2" renewal-period="600" counter-key="@(context.Request.IpAddress)" />
  </inbound>
</policies>"#;

#[test]
fn increment_condition_counts_only_the_calls_whose_response_satisfies_it() {
    let (counted, counted_hits) = failing_first(3);
    let (all, _) = failing_first(3);
    let apis = format!(
        "[[apis]]\nname = \"counted\"\npath = \"/counted\"\nbackend = \"http://127.0.0.1:{counted}\"\n\
         [[apis]]\nname = \"all\"\npath = \"/all\"\nbackend = \"http://127.0.0.1:{all}\"\n"
    );
    let catalog = format!(
        "apis:\n  - name: counted\n    subscription_required: false\n    policies: |\n{}\
         \x20 - name: all\n    subscription_required: false\n    policies: |\n{}",
        block(COUNT_SUCCESSES, 6),
        block(COUNT_ALL, 6),
    );
    let gw = ApimGateway::start("apimincr", &apis, &catalog);
    let statuses = |api: &str| -> Vec<u16> {
        (0..6)
            .map(|i| fetch(&[&gw.url(&format!("/{api}/{i}"))]).status)
            .collect()
    };
    // Three 500s are not counted: the two 200s after them use the
    // allowance up, the sixth call is refused.
    assert_eq!(statuses("counted"), [500, 500, 500, 200, 200, 429]);
    assert_eq!(counted_hits.load(Ordering::SeqCst), 5);
    let r = fetch(&[&gw.url("/counted/x")]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // Without the condition the 500s count: the third call is refused.
    assert_eq!(statuses("all"), [500, 500, 429, 429, 429, 429]);
}

/// APIM's names for a limit's state: headers on the answer, and
/// variables that outbound and on-error read.
const STATE_NAMES: &str = r#"<policies>
  <inbound>
    <rate-limit calls="2" renewal-period="600" retry-after-header-name="x-wait"
        retry-after-variable-name="wait" remaining-calls-header-name="x-left"
        remaining-calls-variable-name="left" total-calls-header-name="x-total" />
  </inbound>
  <outbound>
    <set-header name="x-left-var" exists-action="override">
      <value>@(context.Variables.GetValueOrDefault<int>("left", -1).ToString())</value>
    </set-header>
  </outbound>
  <on-error>
    <set-header name="x-wait-var" exists-action="override">
      <value>@(context.Variables.GetValueOrDefault<int>("wait", -1).ToString())</value>
    </set-header>
  </on-error>
</policies>"#;

#[test]
fn limit_state_names_put_remaining_total_and_wait_where_apim_puts_them() {
    let (port, _) = failing_first(0);
    let apis = format!(
        "[[apis]]\nname = \"named\"\npath = \"/named\"\nbackend = \"http://127.0.0.1:{port}\"\n"
    );
    let catalog = format!(
        "apis:\n  - name: named\n    subscription_required: false\n    policies: |\n{}",
        block(STATE_NAMES, 6),
    );
    let gw = ApimGateway::start("apimstate", &apis, &catalog);
    for left in ["1", "0"] {
        let r = fetch(&[&gw.url("/named/a")]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-left"), Some(left));
        assert_eq!(r.header("x-left-var"), Some(left));
        assert_eq!(r.header("x-total"), Some("2"));
        assert_eq!(r.header("x-wait"), None);
    }
    let r = fetch(&[&gw.url("/named/a")]);
    assert_eq!(r.status, 429, "{}", r.body);
    let wait: u64 = r.header("x-wait").unwrap().parse().unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    assert_eq!(r.header("retry-after"), Some(wait.to_string().as_str()));
    assert_eq!(r.header("x-wait-var"), Some(wait.to_string().as_str()));
    assert_eq!(r.header("x-total"), Some("2"));
}
