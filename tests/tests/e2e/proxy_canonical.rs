//! The canonical path, cross-checked with nginx: the real `edgegw` and
//! Debian's nginx publish the same operations (`GET /api/items/{id}`,
//! `GET /api/public/*`, everything under `/other-api/`) and get the same
//! raw request lines. For each, both statuses are asserted: the attack
//! family of issue 18 gets 400 or 404 from both; where edgegw is stricter
//! than nginx the case says why. When both serve a path, the path edgegw
//! forwarded, fully decoded, is the `$uri` nginx resolved it to.

use std::{io::Write, net::TcpStream, process::Command, time::Duration};

use edgegw_tests::{
    backends::RawBackend,
    gateway::{TestGateway, read_until_close},
    process::{Daemon, TempDir, free_port, wait_port},
};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// nginx in the foreground from its own prefix directory, answering each
/// location with the `$uri` it resolved; stopped (SIGTERM) on drop.
fn nginx(tmp: &TempDir, port: u16) -> Daemon {
    let p = tmp.0.join("nginx");
    std::fs::create_dir_all(&p).unwrap();
    let p = p.display();
    let conf = tmp.write(
        "nginx.conf",
        &format!(
            "user root;\nworker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location ~ ^/api/items/[^/]+$ {{ return 200 \"$uri\"; }}\n\
                 location /api/public/ {{ return 200 \"$uri\"; }}\n\
                 location /other-api/ {{ return 200 \"$uri\"; }}\n\
                 location / {{ return 404; }}\n  }}\n}}\n"
        ),
    );
    let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
        .expect("nginx is needed for this cross-check: apt-get install nginx-light (cargo xtask setup installs it)");
    let mut cmd = Command::new(binary);
    cmd.args(["-p", &p.to_string(), "-e", &format!("{p}/error.log"), "-c"])
        .arg(&conf);
    let daemon = Daemon::spawn(cmd, tmp.0.join("nginx.log"));
    wait_port(&format!("127.0.0.1:{port}"));
    daemon
}

/// The status and body of `GET target` on a new connection.
fn get(port: u16, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let (answer, _) = read_until_close(&mut s);
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{target}: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// The request target of one raw request.
fn target_of(raw: &[u8]) -> String {
    let line = String::from_utf8_lossy(raw);
    line.split(' ').nth(1).unwrap().to_string()
}

/// Percent-decodes every escape (as nginx does for `$uri`).
fn decoded(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn attack_paths_get_400_or_404_like_nginx_and_served_paths_resolve_alike() {
    let backend = RawBackend::start(OK);
    let tmp = TempDir::new("canon-nginx");
    let nginx_port = free_port();
    let _nginx = nginx(&tmp, nginx_port);
    // The backends' base paths repeat the prefixes: the backend sees the
    // whole canonical path.
    let gw = TestGateway::start(
        "canonical",
        &format!(
            r#"
[[apis]]
name = "api"
path = "/api"
backend = "http://{b}/api"
[[apis.operations]]
name = "item"
method = "GET"
url = "/items/{{id}}"
[[apis.operations]]
name = "public"
method = "GET"
url = "/public/*"
[[apis]]
name = "other-api"
path = "/other-api"
backend = "http://{b}/other-api"
[[apis]]
name = "files"
path = "/files"
backend = "http://{b}/files"
encoded_slashes = "keep"
"#,
            b = backend.addr
        ),
    );
    // (target, nginx's status, edgegw's status)
    let cases: &[(&str, u16, u16)] = &[
        // Issue 18's attack family: refused or unknown to both.
        ("/api/public/../admin", 404, 404),
        ("/api/public/..%2fadmin", 404, 400),
        ("/api/public/%2e%2e%2fadmin", 404, 400),
        ("/api/public/%2e%2e/admin", 404, 404),
        ("/api/public/%2E%2E/admin", 404, 404),
        ("/api/public/.%2e/admin", 404, 404),
        ("/api/public//../admin", 404, 404),
        ("/api/public/..%00/admin", 400, 400),
        ("/other-api/../api/admin", 404, 400),
        ("/../api/items/1", 400, 400),
        ("/api/public/%u002e", 400, 400),
        ("/api/items/a%2Fb", 404, 400),
        // Stricter than nginx. nginx resolves the path and routes it
        // wherever it lands; edgegw refuses a path that climbs out of one
        // API into another (its policies are per API).
        ("/other-api/../api/items/1", 200, 400),
        ("/api/%2e%2e/api/items/1", 200, 400),
        // A backslash is a separator to Windows backends, `..;` a dot
        // segment to servlet containers, `%c0%ae` a dot to old decoders,
        // and a CR LF in the path a header to a backend that decodes it:
        // nginx passes them on Linux, edgegw refuses them.
        ("/api/public/..\\admin", 200, 400),
        ("/api/public/..%5cadmin", 200, 400),
        ("/api/public/..;/admin", 200, 400),
        ("/api/public/%c0%ae%c0%ae/admin", 200, 400),
        ("/api/public/x%0d%0aX-Injected:%201", 200, 400),
        // Served by both, to the same resolved path.
        ("/api/items/1", 200, 200),
        ("//api/items/1", 200, 200),
        ("/api/public/x/../../items/%31", 200, 200),
        ("/api/public/%7e%41/./a%3f", 200, 200),
        // Decoded once by both: the text `%2e%2e`, not dots.
        ("/api/public/%252e%252e/admin", 200, 200),
        ("/other-api/a/./b/../c/", 200, 200),
    ];
    for &(target, nginx_wants, edgegw_wants) in cases {
        let (nginx_status, nginx_uri) = get(nginx_port, target);
        assert_eq!(nginx_status, nginx_wants, "nginx {target}");
        let (status, body) = get(gw.port, target);
        assert_eq!(status, edgegw_wants, "edgegw {target}: {body}");
        let seen = backend.take();
        if status != 200 {
            assert!(seen.is_empty(), "{target} reached the backend: {seen:?}");
            continue;
        }
        assert_eq!(seen.len(), 1, "{target}");
        let forwarded = target_of(&seen[0]);
        if nginx_status == 200 {
            assert_eq!(
                decoded(&forwarded),
                nginx_uri,
                "{target}: forwarded {forwarded}"
            );
        }
    }
    // An API that keeps `%2F` forwards it as data, and still refuses it
    // beside a dot segment.
    for (target, status, forwarded) in [
        ("/files/a%2fb/c", 200, Some("/files/a%2Fb/c")),
        ("/files/a%2f..%2fb", 400, None),
    ] {
        let (got, body) = get(gw.port, target);
        assert_eq!(got, status, "{target}: {body}");
        let seen: Vec<String> = backend.take().iter().map(|r| target_of(r)).collect();
        assert_eq!(seen, forwarded.into_iter().collect::<Vec<_>>(), "{target}");
    }
}
