//! The images of `cargo xtask image` under Debian's podman (see
//! `edgegw_tests::podman`): the gateway serves the demo with XDP attached
//! inside a network namespace made here, `edgegw drops` on the host reads
//! its counters, and its pins outlive the container (a ban is enforced with
//! no container running, and by the next one); the control plane with its
//! store on a volume, a gateway syncing from it that restarts from its
//! backup volume while the control plane is down; and one clear line for
//! each thing a gateway container can be started without.

use std::path::Path;

use edgegw_tests::{
    certs::TestCa,
    managed::api_doc,
    netns::{NetNs, Veth},
    podman::{self, Container, Volume, ensure_host_bpffs, images, skip_reason},
    process::{TempDir, edgegw, edgegw_bin, edgegw_json},
};

/// What XDP needs in a container, instead of --privileged. Debian's podman
/// 4.3 default seccomp profile allows bpf() only with CAP_SYS_ADMIN, hence
/// `seccomp=unconfined` (the bad-input test shows the message without it).
const XDP_CAPS: [&str; 4] = [
    "--cap-drop=all",
    "--cap-add=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
];

/// The demo of config/edgegw.toml on `iface`, listening on every address
/// of the namespace, XDP left pinned on exit (the production default).
fn demo_config(tmp: &TempDir, iface: &str) -> String {
    let text = format!(
        r#"[gateway]
listen = "0.0.0.0:8080"
drain_timeout_secs = 2
access_log = "off"
[xdp]
iface = "{iface}"
mode = "native"
[admin]
listen = "127.0.0.1:9901"
[[apis]]
name = "demo"
path = "/"
backend = "http://127.0.0.1:8081"
[demo_backend]
listen = "127.0.0.1:8081"
"#
    );
    let path = tmp.write("edgegw.toml", &text);
    format!("{}:/etc/edgegw/edgegw.toml:ro", path.display())
}

/// `podman run` arguments of a gateway container in `ns`.
fn gateway_args<'a>(ns: &'a str, config: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![ns, "--volume", config];
    args.extend_from_slice(extra);
    args.push(&images().0);
    args
}

/// curl from `client` to the gateway; (exit success, body).
fn get(client: &NetNs, url: &str) -> (bool, String) {
    let out = client
        .command(&["curl", "-sS", "--max-time", "2", url])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn banned_packets(iface: &str) -> u64 {
    let drops = edgegw_json(&["drops", "--iface", iface, "--json"]);
    drops["reasons"]["banned"]["packets"].as_u64().unwrap()
}

#[test]
fn gateway_container_attaches_xdp_and_its_pins_outlive_it() {
    if skip_reason().is_some() {
        return;
    }
    ensure_host_bpffs();
    let gw = NetNs::new("cg");
    let client = NetNs::new("cc");
    let veth = Veth::new(&gw, &client);
    let tmp = TempDir::new("cgw");
    let config = demo_config(&tmp, &veth.a);
    let net = format!("--net=ns:{}", gw.path());
    let bpffs = ["--volume", "/sys/fs/bpf:/sys/fs/bpf"];
    let mut extra: Vec<&str> = XDP_CAPS.to_vec();
    extra.extend(bpffs);
    let args = gateway_args(&net, &config, &extra);

    let first = Container::run(&args);
    first.wait_log("edgegw ready");
    assert!(first.healthy(), "{}", first.logs());
    let url = format!("http://{}:8080/orders/1", veth.a_ip);
    let (ok, body) = get(&client, &url);
    assert!(ok && body.contains("edgegw-demo-echo"), "{body}");
    // The host reads the container's XDP counters from the shared pins.
    let drops = edgegw_json(&["drops", "--iface", &veth.a, "--json"]);
    assert!(
        drops["reasons"]["passed"]["packets"].as_u64().unwrap() > 0,
        "{drops}"
    );
    let ban = edgegw(&[
        "ban",
        &format!("{}/32", veth.b_ip),
        "--for",
        "10m",
        "--iface",
        &veth.a,
    ]);
    assert!(ban.status.success(), "{ban:?}");
    assert!(!get(&client, &url).0, "banned source served");
    let banned = banned_packets(&veth.a);
    assert!(banned > 0);

    // Stopped: drained, exit 0, XDP left pinned and enforcing.
    assert_eq!(first.stop(10), 0, "{}", first.logs());
    assert!(first.logs().contains("XDP left attached and pinned"));
    assert!(
        Path::new("/sys/fs/bpf/edgegw")
            .join(&veth.a)
            .join("link")
            .exists()
    );
    assert!(!get(&client, &url).0, "ban not enforced with no container");
    let between = banned_packets(&veth.a);
    assert!(between > banned, "{between} <= {banned}");

    // A new container adopts the pins: the ban holds until lifted.
    let second = Container::run(&args);
    second.wait_log("edgegw ready");
    assert!(!get(&client, &url).0, "ban lost by the new container");
    assert!(banned_packets(&veth.a) > between);
    let bans = edgegw_json(&["bans", "--iface", &veth.a, "--json"]);
    assert_eq!(
        bans["bans"][0]["cidr"],
        format!("{}/32", veth.b_ip),
        "{bans}"
    );
    let unban = edgegw(&["unban", &format!("{}/32", veth.b_ip), "--iface", &veth.a]);
    assert!(unban.status.success(), "{unban:?}");
    let (ok, body) = get(&client, &url);
    assert!(ok && body.contains("edgegw-demo-echo"), "{body}");
    assert_eq!(second.stop(10), 0, "{}", second.logs());
}

/// A container that must exit at once (no restart loop of a stack trace)
/// with one error line, its last, naming `wanted`; before it only the
/// JSON info lines of what had started.
fn assert_refused(args: &[&str], wanted: &[&str]) {
    let container = Container::run(args);
    let code = container.wait_exit();
    let logs = container.logs();
    assert_ne!(code, 0, "{logs}");
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    let (last, before) = lines.split_last().expect("no output");
    assert!(last.starts_with("edgegw: error: "), "{logs}");
    for line in before {
        assert!(
            line.contains(r#""level":"INFO""#),
            "not an info line: {line}\n{logs}"
        );
    }
    for w in wanted {
        assert!(last.contains(w), "{w:?} not in {last:?}");
    }
}

#[test]
fn gateway_container_without_what_xdp_needs_says_which_in_one_line() {
    if skip_reason().is_some() {
        return;
    }
    ensure_host_bpffs();
    let gw = NetNs::new("cb");
    let client = NetNs::new("cd");
    let veth = Veth::new(&gw, &client);
    let tmp = TempDir::new("cbad");
    let config = demo_config(&tmp, &veth.a);
    let net = format!("--net=ns:{}", gw.path());
    let bpffs = ["--volume", "/sys/fs/bpf:/sys/fs/bpf"];

    // podman's default capabilities: no CAP_BPF, no CAP_NET_ADMIN.
    assert_refused(
        &gateway_args(&net, &config, &bpffs),
        &[
            "permission denied attaching XDP",
            "--cap-add=BPF,PERFMON,NET_ADMIN",
            "capabilities.add",
            "not --privileged",
        ],
    );
    // The capabilities, but not the host's bpffs.
    assert_refused(
        &gateway_args(&net, &config, &XDP_CAPS),
        &[
            "bpffs",
            "not the host's BPF filesystem",
            "-v /sys/fs/bpf:/sys/fs/bpf",
            "hostPath",
        ],
    );
    // Both, under the runtime's default seccomp profile.
    let mut extra = vec![
        "--cap-drop=all",
        "--cap-add=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN",
    ];
    extra.extend(bpffs);
    assert_refused(
        &gateway_args(&net, &config, &extra),
        &[
            "permission denied",
            "seccomp",
            "seccomp=unconfined",
            "seccompProfile",
        ],
    );
    assert!(!Path::new("/sys/fs/bpf/edgegw").join(&veth.a).exists());
}

/// The control plane's HTTPS API from inside `ns`: (status, JSON body).
fn cp_call(
    ns: &NetNs,
    ca: &Path,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let auth = format!("Authorization: Bearer {token}");
    let url = format!("https://127.0.0.1:9443{path}");
    let text = body.map(|b| b.to_string());
    let mut argv = vec![
        "curl",
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        ca.to_str().unwrap(),
        "-H",
        &auth,
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ];
    if let Some(text) = &text {
        argv.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            text,
        ]);
    }
    argv.push(&url);
    let out = ns.exec(&argv);
    let (body, status) = out.rsplit_once('\n').unwrap();
    let json = if body.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (status.parse().unwrap(), json)
}

/// Waits until `url` answers `want` from inside `ns`.
fn wait_body(ns: &NetNs, url: &str, want: &str, container: &Container) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = ns
            .command(&["curl", "-sS", "--max-time", "2", url])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout) == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never answered {want:?}:\n{}",
            container.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn control_plane_container_syncs_a_gateway_container_that_restarts_from_its_backup() {
    if skip_reason().is_some() {
        return;
    }
    let (gw_image, cp_image) = images();
    // One namespace for both: the control plane on 127.0.0.1:9443 there.
    let ns = NetNs::new("cp");
    let net = format!("--net=ns:{}", ns.path());
    let tmp = TempDir::new("ccp");
    let ca = TestCa::new(&tmp.0);
    let leaf = ca.leaf(&tmp.0, "cp", &["localhost", "127.0.0.1"]);
    let tls = tmp.0.join("tls");
    std::fs::create_dir(&tls).unwrap();
    std::fs::copy(&leaf.cert, tls.join("tls.crt")).unwrap();
    std::fs::copy(&leaf.key, tls.join("tls.key")).unwrap();
    // The control plane runs as uid 10001: it must read its key.
    for f in ["tls.crt", "tls.key"] {
        std::fs::set_permissions(
            tls.join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
    }

    let store = Volume::new();
    let store_mount = format!("{}:/var/lib/edgegw-cp", store.name);
    let out = podman::run_once(&[
        "--volume",
        &store_mount,
        cp_image,
        "admin-token",
        "create",
        "--db",
        "/var/lib/edgegw-cp/cp.db",
    ]);
    assert!(out.status.success(), "{out:?}");
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // The store belongs to the control plane's user, not root.
    let db = store.mountpoint().join("cp.db");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&db).unwrap()),
        10001
    );

    let tls_mount = format!("{}:/etc/edgegw-cp/tls:ro", tls.display());
    let cp_args = [
        net.as_str(),
        "--cap-drop=all",
        "--volume",
        &store_mount,
        "--volume",
        &tls_mount,
        cp_image,
    ];
    let cp = Container::run(&cp_args);
    cp.wait_log("edgegw-cp ready");
    assert!(cp.healthy(), "{}", cp.logs());
    assert_eq!(cp.inspect("{{.Config.User}}"), "10001:10001");

    let api = api_doc("hello", "/hello", "from-cp", serde_json::json!([]));
    let (status, body) = cp_call(
        &ns,
        &ca.pem_path,
        &admin,
        "PUT",
        "/v1/apis/hello",
        Some(api),
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    let gateway = serde_json::json!({"name": "pod-1", "apis": ["hello"]});
    let (status, body) = cp_call(
        &ns,
        &ca.pem_path,
        &admin,
        "POST",
        "/v1/gateways",
        Some(gateway),
    );
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();

    let etc = tmp.0.join("gw");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("token"), token).unwrap();
    std::fs::copy(&ca.pem_path, etc.join("cp-ca.pem")).unwrap();
    std::fs::write(
        etc.join("edgegw.toml"),
        r#"[gateway]
listen = "127.0.0.1:8080"
drain_timeout_secs = 2
access_log = "off"
[xdp]
mode = "off"
[control_plane]
url = "https://127.0.0.1:9443"
token_file = "/etc/edgegw/token"
ca_file = "/etc/edgegw/cp-ca.pem"
backup_dir = "/var/lib/edgegw/backup"
heartbeat_secs = 1
poll_wait_secs = 5
startup_timeout_secs = 5
"#,
    )
    .unwrap();
    let backups = Volume::new();
    let etc_mount = format!("{}:/etc/edgegw:ro", etc.display());
    let backup_mount = format!("{}:/var/lib/edgegw", backups.name);
    // With XDP off the gateway needs no capability at all.
    let gw_args = [
        net.as_str(),
        "--cap-drop=all",
        "--volume",
        &etc_mount,
        "--volume",
        &backup_mount,
        gw_image,
    ];
    let url = "http://127.0.0.1:8080/hello";
    let first = Container::run(&gw_args);
    first.wait_log("edgegw ready");
    wait_body(&ns, url, "from-cp", &first);
    assert!(
        first
            .logs()
            .contains("configuration received from the control plane")
    );
    let backup_dir = backups.mountpoint().join("backup");
    let written = std::fs::read_dir(&backup_dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("bundle-"));
    assert!(written, "no backup in {}", backup_dir.display());
    assert_eq!(first.stop(10), 0, "{}", first.logs());

    // The control plane goes away; a new gateway container starts from the
    // backup volume and serves what it had.
    assert_eq!(cp.stop(10), 0, "{}", cp.logs());
    let second = Container::run(&gw_args);
    second.wait_log("edgegw ready");
    assert!(
        second
            .logs()
            .contains("serving the configuration from the backup"),
        "{}",
        second.logs()
    );
    wait_body(&ns, url, "from-cp", &second);
    assert_eq!(second.stop(10), 0, "{}", second.logs());

    // The same volume read-only: one line saying so, before serving.
    let read_only = format!("{}:/var/lib/edgegw:ro", backups.name);
    let mut args = gw_args;
    args[5] = &read_only;
    assert_refused(
        &args,
        &[
            "backup_dir /var/lib/edgegw/backup is not writable",
            "readOnly: false",
        ],
    );

    // The control plane starts again from its volume: the gateway's
    // registration is still there.
    let cp = Container::run(&cp_args);
    cp.wait_log("edgegw-cp ready");
    let (status, body) = cp_call(&ns, &ca.pem_path, &admin, "GET", "/v1/gateways/pod-1", None);
    assert_eq!(status, 200, "{body}");
}

/// Labels, users and health checks as `podman image inspect` shows them.
#[test]
fn images_carry_labels_users_and_health_checks() {
    if skip_reason().is_some() {
        return;
    }
    let (gw, cp) = images();
    for (image, user, check) in [
        (gw, "", r#""/usr/bin/edgegw","status""#),
        (cp, "10001:10001", r#""/usr/bin/edgegw-cp","healthcheck""#),
    ] {
        let inspect = |format: &str| {
            podman::ok(&["image", "inspect", "--format", format, image])
                .trim()
                .to_string()
        };
        assert_eq!(
            inspect("{{index .Labels \"org.opencontainers.image.version\"}}"),
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(
            inspect("{{index .Labels \"org.opencontainers.image.licenses\"}}"),
            "Apache-2.0"
        );
        assert!(!inspect("{{index .Labels \"org.opencontainers.image.source\"}}").is_empty());
        assert!(!inspect("{{index .Labels \"org.opencontainers.image.revision\"}}").is_empty());
        assert_eq!(inspect("{{.Config.User}}"), user, "{image}");
        let health = inspect("{{json .Config.Healthcheck}}");
        assert!(health.contains(check), "{image}: {health}");
    }
    // Nothing but the stripped binary, its libraries and a few files: the
    // whole image is smaller than the binary with its debug information,
    // and it has no shell.
    let size: u64 = podman::ok(&["image", "inspect", "--format", "{{.Size}}", gw])
        .trim()
        .parse()
        .unwrap();
    let built = std::fs::metadata(edgegw_bin()).unwrap().len();
    assert!(size < built, "gateway image {size} bytes, binary {built}");
    let shell = podman::run_once(&["--entrypoint", "/bin/sh", gw, "-c", "true"]);
    assert!(!shell.status.success(), "the image has a shell");
}
