//! TLS with SNI and ALPN, HTTP/2 both sides, TLS to backends, WebSocket
//! pass-through and gRPC-style streaming with trailers.

use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use edgegw_tests::{
    backends::TestBackend,
    certs::TestCa,
    gateway::{TestGateway, curl, curl_json},
    process::{TempDir, free_port},
};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn https_picks_the_certificate_by_sni_and_negotiates_h2_or_http11() {
    let backend = TestBackend::echo();
    let certs = TempDir::new("certs");
    let ca = TestCa::new(&certs.0);
    let a = ca.leaf(&certs.0, "a", &["a.test"]);
    let b = ca.leaf(&certs.0, "b", &["b.test"]);
    let tls_port = free_port();
    let gw = TestGateway::start(
        "tls",
        &format!(
            r#"
[tls]
listen = "127.0.0.1:{tls_port}"
[[tls.certificates]]
cert = "{}"
key = "{}"
server_names = ["a.test"]
[[tls.certificates]]
cert = "{}"
key = "{}"
server_names = ["b.test"]
[[apis]]
name = "echo"
path = "/"
backend = "http://{}"
"#,
            a.cert.display(),
            a.key.display(),
            b.cert.display(),
            b.key.display(),
            backend.addr
        ),
    );
    let ca_file = ca.pem_path.to_str().unwrap();
    // curl verifies the name: each succeeds only with the right certificate.
    for name in ["a.test", "b.test"] {
        for (flag, want) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let resolve = format!("{name}:{tls_port}:127.0.0.1");
            let url = format!("https://{name}:{tls_port}/x");
            let (status, out) = curl(&[
                "--cacert",
                ca_file,
                "--resolve",
                &resolve,
                flag,
                "-o",
                "/dev/null",
                "-w",
                "%{http_version}\n%{http_code}",
                &url,
            ]);
            assert_eq!(status, 200, "{name} {flag}: {out}");
            assert!(out.ends_with(want), "{name} {flag}: version {out}");
        }
    }
    // TLS 1.2 and 1.3 both work; the backend learns the scheme.
    for (min, max) in [("--tlsv1.2", "1.2"), ("--tlsv1.3", "1.3")] {
        let resolve = format!("a.test:{tls_port}:127.0.0.1");
        let (status, body) = curl_json(&[
            "--cacert",
            ca_file,
            "--resolve",
            &resolve,
            min,
            "--tls-max",
            max,
            &format!("https://a.test:{tls_port}/v"),
        ]);
        assert_eq!(status, 200, "{min}");
        assert_eq!(body["headers"]["x-forwarded-proto"], "https");
    }
    // An unknown SNI name gets the first certificate, which does not match.
    let resolve = format!("c.test:{tls_port}:127.0.0.1");
    let (status, _) = curl(&[
        "--cacert",
        ca_file,
        "--resolve",
        &resolve,
        &format!("https://c.test:{tls_port}/"),
    ]);
    assert_eq!(status, 0, "c.test must fail verification");
    // Plain listener: HTTP/2 with prior knowledge (h2c).
    let (status, out) = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}\n%{http_code}",
        &gw.url("/h2c"),
    ]);
    assert_eq!(status, 200);
    assert!(out.ends_with('2'), "{out}");
}

#[test]
fn forwards_to_tls_and_http2_backends() {
    let certs = TempDir::new("bcerts");
    let ca = TestCa::new(&certs.0);
    let leaf = ca.leaf(&certs.0, "backend", &["localhost"]);
    let tls_backend = TestBackend::echo_tls(&leaf);
    let h2_backend = TestBackend::echo();
    let gw = TestGateway::start(
        "bk",
        &format!(
            r#"
[[backends]]
name = "secure"
url = "https://localhost:{}"
ca_file = "{}"
[[backends]]
name = "secure-h2"
url = "https://localhost:{}"
ca_file = "{}"
protocol = "http2"
[[backends]]
name = "h2c"
url = "http://{}"
protocol = "http2"
[[apis]]
name = "secure"
path = "/secure"
backend = "secure"
[[apis]]
name = "secure-h2"
path = "/secure-h2"
backend = "secure-h2"
[[apis]]
name = "h2c"
path = "/h2c"
backend = "h2c"
[[apis]]
name = "untrusted"
path = "/untrusted"
backend = "https://localhost:{}"
"#,
            tls_backend.addr.port(),
            ca.pem_path.display(),
            tls_backend.addr.port(),
            ca.pem_path.display(),
            h2_backend.addr,
            tls_backend.addr.port(),
        ),
    );
    // Three HTTPS/1.1 requests: with two workers at least one reuses its
    // pooled TLS connection.
    for (path, version) in [
        ("/secure/a", "HTTP/1.1"),
        ("/secure/a", "HTTP/1.1"),
        ("/secure/a", "HTTP/1.1"),
        ("/secure-h2/a", "HTTP/2.0"),
        ("/h2c/a", "HTTP/2.0"),
    ] {
        let (status, body) = curl_json(&[&gw.url(path)]);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["version"], version, "{path}");
        assert_eq!(body["path"], "/a");
    }
    // The system CA bundle does not trust the test CA: 502, not a pass.
    let (status, body) = curl_json(&[&gw.url("/untrusted/a")]);
    assert_eq!(status, 502, "{body}");
}

/// Without `ca_file` a backend is checked against the system's CA
/// certificates, found the way the distribution configures them
/// (rustls-native-certs): here `SSL_CERT_FILE`, as on any distribution,
/// naming the test CA makes the backend trusted.
#[test]
fn backends_without_ca_file_trust_the_system_certificates() {
    let certs = TempDir::new("syscerts");
    let ca = TestCa::new(&certs.0);
    let leaf = ca.leaf(&certs.0, "backend", &["localhost"]);
    let tls_backend = TestBackend::echo_tls(&leaf);
    let config = format!(
        "[[apis]]\nname = \"system\"\npath = \"/system\"\nbackend = \"https://localhost:{}\"\n",
        tls_backend.addr.port()
    );
    let ca_file = ca.pem_path.to_str().unwrap();
    let gw = TestGateway::start_with_env("sysca", &config, &[("SSL_CERT_FILE", ca_file)]);
    let (status, body) = curl_json(&[&gw.url("/system/a")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/a");
}

#[test]
fn websocket_upgrade_passes_through() {
    let ws = TestBackend::websocket_echo();
    let gw = TestGateway::start(
        "ws",
        &format!(
            "[[apis]]\nname = \"ws\"\npath = \"/ws\"\nbackend = \"http://{}\"\nwebsocket = true\n",
            ws.addr
        ),
    );
    let url = format!("ws://127.0.0.1:{}/ws/chat", gw.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut socket, response) = tokio_tungstenite::connect_async(url).await.unwrap();
        assert_eq!(response.status(), 101);
        for i in 0..5 {
            socket
                .send(Message::text(format!("hello {i}")))
                .await
                .unwrap();
            let answer = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(answer.into_text().unwrap().as_str(), format!("hello {i}"));
        }
        socket
            .send(Message::binary(vec![0u8, 1, 2, 255]))
            .await
            .unwrap();
        let answer = socket.next().await.unwrap().unwrap();
        assert_eq!(answer.into_data().as_ref(), &[0u8, 1, 2, 255]);
        socket.close(None).await.unwrap();
    });
    assert_eq!(ws.hits(), 1);
}

#[test]
fn grpc_style_streaming_both_ways_with_trailers() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start(
        "grpc",
        &format!(
            "[[backends]]\nname = \"grpc\"\nurl = \"http://{}\"\nprotocol = \"http2\"\n[[apis]]\nname = \"grpc\"\npath = \"/pkg.Service\"\nbackend = \"grpc\"\n",
            backend.addr
        ),
    );
    let port = gw.port;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let (tx, rx) = tokio::sync::mpsc::channel::<Frame<Bytes>>(4);
        let body = StreamBody::new(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|f| (Ok::<_, Infallible>(f), rx)) },
        )));
        let req = hyper::Request::post(format!("http://127.0.0.1:{port}/pkg.Service/Chat"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("x-stream", "1")
            .body(body)
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        // Each message is answered before the next is sent: streaming
        // both ways, nothing buffered until the end.
        for i in 0..3 {
            tx.send(Frame::data(Bytes::from(format!("m{i}"))))
                .await
                .unwrap();
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .expect("echo of a message before the request ended")
                .unwrap()
                .unwrap();
            assert_eq!(frame.into_data().unwrap(), format!("echo:m{i}"));
        }
        drop(tx);
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            if let Ok(t) = frame.unwrap().into_trailers() {
                trailers = Some(t);
            }
        }
        let trailers = trailers.expect("trailers forwarded");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["x-chunks"], "3");
    });
}
