//! A managed gateway whose control plane is unreachable: it starts from
//! the newest valid backup (a corrupt one falls back to the previous
//! generation, loudly), and with no backup it refuses to start with one
//! clear line. Bad `[control_plane]` settings are one-line errors.

use edgegw_tests::{
    managed::{ManagedNode, hello_bundle},
    process::{TempDir, edgegw, free_port},
};

/// A control plane URL nothing listens on (a free loopback port).
fn dead_cp() -> String {
    format!("https://127.0.0.1:{}", free_port())
}

#[test]
fn starts_from_the_newest_valid_backup_and_skips_a_corrupt_one() {
    let mut node = ManagedNode::new("bk", &dead_cp(), None, "tok", "");
    node.write_backup(1, &hello_bundle(1, "one"));
    node.write_backup(2, &hello_bundle(2, "two"));
    // Generation 3 is tampered with after its checksum was written.
    let three = node.write_backup(3, &hello_bundle(3, "three"));
    let text = std::fs::read_to_string(&three).unwrap();
    std::fs::write(&three, text.replace("three", "THREE")).unwrap();
    node.start();
    assert_eq!(node.get("/hello"), (200, "two".to_string()));
    let log = node.log();
    assert!(
        log.contains(&format!(
            "backup {} is corrupt (checksum mismatch",
            three.display()
        )) && log.contains("falling back to")
            && log.contains("bundle-2.json"),
        "{log}"
    );
    // The node says where its configuration comes from and that the
    // control plane is unreachable; /readyz serves with the details.
    let s = node.wait_status(10, |cp| !cp["last_sync_error"].is_null());
    let cp = &s["control_plane"];
    assert_eq!(cp["version"], 2, "{s}");
    assert_eq!(cp["source"], "backup", "{s}");
    assert!(
        cp["last_sync_error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{s}"
    );
    let (status, body) = node.readyz();
    assert_eq!(status, 200);
    assert!(
        body.starts_with("ready\nsync: error: fetch: control plane"),
        "{body}"
    );
    let text = node.status_text();
    assert!(text.contains("cp version    2 (from backup)"), "{text}");
    assert!(text.contains("last sync     never"), "{text}");
    node.stop();
    // A truncated newest generation (a crash mid-copy) is skipped too.
    let two = node.backup_dir.join("bundle-2.json");
    let text = std::fs::read_to_string(&two).unwrap();
    std::fs::write(&two, &text[..text.len() / 2]).unwrap();
    std::fs::remove_file(&three).unwrap();
    node.start();
    assert_eq!(node.get("/hello"), (200, "one".to_string()));
    node.stop();
}

#[test]
fn no_backup_and_no_control_plane_is_one_clear_startup_error() {
    let url = dead_cp();
    let mut node = ManagedNode::new("nobk", &url, None, "tok", "");
    let daemon = node.spawn();
    let status = daemon.child.wait().unwrap();
    assert!(!status.success());
    let log = daemon.log_text();
    let last = log.lines().last().unwrap_or_default();
    for want in [
        "edgegw: error: no configuration: control plane",
        &url,
        "unreachable",
        "no valid backup in",
        node.backup_dir.to_str().unwrap(),
    ] {
        assert!(last.contains(want), "{want:?} not in {last:?}\n{log}");
    }
    node.daemon = None;
}

#[test]
fn bad_control_plane_settings_are_one_line_errors() {
    let tmp = TempDir::new("cpbad");
    let base = format!(
        "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n",
        free_port()
    );
    for (rest, wants) in [
        (
            "[control_plane]\nurl = \"http://127.0.0.1:1\"\ntoken_file = \"t\"\n",
            &["control_plane.url", "must start with https://"][..],
        ),
        (
            "[control_plane]\nurl = \"https://127.0.0.1:1\"\ntoken_file = \"t\"\n[catalog]\nfile = \"c.yaml\"\n",
            &["[catalog] cannot be used with [control_plane]"][..],
        ),
    ] {
        let cfg = tmp.write("c.toml", &format!("{base}{rest}"));
        for args in [
            vec!["run", "--config", cfg.to_str().unwrap()],
            vec!["config", "validate", cfg.to_str().unwrap()],
        ] {
            let out = edgegw(&args);
            edgegw_tests::process::assert_one_line_error(&out, wants);
        }
    }
}
