//! The Debian package from `cargo xtask deb`: its control fields and
//! conffile, the same files as `install.sh --prefix /usr` with the units in
//! /lib/systemd/system; installed by dpkg into a root of its own (DPKG_ROOT:
//! nothing on this machine is touched), the installed binary is the build
//! under test, stripped, and starts; an upgrade keeps an edited
//! configuration, and removal leaves it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use edgegw_tests::{
    cp::cp_bin,
    process::{TempDir, edgegw_bin},
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `cargo xtask deb` once per test binary, packaging the binaries
/// under test; the package's path.
fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace())
            .args(["xtask", "deb"])
            .env("EDGEGW_BIN", edgegw_bin())
            .env("EDGEGW_CP_BIN", cp_bin())
            .output()
            .expect("running cargo xtask deb");
        assert!(
            out.status.success(),
            "cargo xtask deb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deb = workspace().join(format!(
            "target/dist/edgegw_{}_amd64.deb",
            env!("CARGO_PKG_VERSION")
        ));
        assert!(deb.exists());
        deb
    })
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dpkg_deb(args: &[&str]) -> String {
    ok(Command::new("dpkg-deb")
        .args(args)
        .arg(package())
        .output()
        .unwrap())
}

/// `dpkg --root ROOT ARGS`, scripts run with DPKG_ROOT=ROOT, not chrooted.
/// The root's dpkg database lists none of the package's dependencies.
fn dpkg(root: &Path, args: &[&str]) -> Output {
    Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--no-triggers",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn build_id(path: &Path) -> String {
    let text = ok(Command::new("readelf")
        .arg("-n")
        .arg(path)
        .output()
        .unwrap());
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_string))
        .unwrap()
}

#[test]
fn package_fields_and_contents_match_the_tarball_layout() {
    let version = env!("CARGO_PKG_VERSION");
    for (field, want) in [
        ("Package", "edgegw".to_string()),
        ("Version", version.to_string()),
        ("Architecture", "amd64".to_string()),
    ] {
        let fields = dpkg_deb(&["--field"]);
        assert!(
            fields.lines().any(|l| l == format!("{field}: {want}")),
            "{field}: {want} not in:\n{fields}"
        );
    }
    assert!(dpkg_deb(&["--field"]).contains("Depends: libc6 (>= 2.34)"));
    let contents = dpkg_deb(&["--contents"]);
    for path in [
        "./usr/bin/edgegw",
        "./usr/bin/edgegw-cp",
        "./usr/share/edgegw/edgegw.toml.example",
        "./usr/share/doc/edgegw/operator-guide.md",
        "./etc/edgegw/edgegw.toml",
        "./var/lib/edgegw/",
        "./lib/systemd/system/edgegw.service",
        "./lib/systemd/system/edgegw-cp.service",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} not in:\n{contents}"
        );
    }
    assert!(!contents.contains("./etc/systemd/"), "{contents}");
    for line in contents.lines() {
        assert!(line.contains(" root/root "), "not owned by root: {line}");
    }
    let tmp = TempDir::new("debinfo");
    ok(Command::new("dpkg-deb")
        .arg("--control")
        .arg(package())
        .arg(tmp.0.join("DEBIAN"))
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read_to_string(tmp.0.join("DEBIAN/conffiles")).unwrap(),
        "/etc/edgegw/edgegw.toml\n"
    );
    let out = Command::new("sh")
        .arg("-n")
        .arg(tmp.0.join("DEBIAN/postinst"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn installs_upgrades_and_removes_in_a_root_of_its_own() {
    let tmp = TempDir::new("debroot");
    let root = tmp.0.join("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let deb = package().to_str().unwrap();
    ok(dpkg(&root, &["--install", deb]));
    let status = ok(dpkg(&root, &["--status", "edgegw"]));
    assert!(status.contains("Status: install ok installed"), "{status}");

    let bin = root.join("usr/bin/edgegw");
    assert_eq!(build_id(&bin), build_id(&edgegw_bin()));
    assert_eq!(
        build_id(&root.join("usr/bin/edgegw-cp")),
        build_id(&cp_bin())
    );
    assert!(
        std::fs::metadata(&bin).unwrap().len() < std::fs::metadata(edgegw_bin()).unwrap().len()
    );
    let version = ok(Command::new(&bin).arg("--version").output().unwrap());
    assert_eq!(
        version.trim(),
        format!("edgegw {}", env!("CARGO_PKG_VERSION"))
    );
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/edgegw.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/edgegw run --config /etc/edgegw/edgegw.toml"),
        "{unit}"
    );
    let config = root.join("etc/edgegw/edgegw.toml");
    ok(Command::new(&bin)
        .args(["config", "validate", config.to_str().unwrap()])
        .output()
        .unwrap());

    // An edited conffile survives reinstalling (an upgrade) and removal.
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("iface = \"eth0\"", "iface = \"ens5\"");
    assert!(edited.contains("ens5"));
    std::fs::write(&config, &edited).unwrap();
    ok(dpkg(&root, &["--install", deb]));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    ok(dpkg(&root, &["--remove", "edgegw"]));
    assert!(!bin.exists());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    let status = ok(dpkg(&root, &["--status", "edgegw"]));
    assert!(
        status.contains("Status: deinstall ok config-files"),
        "{status}"
    );
}
