//! Response caching end to end (`cache-lookup` / `cache-store`, the
//! `cache-*-value` policies): the real `edgegw`, curl as the client, a
//! backend process (`cache_origin`) whose answers carry a serial number,
//! so a cached answer (an old serial) is told from a fresh one, and a
//! private redis-server for the cache shared by two gateways.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use edgegw_tests::{
    apim::{Answer, ApimGateway, fetch, hash_key, refused_start, wait_until},
    gateway::{TestGateway, metric_value},
    process::{Daemon, TempDir, edgegw, edgegw_bin, free_port, wait_port},
    redis::{PASSWORD, RedisServer},
};

/// A `cache_origin` process; killed when dropped.
struct Origin {
    port: u16,
    child: Child,
}

impl Origin {
    fn start() -> Origin {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_cache_origin"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(&format!("127.0.0.1:{port}"));
        Origin { port, child }
    }

    /// Requests it served.
    fn hits(&self) -> u64 {
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{}/__hits", self.port)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    fn apis(&self, names: &[&str]) -> String {
        names
            .iter()
            .map(|n| {
                format!(
                    "[[apis]]\nname = \"{n}\"\npath = \"/{n}\"\nbackend = \"http://127.0.0.1:{}\"\n",
                    self.port
                )
            })
            .collect()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The serial of an origin answer (`#12 GET ...`).
fn serial(a: &Answer) -> u64 {
    a.body
        .strip_prefix('#')
        .and_then(|b| b.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an origin answer: {} {:?}", a.status, a.body))
}

fn x_cache(a: &Answer) -> &str {
    a.header("x-cache").unwrap_or("none")
}

fn get(url: &str, key: &str, extra: &[&str]) -> Answer {
    let header = format!("Ocp-Apim-Subscription-Key: {key}");
    let mut args = vec!["-H", header.as_str()];
    args.extend_from_slice(extra);
    args.push(url);
    fetch(&args)
}

/// The catalog; `shared_outbound` is added to the outbound policies of
/// API "shared" (a reload changes it).
fn catalog(shared_outbound: &str) -> String {
    format!(
        r#"
apis:
  - name: pets
    policies:
      inbound:
        - cache-lookup:
            vary_by_developer: true
            vary_by_developer_groups: false
            caching_type: internal
            downstream_caching_type: private
            vary_by_header: [Accept]
            vary_by_query_parameter: [page]
      outbound:
        - cache-store: {{duration: 60}}
  - name: shared
    policies:
      inbound:
        - cache-lookup: {{vary_by_developer: false, vary_by_developer_groups: false, caching_type: internal}}
      outbound:
        - cache-store: {{duration: 60}}
{shared_outbound}
  - name: private
    policies:
      inbound:
        - cache-lookup: {{vary_by_developer: true, vary_by_developer_groups: false, caching_type: internal, allow_private_response_caching: true}}
      outbound:
        - cache-store: {{duration: 60}}
  - name: values
    policies:
      inbound:
        - cache-lookup-value: {{key: "last-{{subscription}}", header_name: x-last, default_value: none, caching_type: internal}}
        - cache-store-value: {{key: "last-{{subscription}}", value: "{{query:mark}}", duration: 60, caching_type: internal}}
  - name: forget
    policies:
      inbound:
        - cache-remove-value: {{key: "last-{{subscription}}", caching_type: internal}}
products:
  - name: p
    apis: [pets, shared, private, values, forget]
subscriptions:
  - {{id: alice, scope: "product:p", primary_key_sha256: {}}}
  - {{id: bob, scope: "product:p", primary_key_sha256: {}}}
"#,
        hash_key("alice-key"),
        hash_key("bob-key"),
    )
}

#[test]
fn hits_misses_vary_by_and_no_cross_subscription_leak() {
    let origin = Origin::start();
    let gw = ApimGateway::start(
        "cache-mem",
        &origin.apis(&["pets", "shared", "private", "values", "forget"]),
        &catalog(""),
    );
    let url = |p: &str| gw.url(p);

    // Miss, then hit: the same serial, with Age and the downstream
    // Cache-Control; the origin saw one request.
    let first = get(&url("/pets/a?page=1"), "alice-key", &[]);
    assert_eq!(
        (first.status, x_cache(&first)),
        (200, "MISS"),
        "{}",
        first.body
    );
    let again = get(&url("/pets/a?page=1"), "alice-key", &[]);
    assert_eq!(x_cache(&again), "HIT");
    assert_eq!(serial(&again), serial(&first));
    assert!(
        again
            .header("age")
            .is_some_and(|a| a.parse::<u64>().unwrap() <= 60)
    );
    let cc = again.header("cache-control").unwrap();
    assert!(
        cc.starts_with("private, max-age=") && cc.ends_with("must-revalidate"),
        "{cc}"
    );
    assert_eq!(origin.hits(), 1);

    // vary_by_query_parameter: page counts, other parameters do not.
    let page2 = get(&url("/pets/a?page=2"), "alice-key", &[]);
    assert_eq!(x_cache(&page2), "MISS");
    assert_ne!(serial(&page2), serial(&first));
    let utm = get(&url("/pets/a?utm=x&page=1"), "alice-key", &[]);
    assert_eq!((x_cache(&utm), serial(&utm)), ("HIT", serial(&first)));
    // The path is part of the key.
    assert_eq!(
        x_cache(&get(&url("/pets/b?page=1"), "alice-key", &[])),
        "MISS"
    );

    // vary_by_header: Accept.
    let json = get(
        &url("/pets/a?page=1"),
        "alice-key",
        &["-H", "Accept: application/json"],
    );
    assert_eq!(x_cache(&json), "MISS");
    let json2 = get(
        &url("/pets/a?page=1"),
        "alice-key",
        &["-H", "Accept: application/json"],
    );
    assert_eq!((x_cache(&json2), serial(&json2)), ("HIT", serial(&json)));
    assert_eq!(
        serial(&get(&url("/pets/a?page=1"), "alice-key", &[])),
        serial(&first)
    );

    // vary_by_developer: bob never gets alice's entry.
    let bob = get(&url("/pets/a?page=1"), "bob-key", &[]);
    assert_eq!(
        x_cache(&bob),
        "MISS",
        "cross-subscription leak: {}",
        bob.body
    );
    assert_ne!(serial(&bob), serial(&first));
    let bob2 = get(&url("/pets/a?page=1"), "bob-key", &[]);
    assert_eq!((x_cache(&bob2), serial(&bob2)), ("HIT", serial(&bob)));

    // Without vary_by_developer the entry is shared, but only in its API.
    let shared = get(&url("/shared/a?page=1"), "alice-key", &[]);
    assert_eq!(x_cache(&shared), "MISS");
    let by_bob = get(&url("/shared/a?page=1"), "bob-key", &[]);
    assert_eq!(
        (x_cache(&by_bob), serial(&by_bob)),
        ("HIT", serial(&shared))
    );

    // HEAD reads GET's entry.
    let head = get(&url("/pets/a?page=1"), "alice-key", &["-I"]);
    assert_eq!((head.status, x_cache(&head)), (200, "HIT"));
    // POST is not cached.
    let post = get(
        &url("/pets/a?page=1"),
        "alice-key",
        &["-X", "POST", "-d", "x"],
    );
    assert_eq!(x_cache(&post), "BYPASS");
    assert!(post.body.contains("POST"), "{}", post.body);

    // Never stored: no-store, private, Set-Cookie, a 404, a request with
    // Authorization (bypassed).
    for (path, extra) in [
        ("/pets/ns?cc=no-store", &[][..]),
        ("/pets/pv?cc=private", &[][..]),
        ("/pets/ck?cookie=1", &[][..]),
        ("/pets/nf?status=404", &[][..]),
        ("/pets/au", &["-H", "Authorization: Bearer t"][..]),
    ] {
        let one = get(&url(path), "alice-key", extra);
        let two = get(&url(path), "alice-key", extra);
        assert_ne!(x_cache(&two), "HIT", "{path} was stored");
        assert_ne!(serial(&one), serial(&two), "{path} was stored");
    }
    let m = gw.gw.metrics();
    for (series, want) in [
        ("edgegw_cache_not_stored_total{reason=\"no_store\"}", 2.0),
        ("edgegw_cache_not_stored_total{reason=\"private\"}", 2.0),
        ("edgegw_cache_not_stored_total{reason=\"set_cookie\"}", 2.0),
        ("edgegw_cache_not_stored_total{reason=\"status\"}", 2.0),
        ("edgegw_cache_bypass_total{reason=\"authorization\"}", 2.0),
        ("edgegw_cache_bypass_total{reason=\"method\"}", 1.0),
    ] {
        assert_eq!(metric_value(&m, series), want, "{series}\n{m}");
    }
    assert!(
        metric_value(&m, "edgegw_cache_hits_total{store=\"memory\"}") >= 7.0,
        "{m}"
    );
    assert!(
        metric_value(&m, "edgegw_cache_stores_total{store=\"memory\"}") >= 6.0,
        "{m}"
    );
    assert!(metric_value(&m, "edgegw_cache_memory_bytes") > 0.0, "{m}");

    // allow_private_response_caching: Authorization and private are cached.
    let p1 = get(
        &url("/private/x?cc=private"),
        "alice-key",
        &["-H", "Authorization: Bearer t"],
    );
    let p2 = get(
        &url("/private/x?cc=private"),
        "alice-key",
        &["-H", "Authorization: Bearer t"],
    );
    assert_eq!((x_cache(&p2), serial(&p2)), ("HIT", serial(&p1)));

    // cache-store-value / cache-lookup-value / cache-remove-value: the
    // value this subscription's last call stored reaches the backend in
    // x-last (a forged one is replaced); per subscription; removed.
    let last = |key: &str, mark: &str| {
        let a = get(
            &url(&format!("/values/v?mark={mark}")),
            key,
            &["-H", "x-last: forged"],
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
            .rsplit_once(" last=")
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    assert_eq!(last("bob-key", "one"), "none");
    assert_eq!(last("bob-key", "two"), "one");
    assert_eq!(last("alice-key", "a"), "none");
    assert_eq!(last("bob-key", "three"), "two");
    assert_eq!(get(&url("/forget/x"), "bob-key", &[]).status, 200);
    assert_eq!(last("bob-key", "four"), "none");
}

/// `edgegw status --json` of a gateway started with a runtime directory.
fn status(runtime: &std::path::Path) -> serde_json::Value {
    let out = edgegw(&[
        "status",
        "--json",
        "--runtime-dir",
        runtime.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A gateway with a runtime directory (for `edgegw status`), `rest`
/// after the base config.
fn start_node(tag: &str, rest: &str) -> (TestGateway, PathBuf) {
    let tmp = TempDir::new(tag);
    let runtime = tmp.0.join("run");
    let (port, admin_port) = (free_port(), free_port());
    let text = format!("{}{rest}", TestGateway::base_config(&tmp, port, admin_port));
    let config = tmp.write("edgegw.toml", &text);
    let mut cmd = Command::new(edgegw_bin());
    cmd.args(["run", "--config", config.to_str().unwrap(), "--runtime-dir"])
        .arg(&runtime)
        .env("EDGEGW_LOG", "info");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    wait_port(&format!("127.0.0.1:{port}"));
    let gw = TestGateway {
        daemon,
        port,
        admin_port,
        access_log: tmp.0.join("access.log"),
        config,
        tmp,
    };
    (gw, runtime)
}

const SHARED_CATALOG: &str = r#"
apis:
  - name: pets
    subscription_required: false
    policies:
      inbound:
        - cache-lookup: {vary_by_developer: false, vary_by_developer_groups: false, caching_type: external, vary_by_query_parameter: [q]}
      outbound:
        - cache-store: {duration: 60}
"#;

#[test]
fn two_gateways_share_a_redis_cache_and_bypass_it_while_redis_is_down() {
    let dir = TempDir::new("cache-redis");
    let redis_port = free_port();
    let mut redis = RedisServer::start(&dir.0, redis_port);
    let password = dir.write("redis-password", &format!("{PASSWORD}\n"));
    let catalog = dir.write("catalog.yaml", SHARED_CATALOG);
    let origin = Origin::start();
    let rest = format!(
        "{}[redis]\nurl = \"redis://127.0.0.1:{redis_port}\"\npassword_file = \"{}\"\ncommand_timeout_ms = 200\n[catalog]\nfile = \"{}\"\n",
        origin.apis(&["pets"]),
        password.display(),
        catalog.display()
    );
    let (a, a_run) = start_node("cache-a", &rest);
    let (b, b_run) = start_node("cache-b", &rest);
    for run in [&a_run, &b_run] {
        wait_until(|| status(run)["redis"]["state"] == "ok", "redis ok");
    }

    // Stored by one gateway, answered from Redis by the other.
    let first = fetch(&[&a.url("/pets/x?q=1")]);
    assert_eq!(x_cache(&first), "MISS", "{}", first.body);
    wait_until(
        || {
            redis
                .cli(&["--scan", "--pattern", "edgegw:cache:r:*"])
                .lines()
                .count()
                == 1
        },
        "entry in redis",
    );
    let other = fetch(&[&b.url("/pets/x?q=1")]);
    assert_eq!((x_cache(&other), serial(&other)), ("HIT", serial(&first)));
    assert!(other.header("age").is_some());
    assert_eq!(origin.hits(), 1);
    assert_eq!(b.metric("edgegw_cache_hits_total{store=\"redis\"}"), 1.0);
    let ttl: i64 = redis
        .cli(&[
            "PTTL",
            redis
                .cli(&["--scan", "--pattern", "edgegw:cache:r:*"])
                .trim(),
        ])
        .parse()
        .unwrap();
    assert!(
        ttl > 50_000 && ttl <= 60_000,
        "entry expires with duration: {ttl}"
    );

    // Redis hung: every request is served from the backend, bypassed and
    // counted; never a 5xx.
    redis.freeze();
    for i in 0..6 {
        let started = Instant::now();
        let r = fetch(&[&b.url(&format!("/pets/h?q={i}"))]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(x_cache(&r), "BYPASS");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    assert!(b.metric("edgegw_cache_bypass_total{reason=\"redis_down\"}") >= 6.0);
    // Redis gone: the same.
    redis.stop();
    let r = fetch(&[&a.url("/pets/x?q=1")]);
    assert_eq!((r.status, x_cache(&r)), (200, "BYPASS"), "{}", r.body);
    assert!(serial(&r) > serial(&first));
    wait_until(
        || status(&a_run)["cache"]["bypassed_redis_down"].as_u64() >= Some(1),
        "status shows the bypass",
    );
    let text = String::from_utf8_lossy(
        &edgegw(&["status", "--runtime-dir", a_run.to_str().unwrap()]).stdout,
    )
    .into_owned();
    assert!(text.contains("Redis down"), "{text}");

    // Back on the same port (empty): caching resumes.
    let _redis = RedisServer::start(&dir.0, redis_port);
    wait_until(|| status(&a_run)["redis"]["state"] == "ok", "redis back");
    let miss = fetch(&[&a.url("/pets/x?q=9")]);
    assert_eq!(x_cache(&miss), "MISS");
    wait_until(
        || x_cache(&fetch(&[&b.url("/pets/x?q=9")])) == "HIT",
        "shared again",
    );
}

#[test]
fn a_reload_keeps_the_in_memory_cache() {
    let origin = Origin::start();
    let gw = ApimGateway::start(
        "cache-reload",
        &origin.apis(&["pets", "shared", "private", "values", "forget"]),
        &catalog(""),
    );
    let url = gw.url("/shared/r");
    let first = get(&url, "alice-key", &[]);
    assert_eq!(x_cache(&first), "MISS");
    // The API's pipeline rebuilt (a policy added): the entries stay.
    let added = "        - set-header: {name: x-generation, value: two}";
    std::fs::write(&gw.catalog, catalog(added)).unwrap();
    let log = || gw.gw.daemon.log_text();
    let before = log().matches("configuration reloaded").count();
    gw.gw.daemon.signal(libc::SIGHUP);
    wait_until(
        || log().matches("configuration reloaded").count() > before,
        "reloaded",
    );
    assert_eq!(
        get(&gw.url("/shared/other"), "alice-key", &[]).header("x-generation"),
        Some("two")
    );
    let after = get(&url, "alice-key", &[]);
    assert_eq!((x_cache(&after), serial(&after)), ("HIT", serial(&first)));
    assert_eq!(origin.hits(), 2);
}

/// `n` requests for `path` at once (alice's key), their answers.
fn at_once(gw: &ApimGateway, path: &str, n: usize) -> Vec<Answer> {
    let url = gw.url(path);
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..n)
            .map(|_| s.spawn(|| get(&url, "alice-key", &[])))
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_misses_of_one_key_make_one_backend_request() {
    let origin = Origin::start();
    let gw = ApimGateway::start(
        "cache-coalesce",
        &origin.apis(&["pets", "shared", "private", "values", "forget"]),
        &catalog(""),
    );
    // Ten clients at once for one key the origin answers 1.5 s late: one
    // request reaches it, the others wait for its answer and get the
    // entry it left.
    let answers = at_once(&gw, "/shared/slow?delay=1500", 10);
    assert_eq!(origin.hits(), 1, "one backend request for one key");
    let first = serial(&answers[0]);
    for a in &answers {
        assert_eq!((a.status, serial(a)), (200, first), "{}", a.body);
    }
    let misses = answers.iter().filter(|a| x_cache(a) == "MISS").count();
    assert_eq!(
        misses,
        1,
        "{:?}",
        answers.iter().map(x_cache).collect::<Vec<_>>()
    );
    let m = gw.gw.metrics();
    let waited = metric_value(&m, "edgegw_cache_coalesced_total");
    assert!((1.0..=9.0).contains(&waited), "{m}");

    // An answer that is never stored (no-store): the waiters go to the
    // origin themselves once the first answer is out, each answered.
    let answers = at_once(&gw, "/shared/ns?cc=no-store&delay=500", 4);
    let mut serials: Vec<u64> = answers.iter().map(serial).collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 4, "each its own answer: {serials:?}");
    assert!(
        answers
            .iter()
            .all(|a| a.status == 200 && x_cache(a) != "HIT")
    );
    assert_eq!(origin.hits(), 5);
}

#[test]
fn bad_cache_settings_are_refused_with_one_line() {
    let dir = TempDir::new("cache-bad");
    for (policy, says) in [
        (
            "{cache-lookup: {vary_by_developer: true, vary_by_developer_groups: false, vary_by_headers: [a]}}",
            "unknown field `vary_by_headers`",
        ),
        (
            "{cache-lookup: {vary_by_developer: true, vary_by_developer_groups: false, caching_type: disk}}",
            "use internal, external or prefer-external",
        ),
        (
            "{cache-lookup: {vary_by_developer: true}}",
            "vary_by_developer_groups",
        ),
        (
            "{cache-lookup-value: {key: k, variable_name: v, header_name: x-v}}",
            "give variable_name or header_name, not both",
        ),
    ] {
        let cat = dir.write(
            "c.yaml",
            &format!("apis: [{{name: a, policies: {{inbound: [{policy}]}}}}]"),
        );
        let out = edgegw(&["catalog", "validate", cat.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{policy}");
        let line = err
            .lines()
            .find(|l| l.contains(says))
            .unwrap_or_else(|| panic!("{says:?} not in {err}"));
        assert!(
            line.contains("cache-") && line.contains("api \"a\""),
            "{line}"
        );
    }
    let cat = dir.write(
        "d.yaml",
        "apis: [{name: a, policies: {outbound: [{cache-store: {duration: 1h}}]}}]",
    );
    let out = edgegw(&["catalog", "validate", cat.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("write e.g. duration: 60"),
        "{out:?}"
    );

    // caching_type: external on a node without [redis]: refused at start.
    let origin = Origin::start();
    let cat = dir.write("catalog.yaml", SHARED_CATALOG);
    let tmp = TempDir::new("cache-nored");
    let log = refused_start(&tmp, &origin.apis(&["pets"]), &cat);
    let line = log
        .lines()
        .find(|l| l.contains("caching_type: external needs a Redis"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("add [redis] url"), "{line}");
}

/// APIM's own `cache-lookup` / `cache-store`, attribute and child names
/// as Microsoft documents them.
const XML_CACHE: &str = r#"<policies>
  <inbound>
    <base />
    <cache-lookup vary-by-developer="false" vary-by-developer-groups="false" caching-type="internal" downstream-caching-type="public" must-revalidate="false">
      <vary-by-header>Accept</vary-by-header>
      <vary-by-query-parameter>page</vary-by-query-parameter>
    </cache-lookup>
  </inbound>
  <outbound>
    <base />
    <cache-store duration="60" />
  </outbound>
</policies>"#;

#[test]
fn apim_cache_lookup_and_cache_store_documents_answer_from_the_cache() {
    let origin = Origin::start();
    let doc: String = XML_CACHE.lines().map(|l| format!("      {l}\n")).collect();
    let catalog =
        format!("apis:\n  - name: xml\n    subscription_required: false\n    policies: |\n{doc}");
    let gw = ApimGateway::start("cache-xml", &origin.apis(&["xml"]), &catalog);
    let first = fetch(&[&gw.url("/xml/a?page=1")]);
    assert_eq!(
        (first.status, x_cache(&first)),
        (200, "MISS"),
        "{}",
        first.body
    );
    // A hit: the same serial, public with the entry's remaining time.
    let again = fetch(&[&gw.url("/xml/a?page=1&utm=x")]);
    assert_eq!((x_cache(&again), serial(&again)), ("HIT", serial(&first)));
    let cc = again.header("cache-control").unwrap();
    assert!(
        cc.starts_with("public, max-age=") && !cc.contains("must-revalidate"),
        "{cc}"
    );
    // vary-by-query-parameter and vary-by-header are part of the key.
    assert_eq!(x_cache(&fetch(&[&gw.url("/xml/a?page=2")])), "MISS");
    let json = fetch(&["-H", "Accept: application/json", &gw.url("/xml/a?page=1")]);
    assert_eq!(x_cache(&json), "MISS");
    assert_eq!(origin.hits(), 3);
}
