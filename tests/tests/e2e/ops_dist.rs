//! The tarball from `cargo xtask dist`: installed into a temporary root with
//! `install.sh --root --prefix` inside a network namespace with no network,
//! the installed binary starts, serves and stops; a second install keeps an
//! edited configuration; the unit files pass `systemd-analyze verify`.
//! The shipped binaries are stripped, their debug information is in the
//! debug archive beside the tarball, and SHA256SUMS checks both.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use edgegw_tests::{
    netns::{NetNs, Veth},
    process::{Daemon, TempDir, edgegw_bin},
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `cargo xtask dist` once per test binary and returns the tarball.
fn tarball() -> &'static Path {
    static TARBALL: OnceLock<PathBuf> = OnceLock::new();
    TARBALL.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace())
            .args(["xtask", "dist"])
            .output()
            .expect("running cargo xtask dist");
        assert!(
            out.status.success(),
            "cargo xtask dist failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(
            printed
                .lines()
                .last()
                .expect("dist prints the tarball")
                .trim(),
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            name,
            format!("edgegw-{}-x86_64-linux.tar.gz", env!("CARGO_PKG_VERSION"))
        );
        assert!(path.exists());
        path
    })
}

/// Unpacks the tarball into `dir` and returns the bundle directory.
fn unpack(dir: &Path) -> PathBuf {
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(tarball())
        .arg("-C")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("edgegw-{}-x86_64-linux", env!("CARGO_PKG_VERSION")))
}

/// `install.sh ARGS` run inside `ns` (a namespace with only a loopback: no network).
fn install(ns: &NetNs, bundle: &Path, args: &[&str]) -> Output {
    let script = bundle.join("install.sh");
    let mut argv = vec!["sh", script.to_str().unwrap()];
    argv.extend_from_slice(args);
    let out = ns.command(&argv).output().unwrap();
    assert!(
        out.status.success(),
        "install.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn tarball_installs_offline_and_the_installed_binary_serves() {
    let offline = NetNs::new("off");
    let tmp = TempDir::new("dist");
    let bundle = unpack(&tmp.0);
    let root = tmp.0.join("root");
    let root_s = root.to_str().unwrap();
    install(
        &offline,
        &bundle,
        &["--root", root_s, "--prefix", "/opt/edgegw"],
    );

    let bin = root.join("opt/edgegw/bin/edgegw");
    let config = root.join("etc/edgegw/edgegw.toml");
    for path in [
        &bin,
        &config,
        &root.join("opt/edgegw/share/edgegw/edgegw.toml.example"),
        &root.join("opt/edgegw/share/doc/edgegw/operator-guide.md"),
    ] {
        assert!(path.is_file(), "{} not installed", path.display());
    }
    assert!(root.join("var/lib/edgegw").is_dir());
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/edgegw.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/opt/edgegw/bin/edgegw run --config /etc/edgegw/edgegw.toml"),
        "{unit}"
    );
    // The XDP object is embedded: the installed binary is the one built
    // here, stripped.
    assert_stripped_build_of(&bin, &edgegw_bin());

    // The installed binary and default config: validate, start on a veth,
    // serve (404: the default config publishes no API yet), stop.
    let out = Command::new(&bin)
        .args(["config", "validate", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gw = NetNs::new("dg");
    let client = NetNs::new("dc");
    let veth = Veth::new(&gw, &client);
    let run = root.join("run/edgegw");
    let cmd = gw.command(&[
        bin.to_str().unwrap(),
        "run",
        "--config",
        config.to_str().unwrap(),
        "--iface",
        &veth.a,
        "--runtime-dir",
        run.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    let code = client.exec(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("http://{}:8080/orders/1", veth.a_ip),
    ]);
    assert_eq!(code, "404", "{}", daemon.log_text());
    let status = Command::new(&bin)
        .args(["status", "--json", "--runtime-dir", run.to_str().unwrap()])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["xdp"]["iface"], veth.a.as_str());
    assert_eq!(status["xdp"]["mode"], "native");
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
    // The production config keeps XDP pinned and enforcing after exit (no
    // protection gap across restarts); `edgegw detach` removes it.
    assert!(Path::new("/sys/fs/bpf/edgegw").join(&veth.a).exists());
    let out = Command::new(&bin)
        .args(["detach", "--iface", &veth.a])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new("/sys/fs/bpf/edgegw").join(&veth.a).exists());
}

/// The GNU build id of an ELF file (`readelf -n`, binutils).
fn build_id(path: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(path)
        .output()
        .expect("readelf (binutils) is installed by cargo xtask setup");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_string))
        .unwrap_or_else(|| panic!("{} has no build id", path.display()))
}

/// Section names of an ELF file.
fn sections(path: &Path) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["-S", "--wide"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(']')?;
            rest.split_whitespace().next().map(str::to_string)
        })
        .collect()
}

/// `shipped` is `built` without symbols or debug information, and points
/// at its debug file by name.
fn assert_stripped_build_of(shipped: &Path, built: &Path) {
    assert_eq!(build_id(shipped), build_id(built));
    let names = sections(shipped);
    assert!(names.iter().any(|n| n == ".gnu_debuglink"), "{names:?}");
    for gone in [".symtab", ".debug_line", ".debug_info"] {
        assert!(
            !names.iter().any(|n| n == gone),
            "{gone} still in {names:?}"
        );
    }
    assert!(sections(built).iter().any(|n| n == ".symtab"));
    assert!(
        std::fs::metadata(shipped).unwrap().len() < std::fs::metadata(built).unwrap().len() / 2
    );
}

/// Beside the tarball: the debug archive, whose files carry the shipped
/// binaries' build ids and their symbols, and SHA256SUMS listing both,
/// which `sha256sum -c` accepts and which fails on a changed byte.
#[test]
fn debug_archive_and_checksums_beside_the_tarball() {
    let dist = tarball().parent().unwrap();
    let name = format!("edgegw-{}-x86_64-linux", env!("CARGO_PKG_VERSION"));
    let debug_tarball = dist.join(format!("{name}-debug.tar.gz"));
    let tmp = TempDir::new("debug");
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&debug_tarball)
        .arg("-C")
        .arg(&tmp.0)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bundle = unpack(&tmp.0);
    for bin in ["edgegw", "edgegw-cp"] {
        let debug = tmp.0.join(format!("{name}-debug/{bin}.debug"));
        assert_eq!(build_id(&debug), build_id(&bundle.join("bin").join(bin)));
        let names = sections(&debug);
        for kept in [".symtab", ".debug_line"] {
            assert!(names.iter().any(|n| n == kept), "{bin}.debug: {names:?}");
        }
    }

    // The lines of this bundle's two archives (the image and package tests
    // may be rewriting theirs meanwhile), checked on copies.
    let all = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let copies = TempDir::new("sums");
    let mut sums = String::new();
    for listed in [format!("{name}.tar.gz"), format!("{name}-debug.tar.gz")] {
        let line = all
            .lines()
            .find(|l| l.ends_with(&format!("  {listed}")))
            .unwrap_or_else(|| panic!("{listed} not in SHA256SUMS:\n{all}"));
        sums.push_str(line);
        sums.push('\n');
        std::fs::copy(dist.join(&listed), copies.0.join(&listed)).unwrap();
    }
    std::fs::write(copies.0.join("SHA256SUMS"), &sums).unwrap();
    let check = || {
        Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(&copies.0)
            .output()
            .unwrap()
    };
    let out = check();
    assert!(out.status.success(), "{out:?}");
    let victim = copies.0.join(format!("{name}-debug.tar.gz"));
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let out = check();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
}

#[test]
fn second_install_keeps_an_edited_configuration() {
    let offline = NetNs::new("off");
    let tmp = TempDir::new("reinst");
    let bundle = unpack(&tmp.0);
    let root = tmp.0.join("root");
    let root_s = root.to_str().unwrap();
    install(&offline, &bundle, &["--root", root_s]);
    let config = root.join("etc/edgegw/edgegw.toml");
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("iface = \"eth0\"", "iface = \"ens5\"");
    assert!(edited.contains("ens5"));
    std::fs::write(&config, &edited).unwrap();

    let out = install(&offline, &bundle, &["--root", root_s]);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("keeping existing /etc/edgegw/edgegw.toml")
    );
    assert!(root.join("usr/local/bin/edgegw").is_file());

    let out = Command::new(bundle.join("install.sh"))
        .args(["--root", root_s, "--prefix", "relative"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prefix must be an absolute path"));
}

#[test]
fn xtask_install_from_the_source_tree() {
    let tmp = TempDir::new("xinst");
    let root = tmp.0.join("root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args([
            "xtask",
            "install",
            "--root",
            root.to_str().unwrap(),
            "--prefix",
            "/opt/x",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo xtask install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_stripped_build_of(&root.join("opt/x/bin/edgegw"), &edgegw_bin());
    assert!(root.join("etc/edgegw/edgegw.toml").is_file());
    assert!(root.join("var/lib/edgegw").is_dir());
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/edgegw.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/x/bin/edgegw run"), "{unit}");
}

/// `systemd-analyze verify` on the shipped units; its warnings count as
/// failures. ExecStart must name an executable: the installed edgegw, and
/// for edgegw-cp (not built in this workspace yet) an executable stand-in
/// that only says so, since verify checks the path, not the program.
#[test]
fn units_pass_systemd_analyze_verify() {
    let tmp = TempDir::new("units");
    let bin = tmp.0.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(edgegw_bin(), bin.join("edgegw")).unwrap();
    let cp = std::env::var_os("EDGEGW_CP_BIN").map_or_else(
        || workspace().join("target/production/edgegw-cp"),
        std::path::PathBuf::from,
    );
    if cp.exists() {
        std::fs::copy(&cp, bin.join("edgegw-cp")).unwrap();
    } else {
        let stand_in = bin.join("edgegw-cp");
        std::fs::write(
            &stand_in,
            "#!/bin/sh\necho 'edgegw-cp is not built yet' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &stand_in,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let verify = |name: &str, extra: &str| -> Output {
        let text = std::fs::read_to_string(workspace().join("systemd").join(name))
            .unwrap()
            .replace("/usr/local/bin/", &format!("{}/", bin.display()))
            + extra;
        let unit = tmp.write(name, &text);
        Command::new("systemd-analyze")
            .args(["verify", unit.to_str().unwrap()])
            .output()
            .expect("systemd-analyze (package systemd) is installed by cargo xtask setup")
    };
    for name in ["edgegw.service", "edgegw-cp.service"] {
        let out = verify(name, "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{name}: {stderr}"
        );
        let text = std::fs::read_to_string(workspace().join("systemd").join(name)).unwrap();
        for want in [
            "Type=notify",
            "WatchdogSec=",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "RestrictAddressFamilies=",
            "SystemCallFilter=@system-service",
        ] {
            assert!(text.contains(want), "{name} lacks {want}");
        }
        // The gateway's reload waits for the outcome (`edgegw reload`);
        // the control plane's only re-reads its certificate.
        let reload = if name == "edgegw.service" {
            "ExecReload=/usr/local/bin/edgegw reload"
        } else {
            "ExecReload=/bin/kill -HUP $MAINPID"
        };
        assert!(text.contains(reload), "{name} lacks {reload}");
        // The check can fail: a typo in a directive is reported.
        let out = verify(name, "\nRestrat=always\n");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Restrat"),
            "verify missed a bad directive in {name}"
        );
    }
}
