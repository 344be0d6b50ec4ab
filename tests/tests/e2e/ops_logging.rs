//! Daemon logs as operators see them: human-readable on a terminal (a real
//! pty from `script`), JSON when asked or when stderr is not a terminal, no
//! timestamps when stderr is the journal.

use std::{os::unix::fs::MetadataExt, process::Command};

use edgegw_tests::process::{Daemon, TempDir, edgegw_bin, free_port};

fn config(listen: &str) -> String {
    format!("[gateway]\nlisten = \"{listen}\"\n[xdp]\nmode = \"off\"\n")
}

/// Runs the daemon for one second on a pseudo-terminal and returns what it
/// printed there.
fn on_a_terminal(tmp: &TempDir, format: Option<&str>) -> String {
    let cfg = tmp.write("c.toml", &config(&format!("127.0.0.1:{}", free_port())));
    let inner = format!(
        "timeout -s TERM 1 {} run --config {} --runtime-dir {}",
        edgegw_bin().display(),
        cfg.display(),
        tmp.0.join("run").display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]);
    match format {
        Some(f) => cmd.env("EDGEGW_LOG_FORMAT", f),
        None => cmd.env_remove("EDGEGW_LOG_FORMAT"),
    };
    let out = cmd.env_remove("JOURNAL_STREAM").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn human_on_a_terminal_json_when_asked() {
    let tmp = TempDir::new("tty");
    let text = on_a_terminal(&tmp, None);
    let ready = text
        .lines()
        .find(|l| l.contains("edgegw ready"))
        .unwrap_or_else(|| panic!("no ready line on the terminal:\n{text}"));
    assert!(!ready.trim_start().starts_with('{'), "{ready}");
    assert!(
        ready.contains("\u{1b}["),
        "no colours on a terminal: {ready}"
    );

    let text = on_a_terminal(&tmp, Some("json"));
    let ready = text
        .lines()
        .find(|l| l.contains("edgegw ready"))
        .unwrap_or_else(|| panic!("no ready line on the terminal:\n{text}"));
    let line: serde_json::Value = serde_json::from_str(ready.trim()).expect("a JSON line");
    assert_eq!(line["message"], "edgegw ready");
    assert_eq!(line["level"], "INFO");
    assert!(line["timestamp"].is_string());
}

#[test]
fn json_without_a_terminal_and_bad_format_rejected() {
    let tmp = TempDir::new("notty");
    let cfg = tmp.write("c.toml", &config(&format!("127.0.0.1:{}", free_port())));
    let mut cmd = Command::new(edgegw_bin());
    cmd.args(["run", "--config", cfg.to_str().unwrap()])
        .args(["--runtime-dir", tmp.0.join("run").to_str().unwrap()])
        .env_remove("EDGEGW_LOG_FORMAT")
        .env_remove("JOURNAL_STREAM");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("d.log"));
    daemon.wait_ready();
    assert_eq!(daemon.stop(), Some(0));
    for line in daemon.log_text().lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["timestamp"].is_string() && v["message"].is_string(),
            "{line}"
        );
    }

    let out = Command::new(edgegw_bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("EDGEGW_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("EDGEGW_LOG_FORMAT=\"xml\"") && stderr.contains("json or human"),
        "{stderr}"
    );
}

#[test]
fn no_timestamps_when_stderr_is_the_journal() {
    let tmp = TempDir::new("journal");
    let port = free_port();
    let cfg = tmp.write("c.toml", &config(&format!("127.0.0.1:{port}")));
    let log = tmp.write("journal.log", "");
    // journald sets JOURNAL_STREAM to the device and inode of the stream it
    // hands the service as stderr: point it at the log file.
    let meta = std::fs::metadata(&log).unwrap();
    let mut cmd = Command::new(edgegw_bin());
    cmd.args([
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--xdp-mode",
        "off",
        "--runtime-dir",
        tmp.0.join("run").to_str().unwrap(),
    ])
    .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
    .env("EDGEGW_LOG_FORMAT", "human");
    let mut daemon = Daemon::spawn(cmd, log);
    daemon.wait_ready();
    assert_eq!(daemon.stop(), Some(0));
    let text = daemon.log_text();
    let ready = text.lines().find(|l| l.contains("edgegw ready")).unwrap();
    // Human format, starting with the level: no timestamp, no ANSI colour.
    assert!(ready.trim_start().starts_with("INFO"), "{ready}");
    assert!(!ready.contains("\u{1b}["), "{ready}");
}
