//! OpenTelemetry export and local telemetry, end to end: the real
//! `edgegw` and `edgegw-cp` export to a real OTLP/HTTP receiver run by the
//! test (a hyper server decoding the protobuf with opentelemetry-proto);
//! curl is the client and the echo backend shows the `traceparent` it got.
//! Also: the access log's fields, `/metrics` (build info, process metrics,
//! buckets to 300 s), a collector that is slow or failing (the gateway
//! keeps serving and counts what it could not send), and bad settings.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
    time::{Duration, Instant},
};

use edgegw_tests::{
    apim::{ApimGateway, hash_key},
    backends::TestBackend,
    cp::ControlPlane,
    gateway::{TestGateway, curl, curl_json, metric_value},
    process::{TempDir, assert_one_line_error, edgegw, free_port},
};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::{
    collector::{metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest},
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{AggregationTemporality as Temporality, Metric, metric::Data, number_data_point},
    trace::v1::Span,
};
use prost::Message;

/// One span as received, with its resource's `service.name`.
#[derive(Clone, Debug)]
struct Got {
    service: String,
    span: Span,
}

impl Got {
    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    fn attr(&self, key: &str) -> Option<String> {
        attribute(&self.span.attributes, key)
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value {
        AnyValue {
            value: Some(Value::StringValue(s)),
        } => Some(s.clone()),
        AnyValue {
            value: Some(Value::IntValue(i)),
        } => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the receiver answers.
const OK: u16 = 200;
const FAIL: u16 = 500;
/// Holds the export for 5 s before answering 200.
const HANG: u16 = 0;

/// (API, operation, status code) of a request series.
type SeriesKey = (String, String, u16);

/// The request metrics of the latest export that carried them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Requests {
    /// `http.server.requests`.
    counts: BTreeMap<SeriesKey, u64>,
    /// `http.server.request.duration`: count, and the sum of its buckets.
    durations: BTreeMap<SeriesKey, (u64, u64)>,
}

/// What the receiver got.
#[derive(Default)]
struct Received {
    spans: Vec<Got>,
    requests: Requests,
}

/// A real OTLP/HTTP receiver on a free loopback port.
struct Collector {
    addr: SocketAddr,
    got: Arc<Mutex<Received>>,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    fn start(answer: u16) -> Collector {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let got = Arc::new(Mutex::new(Received::default()));
        let answer = Arc::new(AtomicU16::new(answer));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let g = got.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (g, answer) = (g.clone(), answer.clone());
                let service = service_fn(move |req: Request<Incoming>| {
                    let (g, answer) = (g.clone(), answer.clone());
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await?.to_bytes();
                        receive(&path, &body, &mut g.lock().unwrap());
                        let status = match answer.load(Ordering::Relaxed) {
                            HANG => {
                                tokio::time::sleep(Duration::from_secs(5)).await;
                                OK
                            }
                            other => other,
                        };
                        let mut r = Response::new(Full::new(bytes::Bytes::new()));
                        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        r.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            "application/x-protobuf".parse().unwrap(),
                        );
                        Ok::<_, hyper::Error>(r)
                    }
                });
                tokio::spawn(
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned(),
                );
            }
        });
        Collector {
            addr,
            got,
            _runtime: runtime,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<Got> {
        self.got.lock().unwrap().spans.clone()
    }

    /// Waits (up to 15 s) for `n` spans.
    fn wait_spans(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.spans();
            if spans.len() >= n || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 15 s) until an export carries exactly these request
    /// counts (and fails the test otherwise); returns what it carried.
    fn wait_requests(&self, want: &[(&str, &str, u16, u64)]) -> Requests {
        let want: BTreeMap<SeriesKey, u64> = want
            .iter()
            .map(|(api, op, status, n)| ((api.to_string(), op.to_string(), *status), *n))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.got.lock().unwrap().requests.clone();
            if got.counts == want {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "request metrics exported: {got:#?}\nwanted counts: {want:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Decodes one export as a collector does.
fn receive(path: &str, body: &[u8], got: &mut Received) {
    match path {
        "/v1/traces" => {
            let req = ExportTraceServiceRequest::decode(body).expect("OTLP trace protobuf");
            for rs in req.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .and_then(|r| attribute(&r.attributes, "service.name"))
                    .unwrap_or_default();
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        got.spans.push(Got {
                            service: service.clone(),
                            span,
                        });
                    }
                }
            }
        }
        "/v1/metrics" => {
            let req = ExportMetricsServiceRequest::decode(body).expect("OTLP metrics protobuf");
            for rm in req.resource_metrics {
                for sm in rm.scope_metrics {
                    for m in sm.metrics {
                        requests(&m, &mut got.requests);
                    }
                }
            }
        }
        other => panic!("unexpected OTLP path {other}"),
    }
}

/// Takes the request metrics' points (cumulative: each export carries
/// every series so far, and replaces what an earlier one said).
fn requests(m: &Metric, into: &mut Requests) {
    let key = |attributes: &[KeyValue]| -> SeriesKey {
        let get = |k| attribute(attributes, k).unwrap_or_else(|| panic!("{k} missing: {m:?}"));
        (
            get("edgegw.api"),
            get("edgegw.operation"),
            get("http.response.status_code").parse().unwrap(),
        )
    };
    match (m.name.as_str(), &m.data) {
        ("http.server.requests", Some(Data::Sum(sum))) => {
            assert!(sum.is_monotonic, "{m:?}");
            assert_eq!(sum.aggregation_temporality, Temporality::Cumulative as i32);
            into.counts = sum
                .data_points
                .iter()
                .map(|p| match p.value {
                    Some(number_data_point::Value::AsInt(n)) => (key(&p.attributes), n as u64),
                    _ => panic!("an integer count: {p:?}"),
                })
                .collect();
        }
        ("http.server.request.duration", Some(Data::Histogram(h))) => {
            assert_eq!(h.aggregation_temporality, Temporality::Cumulative as i32);
            into.durations = h
                .data_points
                .iter()
                .map(|p| {
                    assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1, "{p:?}");
                    (key(&p.attributes), (p.count, p.bucket_counts.iter().sum()))
                })
                .collect();
        }
        (name, data) => panic!("unexpected metric {name}: {data:?}"),
    }
}

fn otlp_section(collector_endpoint: &str, extra: &str) -> String {
    format!(
        "[telemetry]\nredact_query = [\"token\"]\n[telemetry.otlp]\nendpoint = \"{collector_endpoint}\"\nmetrics_interval_ms = 300\n{extra}\n"
    )
}

fn apim(tag: &str, backend: &TestBackend, telemetry: &str) -> ApimGateway {
    let b = backend.addr;
    ApimGateway::start(
        tag,
        &format!(
            "[[apis]]\nname = \"orders\"\npath = \"/orders\"\nbackend = \"http://{b}\"\n[[apis.operations]]\nname = \"get-order\"\nmethod = \"GET\"\nurl = \"/{{id}}\"\n\
             [[apis]]\nname = \"limited\"\npath = \"/limited\"\nbackend = \"http://{b}\"\n{telemetry}"
        ),
        &format!(
            "apis:\n  - name: orders\n  - name: limited\n    subscription_required: false\n    policies:\n      inbound:\n        - rate-limit: {{calls: 1, renewal_period: 60}}\n\
             products:\n  - name: gold\n    apis: [orders]\n\
             subscriptions:\n  - {{id: alice, scope: \"product:gold\", primary_key_sha256: {}}}\n",
            hash_key("alice-key")
        ),
    )
}

#[test]
fn one_span_per_request_with_the_backends_trace_and_http_attributes() {
    let collector = Collector::start(OK);
    let backend = TestBackend::echo();
    let gw = apim(
        "otel-spans",
        &backend,
        &otlp_section(&collector.endpoint(), ""),
    );

    // Continues the caller's trace: key in the query (redacted in the log).
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (status, echoed) = curl_json(&[
        "-H",
        &format!("traceparent: {caller}"),
        "-A",
        "otel-test/1.0",
        &gw.url("/orders/42?subscription-key=alice-key&token=t0p&x=1"),
    ]);
    assert_eq!(status, 200, "{echoed}");
    let seen = echoed["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        seen.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{seen}"
    );
    let hop = &seen[36..52];

    // Starts a trace: key in the header.
    let (status, echoed) = curl_json(&[
        "-H",
        "Ocp-Apim-Subscription-Key: alice-key",
        &gw.url("/orders/7"),
    ]);
    assert_eq!(status, 200, "{echoed}");
    let started = echoed["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(started.ends_with("-01"), "sampled at ratio 1: {started}");
    // Refused: no key; then a rate limit.
    let (status, _) = curl(&[&gw.url("/orders/8")]);
    assert_eq!(status, 401);
    assert_eq!(curl(&[&gw.url("/limited/a")]).0, 200);
    assert_eq!(curl(&[&gw.url("/limited/b")]).0, 429);

    let spans = collector.wait_spans(5);
    assert_eq!(spans.len(), 5, "one span per request: {spans:#?}");
    let continued: Vec<&Got> = spans
        .iter()
        .filter(|s| s.trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736")
        .collect();
    assert_eq!(continued.len(), 1);
    let s = continued[0];
    assert_eq!(s.service, "edgegw");
    // The gateway's span is the parent the backend saw, its parent the caller's.
    assert_eq!(hex(&s.span.span_id), hop);
    assert_eq!(hex(&s.span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(s.span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(s.span.name, "GET get-order");
    for (key, want) in [
        ("http.request.method", "GET"),
        ("url.path", "/orders/42"),
        ("url.query", "subscription-key=REDACTED&token=REDACTED&x=1"),
        ("url.scheme", "http"),
        ("server.address", &format!("127.0.0.1:{}", gw.gw.port)),
        ("http.response.status_code", "200"),
        ("network.protocol.version", "1.1"),
        ("client.address", "127.0.0.1"),
        ("user_agent.original", "otel-test/1.0"),
        ("edgegw.api", "orders"),
        ("edgegw.operation", "get-order"),
        ("edgegw.subscription", "alice"),
        ("edgegw.product", "gold"),
        ("edgegw.backend.address", &backend.addr.to_string()),
        ("edgegw.backend.status_code", "200"),
    ] {
        assert_eq!(s.attr(key).as_deref(), Some(want), "{key} in {:?}", s.span);
    }
    let new_trace = &started[3..35];
    let s = spans.iter().find(|s| s.trace_id() == new_trace).unwrap();
    assert_eq!(hex(&s.span.span_id), &started[36..52]);
    assert!(s.span.parent_span_id.is_empty(), "a root span");
    let refused: BTreeMap<String, Option<String>> = spans
        .iter()
        .filter_map(|s| {
            let status = s.attr("http.response.status_code")?;
            (status != "200").then(|| (status, s.attr("edgegw.refused_by")))
        })
        .collect();
    assert_eq!(
        refused,
        BTreeMap::from([
            ("401".into(), Some("subscription-key".into())),
            ("429".into(), Some("rate-limit".into())),
        ])
    );

    // Request metrics: exactly the requests made, per API, operation and
    // status, each with its durations.
    let want = [
        ("orders", "get-order", 200, 2),
        ("orders", "get-order", 401, 1),
        ("limited", "-", 200, 1),
        ("limited", "-", 429, 1),
    ];
    let got = collector.wait_requests(&want);
    assert_eq!(got.counts.len(), want.len(), "{got:#?}");
    for (key, n) in &got.counts {
        assert_eq!(got.durations.get(key), Some(&(*n, *n)), "{got:#?}");
    }

    // The access log: semantic-convention names, the key redacted.
    let lines = gw.gw.wait_access_log(5);
    assert_eq!(lines.len(), 5);
    let first = &lines[0];
    for (key, want) in [
        (
            "trace_id",
            serde_json::json!("4bf92f3577b34da6a3ce929d0e0e4736"),
        ),
        ("client.address", "127.0.0.1".into()),
        ("http.request.method", "GET".into()),
        ("url.scheme", "http".into()),
        ("server.address", format!("127.0.0.1:{}", gw.gw.port).into()),
        ("url.path", "/orders/42".into()),
        (
            "url.query",
            "subscription-key=REDACTED&token=REDACTED&x=1".into(),
        ),
        ("network.protocol.version", "1.1".into()),
        ("user_agent.original", "otel-test/1.0".into()),
        ("edgegw.api", "orders".into()),
        ("edgegw.operation", "get-order".into()),
        ("edgegw.subscription", "alice".into()),
        ("edgegw.product", "gold".into()),
        ("http.response.status_code", 200.into()),
        ("edgegw.refused_by", serde_json::Value::Null),
        ("edgegw.backend.address", backend.addr.to_string().into()),
        ("edgegw.backend.status_code", 200.into()),
    ] {
        assert_eq!(first[key], want, "{key} in {first}");
    }
    assert!(first["http.response.body.size"].as_u64().unwrap() > 0);
    assert!(first["edgegw.duration_ms"].as_f64().unwrap() > 0.0);
    assert!(first["edgegw.backend.duration_ms"].as_f64().unwrap() > 0.0);
    let text = std::fs::read_to_string(&gw.gw.access_log).unwrap();
    assert!(
        !text.contains("alice-key") && !text.contains("t0p"),
        "{text}"
    );
    assert_eq!(lines[2]["edgegw.refused_by"], "subscription-key");
    assert_eq!(lines[2]["edgegw.backend.address"], serde_json::Value::Null);
    assert_eq!(lines[4]["edgegw.refused_by"], "rate-limit");

    // /metrics: build info, process metrics, buckets up to 300 s, the export.
    let m = gw.gw.metrics();
    let build = m
        .lines()
        .find(|l| l.starts_with("edgegw_build_info{"))
        .unwrap_or_else(|| panic!("no build info in\n{m}"));
    assert!(
        build.starts_with(&format!(
            "edgegw_build_info{{version=\"{}\",commit=\"",
            env!("CARGO_PKG_VERSION")
        )) && build.ends_with("\"} 1")
            && !build.contains("commit=\"\""),
        "{build}"
    );
    assert!(
        metric_value(&m, "process_resident_memory_bytes") > 1e6,
        "{m}"
    );
    assert!(metric_value(&m, "process_open_fds") >= 3.0);
    assert!(metric_value(&m, "process_cpu_seconds_total") > 0.0);
    let start = metric_value(&m, "process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start > now - 600.0 && start <= now + 1.0,
        "{start} vs {now}"
    );
    assert_eq!(
        metric_value(
            &m,
            "edgegw_request_duration_seconds_bucket{api=\"orders\",le=\"300\"}"
        ),
        3.0,
        "{m}"
    );
    assert!(metric_value(&m, "edgegw_otlp_spans_total{outcome=\"exported\"}") >= 5.0);
    assert_eq!(
        metric_value(&m, "edgegw_otlp_spans_total{outcome=\"dropped\"}"),
        0.0
    );
}

#[test]
fn ratio_zero_exports_no_new_trace_but_follows_a_sampled_caller() {
    let collector = Collector::start(OK);
    let backend = TestBackend::echo();
    let gw = TestGateway::start(
        "otel-ratio0",
        &format!(
            "[[apis]]\nname = \"orders\"\npath = \"/orders\"\nbackend = \"http://{}\"\n{}",
            backend.addr,
            otlp_section(&collector.endpoint(), "sampling_ratio = 0.0")
        ),
    );
    for i in 0..20 {
        let (status, echoed) = curl_json(&[&gw.url(&format!("/orders/{i}"))]);
        assert_eq!(status, 200);
        let tp = echoed["headers"]["traceparent"].as_str().unwrap();
        assert!(
            tp.ends_with("-00"),
            "not sampled, and the backend is told: {tp}"
        );
    }
    // Metrics arrive: the exporter works, it just has no spans to send.
    collector.wait_requests(&[("orders", "-", 200, 20)]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(collector.spans().len(), 0, "{:#?}", collector.spans());

    // A caller that sampled its trace is followed (parent-based).
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (status, _) = curl(&[
        "-H",
        &format!("traceparent: {caller}"),
        &gw.url("/orders/x"),
    ]);
    assert_eq!(status, 200);
    let spans = collector.wait_spans(1);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].trace_id(), "0af7651916cd43dd8448eb211c80319c");
    // One that did not sample is not.
    let unsampled = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let (status, _) = curl(&[
        "-H",
        &format!("traceparent: {unsampled}"),
        &gw.url("/orders/y"),
    ]);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(collector.spans().len(), 1);
}

/// `edgegw status --json` of a gateway started with `EDGEGW_RUNTIME_DIR`.
fn status_json(run: &TempDir) -> serde_json::Value {
    let out = edgegw(&["status", "--json", "--runtime-dir", run.0.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn gateway_exporting_to(
    tag: &str,
    backend: &TestBackend,
    endpoint: &str,
    extra: &str,
    run: &TempDir,
) -> TestGateway {
    TestGateway::start_with_env(
        tag,
        &format!(
            "[[apis]]\nname = \"orders\"\npath = \"/orders\"\nbackend = \"http://{}\"\n{}",
            backend.addr,
            otlp_section(endpoint, extra)
        ),
        &[("EDGEGW_RUNTIME_DIR", run.0.to_str().unwrap())],
    )
}

#[test]
fn a_collector_that_fails_is_counted_and_the_gateway_keeps_serving() {
    let collector = Collector::start(FAIL);
    let backend = TestBackend::echo();
    let run = TempDir::new("otel-fail-run");
    let gw = gateway_exporting_to("otel-fail", &backend, &collector.endpoint(), "", &run);
    for i in 0..30 {
        assert_eq!(curl(&[&gw.url(&format!("/orders/{i}"))]).0, 200);
    }
    let failed = "edgegw_otlp_spans_total{outcome=\"failed\"}";
    assert_eq!(gw.wait_metric(failed, 30.0), 30.0, "{}", gw.metrics());
    assert!(gw.metric("edgegw_otlp_metric_exports_failed_total") >= 1.0);
    // The receiver got them (and answered 500): really sent, really failed.
    assert_eq!(collector.spans().len(), 30);
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = status_json(&run);
        if s["telemetry"]["spans_failed"] == 30 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(s["telemetry"]["spans_failed"], 30, "{s}");
    assert_eq!(s["telemetry"]["endpoint"], collector.endpoint());
    assert!(
        s["telemetry"]["last_error"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{s}"
    );
    let out = edgegw(&["status", "--runtime-dir", run.0.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("otlp") && l.contains("failed 30")),
        "{text}"
    );
}

#[test]
fn a_slow_or_absent_collector_fills_the_queue_which_drops_and_counts() {
    let collector = Collector::start(HANG);
    let backend = TestBackend::echo();
    let run = TempDir::new("otel-slow-run");
    let gw = gateway_exporting_to(
        "otel-slow",
        &backend,
        &collector.endpoint(),
        "queue_size = 2\nexport_timeout_ms = 3000",
        &run,
    );
    // While the first export hangs, the queue (2) is full: every other
    // span is dropped, and no request waits for the collector.
    for i in 0..20 {
        assert_eq!(curl(&[&gw.url(&format!("/orders/{i}"))]).0, 200);
    }
    let m = gw.metrics();
    let dropped = metric_value(&m, "edgegw_otlp_spans_total{outcome=\"dropped\"}");
    assert!(dropped >= 1.0, "{m}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_json(&run)["telemetry"]["spans_dropped"].as_f64() != Some(dropped)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        status_json(&run)["telemetry"]["spans_dropped"].as_f64(),
        Some(dropped)
    );

    // No collector at all: exports fail at once, requests are served.
    let nothing = format!("http://127.0.0.1:{}", free_port());
    let run2 = TempDir::new("otel-none-run");
    let gw2 = gateway_exporting_to("otel-none", &backend, &nothing, "", &run2);
    for i in 0..10 {
        assert_eq!(curl(&[&gw2.url(&format!("/orders/{i}"))]).0, 200);
    }
    let failed = "edgegw_otlp_spans_total{outcome=\"failed\"}";
    assert_eq!(gw2.wait_metric(failed, 10.0), 10.0, "{}", gw2.metrics());
}

#[test]
fn the_control_plane_has_metrics_and_exports_its_spans() {
    let collector = Collector::start(OK);
    let dir = TempDir::new("otel-cp");
    let endpoint = collector.endpoint();
    let cp = ControlPlane::start_with(&dir.0, &["--otlp-endpoint", &endpoint]);
    let caller = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let answer = cp.request(
        "GET",
        "/v1/apis",
        Some(&cp.admin_token),
        &[&format!("traceparent: {caller}")],
        None,
    );
    assert_eq!(answer.status, 200);
    let (status, _) = cp.admin("GET", "/v1/apis/nosuch", None);
    assert_eq!(status, 404);
    let spans = collector.wait_spans(2);
    let s = spans
        .iter()
        .find(|s| s.trace_id() == "5bf92f3577b34da6a3ce929d0e0e4736")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(s.service, "edgegw-cp");
    assert_eq!(hex(&s.span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(s.span.name, "GET /v1/apis");
    assert_eq!(s.attr("http.route").as_deref(), Some("/v1/apis"));
    assert_eq!(s.attr("url.scheme").as_deref(), Some("https"));
    assert_eq!(s.attr("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(s.attr("client.address").as_deref(), Some("127.0.0.1"));
    assert!(spans.iter().any(
        |s| s.attr("http.route").as_deref() == Some("/v1/apis/{name}")
            && s.attr("http.response.status_code").as_deref() == Some("404")
    ));

    let (status, m) = curl(&[
        "--cacert",
        cp.ca_file().to_str().unwrap(),
        &format!("{}/metrics", cp.url()),
    ]);
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        metric_value(
            &m,
            "edgegw_cp_requests_total{route=\"/v1/apis\",status=\"200\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            "edgegw_cp_requests_total{route=\"/v1/apis/{name}\",status=\"404\"}"
        ),
        1.0,
        "{m}"
    );
    for series in [
        "edgegw_cp_long_polls",
        "edgegw_cp_gateways_seen",
        "edgegw_cp_store_errors_total",
    ] {
        assert!(
            m.lines().any(|l| l.starts_with(&format!("{series} "))),
            "{series} in\n{m}"
        );
    }
    assert!(
        m.contains("edgegw_cp_otlp_spans_total{outcome=\"exported\"}"),
        "{m}"
    );
}

#[test]
fn bad_telemetry_settings_are_refused_in_one_line() {
    let port = free_port();
    for (section, wanted) in [
        (
            "[telemetry.otlp]\nendpoint = \"127.0.0.1:4318\"\n",
            &["telemetry.otlp.endpoint", "must start with http://"][..],
        ),
        (
            "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:4318\"\nsampling_ratio = 2\n",
            &["telemetry.otlp.sampling_ratio", "outside 0.0 to 1.0"],
        ),
        (
            "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:4318\"\nprotocol = \"grpc\"\n",
            &["telemetry.otlp.protocol", "use \"http/protobuf\""],
        ),
        (
            "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:4318\"\nqueue_size = 0\n",
            &["telemetry.otlp.queue_size"],
        ),
        (
            "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:4318\"\nheaders = { \"bad header\" = \"x\" }\n",
            &["telemetry.otlp.headers", "not a header name"],
        ),
        (
            "[telemetry.otlp]\nendpont = \"http://127.0.0.1:4318\"\n",
            &["endpont"],
        ),
    ] {
        let tmp = TempDir::new("otel-bad");
        let cfg = tmp.write(
            "c.toml",
            &format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\n[xdp]\nmode = \"off\"\n{section}"),
        );
        let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
        assert_one_line_error(&out, wanted);
        let out = edgegw(&["config", "validate", cfg.to_str().unwrap()]);
        assert_one_line_error(&out, wanted);
    }
    let dir = TempDir::new("otel-cp-bad");
    let db = dir.0.join("cp.db");
    for (args, wanted) in [
        (
            vec!["--otlp-endpoint", "ftp://x"],
            &["--otlp-endpoint", "must start with http://"][..],
        ),
        (
            vec![
                "--otlp-endpoint",
                "http://127.0.0.1:4318",
                "--otlp-sampling-ratio=-1",
            ],
            &["--otlp-sampling-ratio", "outside 0.0 to 1.0"],
        ),
    ] {
        let mut all = vec![
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ];
        all.extend(args);
        let out = edgegw_tests::cp::edgegw_cp(&all);
        assert_one_line_error(&out, wanted);
    }
}

/// APIM's `trace` policy: its events are the span's `edgegw.trace`
/// attribute, one line each, inbound's and outbound's in order.
#[test]
fn trace_policy_events_are_a_span_attribute() {
    let collector = Collector::start(OK);
    let backend = TestBackend::echo();
    let gw = ApimGateway::start(
        "otel-trace-policy",
        &format!(
            "[[apis]]\nname = \"orders\"\npath = \"/orders\"\nbackend = \"http://{}\"\n{}",
            backend.addr,
            otlp_section(&collector.endpoint(), "")
        ),
        "apis:\n  - name: orders\n    subscription_required: false\n    policies: |\n\
         \x20     <policies>\n\
         \x20       <inbound>\n\
         \x20         <trace source=\"orders-api\" severity=\"information\">\n\
         \x20           <message>@(\"got \" + context.Request.Method)</message>\n\
         \x20           <metadata name=\"path\" value=\"in\" />\n\
         \x20         </trace>\n\
         \x20       </inbound>\n\
         \x20       <outbound>\n\
         \x20         <trace source=\"orders-api\" severity=\"error\">\n\
         \x20           <message>@(\"status \" + context.Response.StatusCode)</message>\n\
         \x20         </trace>\n\
         \x20       </outbound>\n\
         \x20     </policies>\n",
    );
    assert_eq!(curl(&["-X", "DELETE", &gw.url("/orders/1")]).0, 200);
    let spans = collector.wait_spans(1);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let lines: Vec<String> = spans[0]
        .span
        .attributes
        .iter()
        .find(|kv| kv.key == "edgegw.trace")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::ArrayValue(a) => Some(
                a.values
                    .iter()
                    .filter_map(|v| match v.value.as_ref()? {
                        Value::StringValue(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no edgegw.trace array in {:?}", spans[0].span));
    assert_eq!(
        lines,
        [
            "orders-api [information] got DELETE path=in",
            "orders-api [error] status 200"
        ]
    );
}
