//! `choose` / `when` / `otherwise` end to end, through the real `edgegw`
//! and real echo backends: branches taken by header, query and client IP,
//! `otherwise`, a nested choose, a branch that answers, one that switches
//! the backend, a choose in outbound, and bad conditions refused at start
//! and at SIGHUP reload.

use edgegw_tests::{
    apim::{ApimGateway, fetch},
    backends::TestBackend,
    process::{TempDir, edgegw, free_port},
};

fn apis(backend: &TestBackend) -> String {
    format!(
        "[[apis]]\nname = \"shop\"\npath = \"/shop\"\nbackend = \"http://{}\"\n",
        backend.addr
    )
}

fn catalog(other: &TestBackend) -> String {
    format!(
        r#"
apis:
  - name: shop
    subscription_required: false
    policies:
      inbound:
        - choose:
            - when: "{{header:x-tier}} == 'gold'"
              policies:
                - set-header: {{name: x-branch, value: gold}}
            - when: "{{query:debug}} exists and {{client_ip}} starts-with '127.'"
              policies:
                - set-header: {{name: x-branch, value: debug}}
                - choose:
                    - when: "{{query:debug}} == 'deep'"
                      policies:
                        - set-header: {{name: x-nested, value: deep}}
                    - otherwise:
                        - set-header: {{name: x-nested, value: shallow}}
            - when: "{{header:x-block}} exists"
              policies:
                - return-response: {{status_code: 418, body: blocked}}
            - when: "{{header:x-route}} == 'other'"
              policies:
                - set-backend-service: {{base_url: "http://{other}/v2"}}
            - otherwise:
                - rate-limit-by-key: {{calls: 1, renewal_period: 600, counter_key: "{{client_ip}}"}}
                - set-header: {{name: x-branch, value: otherwise}}
      outbound:
        - choose:
            - when: "{{header:x-tier}} == 'gold' or {{path}} starts-with '/vip'"
              policies:
                - set-header: {{name: x-served, value: gold}}
                - set-status: {{code: 203}}
            - otherwise:
                - set-header: {{name: x-served, value: standard}}
      backend:
        - choose:
            - when: "{{header:x-hurry}} exists"
              policies:
                - forward-request: {{timeout: 1}}
      on-error:
        - choose:
            - when: "{{header:x-hurry}} == 'yes'"
              policies:
                - set-header: {{name: x-error-branch, value: hurry}}
            - otherwise:
                - set-header: {{name: x-error-branch, value: other}}
"#,
        other = other.addr
    )
}

#[test]
fn branches_run_as_if_written_in_the_section() {
    let (backend, other) = (TestBackend::echo(), TestBackend::echo());
    let gw = ApimGateway::start("choose", &apis(&backend), &catalog(&other));

    // A when taken by header (names are case-insensitive), and the outbound
    // choose deciding on the same request.
    let r = fetch(&["-H", "X-Tier: gold", &gw.url("/shop/items/1")]);
    assert_eq!(r.status, 203, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-branch"], "gold");
    assert_eq!(r.header("x-served"), Some("gold"));
    // Values compare case-sensitively: "Gold" is not "gold".
    let r = fetch(&[
        "-H",
        "X-Tier: Gold",
        "-H",
        "x-block: 1",
        &gw.url("/shop/items/1"),
    ]);
    assert_eq!((r.status, r.body.as_str()), (418, "blocked"));

    // A second when (query + client IP) with a nested choose, both ways.
    let r = fetch(&[&gw.url("/shop/items/1?debug=deep")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let h = &r.json()["headers"];
    assert_eq!(
        (&h["x-branch"], &h["x-nested"]),
        (&"debug".into(), &"deep".into())
    );
    assert_eq!(r.header("x-served"), Some("standard"));
    let r = fetch(&[&gw.url("/shop/items/1?debug")]);
    assert_eq!(r.json()["headers"]["x-nested"], "shallow");

    // A branch that switches the backend.
    let r = fetch(&["-H", "x-route: other", &gw.url("/shop/items/2")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/v2/items/2");
    assert_eq!(other.hits(), 1);

    // Otherwise: its rate limit (1 call) answers 429 on the second call,
    // while the other branches are not limited. The outbound choose sees
    // the path.
    let r = fetch(&[&gw.url("/shop/vip/1")]);
    assert_eq!(r.status, 203, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-branch"], "otherwise");
    assert_eq!(r.header("x-served"), Some("gold"));
    let r = fetch(&[&gw.url("/shop/items/1")]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("x-error-branch"), Some("other"));
    let r = fetch(&["-H", "x-tier: gold", &gw.url("/shop/items/1")]);
    assert_eq!(r.status, 203, "{}", r.body);
    assert_eq!(backend.hits(), 5);
}

#[test]
fn backend_and_on_error_sections_choose_per_request() {
    let (backend, other) = (TestBackend::echo(), TestBackend::echo());
    let gw = ApimGateway::start("choosebk", &apis(&backend), &catalog(&other));
    // The backend section's choose sets a 1 s timeout for this request
    // only; the on-error section's choose marks the 504.
    let slow = gw.url("/shop/items/1?delay_ms=3000");
    let r = fetch(&["-H", "x-tier: gold", "-H", "x-hurry: yes", &slow]);
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.header("x-error-branch"), Some("hurry"));
    // Without the header the backend section has no timeout: the slow
    // answer arrives.
    let r = fetch(&["-H", "x-tier: gold", &gw.url("/shop/items/1?delay_ms=1200")]);
    assert_eq!(r.status, 203, "{}", r.body);
    assert_eq!(r.header("x-error-branch"), None);
}

const BAD_CONDITION: &str = "api \"shop\": inbound: choose: when 1: condition \"{header:x} = 'a'\": unknown operator \"=\" at column 12; use ==, !=, starts-with, ends-with, contains or exists";

fn bad_catalog() -> &'static str {
    r#"
apis:
  - name: shop
    subscription_required: false
    policies:
      inbound:
        - choose:
            - when: "{header:x} = 'a'"
              policies: []
      outbound:
        - choose:
            - when: "'a' == 'a'"
              policies:
                - set-backend-service: {base_url: "http://127.0.0.1:9"}
"#
}

#[test]
fn a_bad_condition_stops_the_start_with_one_line() {
    let backend = TestBackend::echo();
    let tmp = TempDir::new("choosebad");
    tmp.write("catalog.yaml", bad_catalog());
    let cfg = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n{}\n[catalog]\nfile = \"catalog.yaml\"\n",
            free_port(),
            apis(&backend)
        ),
    );
    let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(BAD_CONDITION), "{err}");
    // A policy that cannot run in the section, inside a branch.
    assert!(
        err.contains("api \"shop\": outbound: choose: when 1: policy \"set-backend-service\" cannot run in the outbound section"),
        "{err}"
    );
    assert!(!err.contains("edgegw ready"));
}

#[test]
fn a_bad_condition_at_reload_keeps_the_last_good_catalog() {
    let (backend, other) = (TestBackend::echo(), TestBackend::echo());
    let mut gw = ApimGateway::start("choosehup", &apis(&backend), &catalog(&other));
    let gold = |gw: &ApimGateway| fetch(&["-H", "x-tier: gold", &gw.url("/shop/items/1")]);
    assert_eq!(gold(&gw).status, 203);

    std::fs::write(&gw.catalog, bad_catalog()).unwrap();
    gw.gw.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gw
        .gw
        .daemon
        .log_text()
        .contains("configuration reload rejected")
    {
        assert!(std::time::Instant::now() < deadline, "no reload rejection");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = gw.gw.daemon.log_text();
    assert!(
        log.contains("unknown operator") && log.contains("at column 12"),
        "{log}"
    );
    // The old catalog, choose included, still serves.
    let r = gold(&gw);
    assert_eq!(r.status, 203, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-branch"], "gold");
    assert_eq!(gw.gw.daemon.stop(), Some(0));
}
