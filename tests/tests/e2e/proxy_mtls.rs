//! Mutual TLS: client certificates on the HTTPS listener (`request` with
//! the `validate-client-certificate` policy, `require` refusing the
//! handshake), `{client_cert:...}` in key templates and conditions, bad CA
//! and CRL files at load and on reload, a client certificate presented to
//! a backend that requires one, and gateway ↔ control plane mTLS.
//! Certificates are made here with rcgen; the clients are curl (OpenSSL)
//! and the gateway's own rustls.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use edgegw_tests::{
    apim::ApimGateway,
    backends::TestBackend,
    certs::{TestCa, TestCert},
    gateway::TestGateway,
    process::{TempDir, assert_one_line_error, edgegw, free_port, wait_port},
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber, date_time_ymd,
};

/// A CA for client certificates, with a CRL revoking serial 66.
struct ClientCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    pem: PathBuf,
    crl: PathBuf,
}

impl ClientCa {
    fn new(dir: &Path, tag: &str) -> ClientCa {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, format!("{tag} client CA"));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let pem = dir.join(format!("{tag}-ca.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        let crl = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2090, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(66u64),
                revocation_time: date_time_ymd(2024, 1, 1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&cert, &key)
        .unwrap();
        let crl_path = dir.join(format!("{tag}.crl"));
        std::fs::write(&crl_path, crl.pem().unwrap()).unwrap();
        ClientCa {
            cert,
            key,
            pem,
            crl: crl_path,
        }
    }

    /// A client certificate `cn` with `serial`, valid between the years.
    fn client(&self, dir: &Path, cn: &str, serial: u64, years: (i32, i32)) -> TestCert {
        let mut p = CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(SerialNumber::from(serial));
        p.not_before = date_time_ymd(years.0, 1, 1);
        p.not_after = date_time_ymd(years.1, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let out = TestCert {
            cert: dir.join(format!("{cn}.pem")),
            key: dir.join(format!("{cn}.key")),
        };
        std::fs::write(&out.cert, cert.pem()).unwrap();
        std::fs::write(&out.key, key.serialize_pem()).unwrap();
        out
    }
}

/// The SHA-1 thumbprint of a PEM certificate file, as openssl prints it
/// (upper-case hex without colons).
fn thumbprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(cert)
        .output()
        .expect("running openssl");
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim()
        .split_once('=')
        .unwrap()
        .1
        .replace(':', "")
        .to_ascii_uppercase()
}

/// Every client certificate of the tests.
struct Clients {
    good: TestCert,
    good2: TestCert,
    expired: TestCert,
    revoked: TestCert,
    foreign: TestCert,
}

/// Server certificate, client CAs and client certificates in `dir`.
struct Pki {
    server_ca: TestCa,
    server: TestCert,
    ca: ClientCa,
    clients: Clients,
}

fn pki(dir: &Path) -> Pki {
    let server_ca = TestCa::new(dir);
    let server = server_ca.leaf(dir, "server", &["localhost"]);
    let ca = ClientCa::new(dir, "good");
    let other = ClientCa::new(dir, "other");
    let clients = Clients {
        good: ca.client(dir, "device-1", 7, (2024, 2090)),
        good2: ca.client(dir, "device-2", 8, (2024, 2090)),
        expired: ca.client(dir, "device-old", 9, (2020, 2021)),
        revoked: ca.client(dir, "device-stolen", 66, (2024, 2090)),
        foreign: other.client(dir, "device-foreign", 10, (2024, 2090)),
    };
    Pki {
        server_ca,
        server,
        ca,
        clients,
    }
}

/// The `[tls]` section: `mode` for client certificates, with the CA and CRL.
fn tls_section(pki: &Pki, port: u16, mode: &str) -> String {
    format!(
        r#"
[tls]
listen = "127.0.0.1:{port}"
[[tls.certificates]]
cert = "{}"
key = "{}"
server_names = ["localhost"]
client_certificates = "{mode}"
client_ca_file = "{}"
client_crl_files = ["{}"]
"#,
        pki.server.cert.display(),
        pki.server.key.display(),
        pki.ca.pem.display(),
        pki.ca.crl.display()
    )
}

/// curl over HTTPS to `localhost:port` presenting `cert` (if any):
/// `Ok((status, body))`, or `Err(stderr)` when no HTTP answer came (the
/// handshake was refused).
fn https(
    pki: &Pki,
    port: u16,
    path: &str,
    cert: Option<&TestCert>,
) -> Result<(u16, String), String> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
        "--cacert",
    ])
    .arg(&pki.server_ca.pem_path)
    .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if let Some(c) = cert {
        cmd.arg("--cert").arg(&c.cert).arg("--key").arg(&c.key);
    }
    let out = cmd
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    match code.trim().parse::<u16>() {
        Ok(status) if status != 0 && out.status.success() => Ok((status, body.to_string())),
        _ => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[test]
fn policy_checks_client_certificates_and_keys_limits_by_thumbprint() {
    let dir = TempDir::new("mtls-policy-pki");
    let pki = pki(&dir.0);
    let backend = TestBackend::echo();
    let tls_port = free_port();
    let vip = thumbprint(&pki.clients.good.cert);
    let rest = format!(
        r#"
[[apis]]
name = "pets"
path = "/pets"
backend = "http://{0}"
[[apis]]
name = "vip"
path = "/vip"
backend = "http://{0}"
[[apis]]
name = "who"
path = "/who"
backend = "http://{0}"
{1}"#,
        backend.addr,
        tls_section(&pki, tls_port, "request")
    );
    let catalog = format!(
        r#"
apis:
  - name: pets
    subscription_required: false
    policies:
      inbound:
        - validate-client-certificate: {{}}
        - rate-limit-by-key: {{calls: 2, renewal_period: 60, counter_key: "{{client_cert:thumbprint}}"}}
  - name: vip
    subscription_required: false
    policies:
      inbound:
        - validate-client-certificate:
            identities:
              - thumbprint: "{vip}"
  - name: who
    subscription_required: false
    policies:
      inbound:
        - choose:
            - when: "{{client_cert:common_name}} == 'device-1'"
              policies:
                - return-response: {{status_code: 200, body: "hello device-1"}}
            - otherwise:
                - return-response: {{status_code: 401, body: "who are you"}}
"#
    );
    let gw = ApimGateway::start("mtls-policy", &rest, &catalog);
    wait_port(&format!("127.0.0.1:{tls_port}"));
    let c = &pki.clients;

    // A valid certificate passes; the limit counts per thumbprint.
    assert_eq!(
        https(&pki, tls_port, "/pets/1", Some(&c.good)).unwrap().0,
        200
    );
    assert_eq!(
        https(&pki, tls_port, "/pets/1", Some(&c.good)).unwrap().0,
        200
    );
    let (status, body) = https(&pki, tls_port, "/pets/1", Some(&c.good)).unwrap();
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        https(&pki, tls_port, "/pets/1", Some(&c.good2)).unwrap().0,
        200
    );

    // Refusals are 403 with the reason.
    for (cert, want) in [
        (None, "a client certificate is required"),
        (Some(&c.expired), "the client certificate has expired"),
        (
            Some(&c.foreign),
            "not trusted: it is not issued by a trusted CA",
        ),
        (Some(&c.revoked), "the client certificate is revoked"),
    ] {
        let (status, body) = https(&pki, tls_port, "/pets/2", cert).unwrap();
        assert_eq!(status, 403, "{want}: {body}");
        assert!(body.contains(want), "{want}: {body}");
    }

    // Identities: the thumbprint of device-1 only.
    assert_eq!(
        https(&pki, tls_port, "/vip/x", Some(&c.good)).unwrap().0,
        200
    );
    let (status, body) = https(&pki, tls_port, "/vip/x", Some(&c.good2)).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("matches none of the allowed identities"),
        "{body}"
    );

    // Conditions read the certificate's fields.
    let (status, body) = https(&pki, tls_port, "/who", Some(&c.good)).unwrap();
    assert_eq!((status, body.as_str()), (200, "hello device-1"));
    assert_eq!(
        https(&pki, tls_port, "/who", Some(&c.good2)).unwrap().0,
        401
    );

    // Plain HTTP has no certificate: refused by the policy too.
    let (status, _) = edgegw_tests::gateway::curl(&[&gw.url("/pets/1")]);
    assert_eq!(status, 403);
}

#[test]
fn require_refuses_the_handshake_without_a_trusted_unrevoked_certificate() {
    let dir = TempDir::new("mtls-require-pki");
    let pki = pki(&dir.0);
    let backend = TestBackend::echo();
    let tls_port = free_port();
    let rest = format!(
        "[[apis]]\nname = \"pets\"\npath = \"/pets\"\nbackend = \"http://{}\"\n{}",
        backend.addr,
        tls_section(&pki, tls_port, "require")
    );
    let gw = TestGateway::start("mtls-require", &rest);
    wait_port(&format!("127.0.0.1:{tls_port}"));
    let c = &pki.clients;
    assert_eq!(
        https(&pki, tls_port, "/pets/1", Some(&c.good)).unwrap().0,
        200
    );
    for (cert, alert) in [
        (None, "certificate required"),
        (Some(&c.foreign), "unknown ca"),
        (Some(&c.revoked), "certificate revoked"),
        (Some(&c.expired), "certificate expired"),
    ] {
        // No HTTP answer: the handshake is refused with the alert, which
        // the client reads (the gateway closes gracefully, even when a
        // TLS 1.3 client sent its request already).
        let err = https(&pki, tls_port, "/pets/1", cert).unwrap_err();
        let err = err.to_ascii_lowercase();
        assert!(err.contains(alert), "{alert}: {err}");
    }
    // Without a certificate, again and again: never a reset instead of the
    // alert.
    for _ in 0..20 {
        let err = https(&pki, tls_port, "/pets/1", None).unwrap_err();
        assert!(
            err.to_ascii_lowercase().contains("certificate required"),
            "{err}"
        );
    }
    assert!(gw.wait_metric("edgegw_rejections_total{reason=\"tls_handshake\"}", 24.0) >= 24.0);
}

#[test]
fn bad_ca_and_crl_files_are_one_line_at_load_and_keep_the_last_good_config_on_reload() {
    let dir = TempDir::new("mtls-bad-pki");
    let pki = pki(&dir.0);
    let garbage = dir.write("garbage.pem", "not a certificate\n");
    let der_garbage = dir.write("garbage.crl", "\u{1}\u{2}\u{3}");
    let missing = dir.0.join("missing.pem");
    let good = format!(
        "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n[[apis]]\nname = \"a\"\npath = \"/a\"\nbackend = \"http://127.0.0.1:9\"\n{}",
        free_port(),
        tls_section(&pki, free_port(), "require")
    );
    let ca = pki.ca.pem.display().to_string();
    let crl = pki.ca.crl.display().to_string();
    for (from, to, wanted) in [
        (
            ca.clone(),
            missing.display().to_string(),
            vec![
                "tls.certificates[0].client_ca_file",
                "missing.pem",
                "give a PEM file of the CA certificates",
            ],
        ),
        (
            ca.clone(),
            garbage.display().to_string(),
            vec!["tls.certificates[0].client_ca_file", "no CERTIFICATE block"],
        ),
        (
            crl.clone(),
            der_garbage.display().to_string(),
            vec![
                "tls.certificates[0].client_crl_files",
                "garbage.crl",
                "not a usable CRL",
                "give CRL files",
            ],
        ),
        (
            crl.clone(),
            missing.display().to_string(),
            vec!["tls.certificates[0].client_crl_files", "cannot read it"],
        ),
    ] {
        let file = dir.write("bad.toml", &good.replace(&from, &to));
        let out = edgegw(&["config", "validate", file.to_str().unwrap()]);
        assert_one_line_error(&out, &wanted);
        let out = edgegw(&["run", "--config", file.to_str().unwrap()]);
        assert_one_line_error(&out, &wanted);
    }

    // On reload a bad CRL is refused whole; the running listener stays.
    let backend = TestBackend::echo();
    let tls_port = free_port();
    let rest = format!(
        "[[apis]]\nname = \"pets\"\npath = \"/pets\"\nbackend = \"http://{}\"\n{}",
        backend.addr,
        tls_section(&pki, tls_port, "require")
    );
    let gw = TestGateway::start("mtls-reload", &rest);
    wait_port(&format!("127.0.0.1:{tls_port}"));
    let text = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(
        &gw.config,
        text.replace(&crl, &der_garbage.display().to_string()),
    )
    .unwrap();
    gw.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    assert_eq!(
        gw.wait_metric("edgegw_config_reloads_total{result=\"rejected\"}", 1.0),
        1.0
    );
    assert!(gw.daemon.log_text().contains("not a usable CRL"));
    let c = &pki.clients;
    assert_eq!(
        https(&pki, tls_port, "/pets/1", Some(&c.good)).unwrap().0,
        200
    );
    assert!(https(&pki, tls_port, "/pets/1", Some(&c.revoked)).is_err());
}

/// A backend over TLS that requires a client certificate chaining to
/// `client_ca` (rustls' WebPkiClientVerifier); answers 200 "secure" to
/// every request. Stops when dropped.
struct MtlsBackend {
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl MtlsBackend {
    fn start(server: &TestCert, client_ca: &Path) -> MtlsBackend {
        use std::sync::Arc;

        use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(client_ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let chain = CertificateDer::pem_file_iter(&server.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&server.key).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"secure")),
                        ))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        MtlsBackend {
            port,
            _runtime: runtime,
        }
    }
}

#[test]
fn a_backend_that_requires_a_client_certificate_is_reached_with_one() {
    let dir = TempDir::new("mtls-backend-pki");
    let server_ca = TestCa::new(&dir.0);
    let server = server_ca.leaf(&dir.0, "backend", &["127.0.0.1"]);
    let ca = ClientCa::new(&dir.0, "backend-clients");
    let gw_cert = ca.client(&dir.0, "gateway-a", 20, (2024, 2090));
    let policy_cert = ca.client(&dir.0, "gateway-b", 21, (2024, 2090));
    let backend = MtlsBackend::start(&server, &ca.pem);
    let url = format!("https://127.0.0.1:{}", backend.port);
    let rest = format!(
        r#"
[[backends]]
name = "with-cert"
url = "{url}"
ca_file = "{ca}"
client_cert = "{cert}"
client_key = "{key}"
[[backends]]
name = "no-cert"
url = "{url}"
ca_file = "{ca}"
[[apis]]
name = "with"
path = "/with"
backend = "with-cert"
[[apis]]
name = "without"
path = "/without"
backend = "no-cert"
[[apis]]
name = "policy"
path = "/policy"
backend = "no-cert"
"#,
        ca = server_ca.pem_path.display(),
        cert = gw_cert.cert.display(),
        key = gw_cert.key.display(),
    );
    let pem = std::fs::read_to_string(&policy_cert.cert).unwrap();
    let catalog = format!(
        r#"
certificates:
  - id: partner-client
    pem: {}
    key_file: "{}"
apis:
  - name: policy
    subscription_required: false
    policies:
      inbound:
        - authentication-certificate: {{certificate-id: partner-client}}
"#,
        serde_json::to_string(&pem).unwrap(),
        policy_cert.key.display()
    );
    let gw = ApimGateway::start("mtls-backend", &rest, &catalog);
    let (status, body) = edgegw_tests::gateway::curl(&[&gw.url("/with/x")]);
    assert_eq!((status, body.as_str()), (200, "secure"));
    let (status, body) = edgegw_tests::gateway::curl(&[&gw.url("/policy/x")]);
    assert_eq!((status, body.as_str()), (200, "secure"));
    // Without a certificate the backend refuses the handshake: 502.
    let (status, body) = edgegw_tests::gateway::curl(&[&gw.url("/without/x")]);
    assert_eq!(status, 502, "{body}");

    // Bad input: a client_cert without its key, one line at load.
    let bad = dir.write(
        "bad.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:1\"\n[[backends]]\nname = \"b\"\nurl = \"{url}\"\nclient_cert = \"x.pem\"\n[[apis]]\nname = \"a\"\npath = \"/a\"\nbackend = \"b\"\n"
        ),
    );
    let out = edgegw(&["config", "validate", bad.to_str().unwrap()]);
    assert_one_line_error(&out, &["backend \"b\"", "client_cert needs client_key"]);
}

#[test]
fn a_gateway_syncs_from_a_control_plane_that_requires_client_certificates() {
    use edgegw_tests::{
        cp::ControlPlane,
        managed::{ManagedNode, import_pets_with_a_subscription, register},
    };
    let dir = TempDir::new("mtls-cp");
    let ca = ClientCa::new(&dir.0, "gateways");
    let gw_cert = ca.client(&dir.0, "gateway-1", 30, (2024, 2090));
    let foreign = ClientCa::new(&dir.0, "strangers").client(&dir.0, "gateway-x", 31, (2024, 2090));
    let cp = ControlPlane::start_with(&dir.0, &["--tls-client-ca", ca.pem.to_str().unwrap()]);
    let backend = TestBackend::echo();
    // Operators' requests need no certificate.
    let key = import_pets_with_a_subscription(&cp, &backend.addr.to_string());
    let token = register(&cp, "gw-1", &["pets"], None);

    // The gateway endpoints do: without one, 403 with the fix.
    let answer = cp.request("GET", "/v1/gateway/config", Some(&token), &[], None);
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("--tls-client-ca"), "{}", answer.body);

    let identity = |c: &TestCert| {
        format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"\n",
            c.cert.display(),
            c.key.display()
        )
    };
    let mut node = ManagedNode::of("mtls-cp-node", &cp, &token, &identity(&gw_cert));
    node.start();
    let got = node.wait_for("/petstore/pets/1", 20, |s, _| s == 200 || s == 401);
    assert_eq!(
        got.0,
        401,
        "the API is served (it wants its key): {}",
        node.log()
    );
    let (status, _) = edgegw_tests::gateway::curl(&[
        "-H",
        &format!("Ocp-Apim-Subscription-Key: {key}"),
        &format!("http://127.0.0.1:{}/petstore/pets/1", node.port),
    ]);
    assert_eq!(status, 200);

    // Without a certificate, or with one of another CA: refused, said so.
    let none: &[&str] = &["requires gateways to present a client certificate"];
    // The handshake's alert, as the TLS client reports it.
    let other_ca: &[&str] = &["UnknownCA", "unknown ca", "BadCertificate"];
    for (tag, extra, want) in [
        ("mtls-cp-none", String::new(), none),
        ("mtls-cp-foreign", identity(&foreign), other_ca),
    ] {
        let mut refused = ManagedNode::of(tag, &cp, &token, &extra);
        refused.spawn();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !want.iter().any(|w| refused.log().contains(w)) {
            assert!(
                std::time::Instant::now() < deadline,
                "{tag}: {}",
                refused.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let (status, _) = refused.get("/petstore/pets/1");
        assert_ne!(status, 200, "{tag}");
    }
}
