//! `edgegw-cp serve` re-reads its TLS certificate and key on SIGHUP (a
//! renewed certificate needs no restart), keeps the current one when the
//! new files are broken, and `edgegw-cp healthcheck` (the image's health
//! check) tells a serving control plane from a dead one in one line.

use std::time::{Duration, Instant};

use edgegw_tests::{
    certs::TestCa,
    cp::{ControlPlane, edgegw_cp},
    process::{TempDir, assert_one_line_error, free_port},
};
use nix::sys::signal::Signal;

/// curl's exit code and HTTP status for /healthz, trusting only `ca`.
fn healthz(cp: &ControlPlane, ca: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(ca)
        .arg(format!("{}/healthz", cp.url()))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Sends SIGHUP and waits for the log to hold one more `needle`.
fn hup_and_wait(cp: &ControlPlane, needle: &str) {
    let before = cp.log_text().matches(needle).count();
    cp.daemon.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cp.log_text().matches(needle).count() == before {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} after SIGHUP:\n{}",
            cp.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_one_is_broken() {
    let tmp = TempDir::new("cptls");
    let mut cp = ControlPlane::start(&tmp.0);
    let old_ca = cp.ca_file().to_path_buf();
    assert_eq!(healthz(&cp, &old_ca), (true, "200".into()));

    // A certificate from another CA replaces the files in place.
    let renewed = tmp.0.join("renewed");
    std::fs::create_dir(&renewed).unwrap();
    let new_ca = TestCa::new(&renewed);
    let leaf = new_ca.leaf(&renewed, "cp", &["localhost", "127.0.0.1"]);
    std::fs::copy(&leaf.cert, tmp.0.join("cp.pem")).unwrap();
    std::fs::copy(&leaf.key, tmp.0.join("cp.key")).unwrap();
    // Not before SIGHUP.
    assert_eq!(healthz(&cp, &old_ca), (true, "200".into()));
    hup_and_wait(&cp, "SIGHUP: TLS certificate reloaded");
    assert_eq!(healthz(&cp, &new_ca.pem_path), (true, "200".into()));
    assert!(!healthz(&cp, &old_ca).0, "old certificate still served");

    // A broken certificate file: refused, the current one kept, one line.
    std::fs::write(tmp.0.join("cp.pem"), "not a certificate\n").unwrap();
    hup_and_wait(&cp, "keeping the current TLS certificate");
    let log = cp.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("keeping the current TLS certificate"))
        .unwrap();
    assert!(
        line.contains("has no CERTIFICATE block") && line.contains("send SIGHUP again"),
        "{line}"
    );
    assert_eq!(healthz(&cp, &new_ca.pem_path), (true, "200".into()));
    assert_eq!(cp.stop(), Some(0), "{}", cp.log_text());
}

#[test]
fn healthcheck_command_tells_a_serving_control_plane_from_a_dead_one() {
    let tmp = TempDir::new("cphc");
    let cp = ControlPlane::start(&tmp.0);
    let url = format!("{}/healthz", cp.url());
    let out = edgegw_cp(&["healthcheck", "--url", &url]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{url}: ok")
    );
    // A path that does not answer 200.
    let missing = format!("{}/no-such-path", cp.url());
    let out = edgegw_cp(&["healthcheck", "--url", &missing]);
    assert_one_line_error(&out, &["unhealthy", "it answered 404"]);
    // Nothing listening.
    let dead = format!("https://127.0.0.1:{}/healthz", free_port());
    let out = edgegw_cp(&["healthcheck", "--url", &dead]);
    assert_one_line_error(&out, &[&dead, "unhealthy", "connecting to 127.0.0.1"]);
    let out = edgegw_cp(&["healthcheck", "--url", "ftp://x/healthz"]);
    assert_one_line_error(&out, &["use an http:// or https:// URL"]);
}
