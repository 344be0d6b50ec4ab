//! SIGHUP reloads atomically under load (zero failed requests, in-flight
//! requests finish on the old configuration, an invalid file is rejected
//! whole) and SIGTERM drains in-flight requests before exiting.

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use edgegw_tests::{
    backends::TestBackend,
    gateway::{TestGateway, curl, curl_json, read_until_close},
};
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

fn api(backend: &TestBackend, base: &str) -> String {
    format!(
        "[[apis]]\nname = \"api\"\npath = \"/api\"\nbackend = \"http://{}{base}\"\n",
        backend.addr
    )
}

/// `api` plus a second API on its own backend, for the slow request.
fn apis(backend: &TestBackend, slow: &TestBackend, base: &str) -> String {
    format!(
        "{}[[apis]]\nname = \"slow\"\npath = \"/slow\"\nbackend = \"http://{}{base}\"\n",
        api(backend, base),
        slow.addr
    )
}

/// Paths the backend saw, as reported by keep-alive clients hammering the
/// gateway until `stop`; returns (ok, failed, paths seen).
async fn load(port: u16, stop: Arc<AtomicBool>) -> (usize, Vec<String>, Vec<String>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut seen) = (0, Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let uri = format!("http://127.0.0.1:{port}/api/x").parse().unwrap();
                match client.get(uri).await {
                    Ok(r) if r.status() == 200 => {
                        let body = r.into_body().collect().await.unwrap().to_bytes();
                        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let path = v["path"].as_str().unwrap().to_string();
                        if !seen.contains(&path) {
                            seen.push(path);
                        }
                        ok += 1;
                    }
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(format!("{e:?}")),
                }
            }
            (ok, failed, seen)
        }));
    }
    let (mut ok, mut failed, mut seen) = (0, Vec::new(), Vec::new());
    for t in tasks {
        let (o, f, s) = t.await.unwrap();
        ok += o;
        failed.extend(f);
        for p in s {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
    }
    (ok, failed, seen)
}

#[test]
fn sighup_reloads_under_load_without_a_failed_request() {
    let backend = TestBackend::echo();
    let slow_backend = TestBackend::echo();
    let gw = TestGateway::start("hup", &apis(&backend, &slow_backend, "/one"));
    let base = TestGateway::base_config(&gw.tmp, gw.port, gw.admin_port);
    let port = gw.port;
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let load = rt.spawn(load(port, stop.clone()));

    // A slow request started before the reload finishes on the old config.
    let slow_url = gw.url("/slow/x?delay_ms=1500");
    let slow = std::thread::spawn(move || curl_json(&[&slow_url]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow_backend.hits() == 0 {
        assert!(Instant::now() < deadline, "the slow request never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }

    std::fs::write(
        &gw.config,
        format!("{base}{}", apis(&backend, &slow_backend, "/two")),
    )
    .unwrap();
    gw.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = curl_json(&[&gw.url("/api/x")]);
        if body["path"] == "/two/x" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reload not applied:\n{}",
            gw.daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = slow.join().unwrap();
    assert_eq!((status, body["path"].as_str()), (200, Some("/one/x")));

    // An invalid file is rejected whole: the previous configuration stays.
    std::fs::write(
        &gw.config,
        format!(
            "{base}{}[limits]\nmax_headers = 0\n",
            api(&backend, "/three")
        ),
    )
    .unwrap();
    gw.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw
        .daemon
        .log_text()
        .contains("configuration reload rejected")
    {
        assert!(
            Instant::now() < deadline,
            "no rejection logged:\n{}",
            gw.daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = gw
        .daemon
        .log_text()
        .lines()
        .find(|l| l.contains("configuration reload rejected"))
        .unwrap()
        .to_string();
    assert!(line.contains("limits.max_headers"), "{line}");
    std::thread::sleep(Duration::from_millis(300));
    let (_, body) = curl_json(&[&gw.url("/api/x")]);
    assert_eq!(body["path"], "/two/x");

    stop.store(true, Ordering::Relaxed);
    let (ok, failed, seen) = rt.block_on(load).unwrap();
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 0);
    assert!(
        seen.contains(&"/one/x".to_string()) && seen.contains(&"/two/x".to_string()),
        "{seen:?}"
    );
    assert!(!seen.contains(&"/three/x".to_string()));
    assert_eq!(gw.metric("edgegw_config_reloads_total{result=\"ok\"}"), 1.0);
    assert_eq!(
        gw.metric("edgegw_config_reloads_total{result=\"rejected\"}"),
        1.0
    );
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits() {
    let backend = TestBackend::echo();
    let mut gw = TestGateway::start("drain", &api(&backend, ""));
    // A keep-alive connection left idle after its answer.
    let mut idle = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(b"GET /api/idle HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let in_flight: Vec<_> = (0..5)
        .map(|i| {
            let url = gw.url(&format!("/api/r{i}?delay_ms=1500"));
            std::thread::spawn(move || curl(&["-o", "/dev/null", &url]).0)
        })
        .collect();
    // Wait until all five reached the backend.
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.hits() < 6 {
        assert!(
            Instant::now() < deadline,
            "requests did not reach the backend"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let readyz = format!("http://127.0.0.1:{}/readyz", gw.admin_port);
    assert_eq!(curl(&["-o", "/dev/null", &readyz]).0, 200);
    gw.daemon.signal(nix::sys::signal::Signal::SIGTERM);
    // The idle connection is closed at once, without waiting for the
    // in-flight ones (the rest of its answer may still arrive first).
    let (rest, closed) = read_until_close(&mut idle);
    assert!(closed, "an idle connection must close when draining starts");
    assert!(!rest.contains("\nHTTP/"), "no second answer: {rest}");
    assert!(
        backend.hits() == 6 && in_flight.iter().all(|t| !t.is_finished()),
        "closed before the in-flight requests ended"
    );
    // Draining: no longer ready, so a load balancer stops sending...
    let deadline = Instant::now() + Duration::from_secs(5);
    while curl(&["-o", "/dev/null", &readyz]).0 != 503 {
        assert!(Instant::now() < deadline, "/readyz still 200 after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and the listener is closed, while the five are still being served.
    let deadline = Instant::now() + Duration::from_secs(5);
    while curl(&["-o", "/dev/null", &gw.url("/api/late")]).0 != 0 {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let statuses: Vec<u16> = in_flight.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, vec![200; 5]);
    assert_eq!(gw.daemon.stop(), Some(0), "{}", gw.daemon.log_text());
    assert!(gw.daemon.log_text().contains("draining in-flight requests"));
}
