//! The admin listener: health, readiness (XDP attached, listeners bound)
//! and Prometheus metrics checked against known traffic.

use std::path::Path;

use edgegw_tests::{
    backends::TestBackend,
    gateway::{TestGateway, curl, metric_value},
    netns::{NetNs, Veth},
    process::{Daemon, TempDir, edgegw_bin},
};

#[test]
fn metrics_count_known_traffic() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start(
        "met",
        &format!(
            r#"
[[apis]]
name = "orders"
path = "/orders"
backend = "http://{}"
[[apis.operations]]
name = "get-order"
method = "GET"
url = "/{{id}}"
"#,
            backend.addr
        ),
    );
    let admin = |path: &str| curl(&[&format!("http://127.0.0.1:{}{path}", gw.admin_port)]);
    assert_eq!(admin("/healthz").0, 200);
    assert_eq!(admin("/readyz").0, 200);
    assert_eq!(admin("/nope").0, 404);

    for i in 0..5 {
        assert_eq!(
            curl(&["-o", "/dev/null", &gw.url(&format!("/orders/{i}"))]).0,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(curl(&["-o", "/dev/null", &gw.url("/orders/1/x")]).0, 404);
    }
    assert_eq!(curl(&["-o", "/dev/null", &gw.url("/elsewhere")]).0, 404);
    gw.wait_metric("edgegw_request_duration_seconds_count{api=\"orders\"}", 7.0);
    let m = gw.metrics();
    let v = |s: &str| metric_value(&m, s);
    assert_eq!(
        v("edgegw_requests_total{api=\"orders\",operation=\"get-order\",status=\"2xx\"}"),
        5.0,
        "{m}"
    );
    assert_eq!(
        v("edgegw_requests_total{api=\"orders\",operation=\"-\",status=\"4xx\"}"),
        2.0
    );
    assert_eq!(
        v("edgegw_requests_total{api=\"-\",operation=\"-\",status=\"4xx\"}"),
        1.0
    );
    assert_eq!(
        v("edgegw_request_duration_seconds_count{api=\"orders\"}"),
        7.0
    );
    assert_eq!(
        v("edgegw_request_duration_seconds_bucket{api=\"orders\",le=\"+Inf\"}"),
        7.0
    );
    assert_eq!(
        v("edgegw_backend_duration_seconds_count{api=\"orders\"}"),
        5.0
    );
    assert!(v("edgegw_request_duration_seconds_sum{api=\"orders\"}") > 0.0);
    assert_eq!(v("edgegw_active_connections"), 0.0);
    assert!(m.contains("edgegw_rejections_total{reason=\"header_too_large\"} 0"));
    // XDP is off in this test: no datapath series.
    assert!(!m.contains("edgegw_xdp_packets_total"));
}

#[test]
fn ready_with_xdp_attached_and_xdp_counters_in_metrics() {
    let gw = NetNs::new("gw");
    let client = NetNs::new("cl");
    let veth = Veth::new(&gw, &client);
    let tmp = TempDir::new("adm");
    let config = tmp.write(
        "edgegw.toml",
        &format!(
            r#"
[gateway]
listen = "0.0.0.0:8080"
access_log = "off"
[xdp]
iface = "{}"
mode = "native"
[admin]
listen = "127.0.0.1:9901"
[[apis]]
name = "demo"
path = "/"
backend = "http://127.0.0.1:8081"
[demo_backend]
listen = "127.0.0.1:8081"
"#,
            veth.a
        ),
    );
    let cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        config.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    let admin = |path: &str| {
        gw.exec(&[
            "curl",
            "-sS",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:9901{path}"),
        ])
    };
    assert_eq!(admin("/readyz"), "ready\n");
    assert!(Path::new("/sys/fs/bpf/edgegw").join(&veth.a).exists());
    for i in 0..10 {
        let url = format!("http://{}:8080/x/{i}", veth.a_ip);
        client.exec(&[
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            &url,
        ]);
    }
    let m = admin("/metrics");
    // Each curl is at least SYN, ACK, request, FIN, ACK from the client.
    assert!(
        metric_value(&m, "edgegw_xdp_packets_total{reason=\"passed\"}") >= 50.0,
        "{m}"
    );
    assert!(metric_value(&m, "edgegw_xdp_bytes_total{reason=\"passed\"}") > 0.0);
    assert_eq!(
        metric_value(
            &m,
            "edgegw_requests_total{api=\"demo\",operation=\"-\",status=\"2xx\"}"
        ),
        10.0
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
}
