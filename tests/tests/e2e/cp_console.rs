//! The web console (/ui) and developer portal (/portal) in headless
//! Chromium, against the real `edgegw-cp` and a real `edgegw`: an
//! operator signs in with an admin token, imports an OpenAPI document from
//! the page, creates a product and a subscription, sees the gateway turn
//! healthy and the request count move after traffic; a consumer signs up
//! in the portal, subscribes, calls the API through the gateway with the
//! key the page showed and tries it from the docs; another consumer sees
//! none of it; a script in an OpenAPI description shows as text. Bad
//! input (a wrong token, a malformed or oversized document, a forged CSRF
//! token, an expired session, repeated failed sign-ins) gets a clear
//! message and changes nothing. The portal's API is also checked with
//! curl on both stores. Screenshots: `target/console-e2e/`.

use std::time::{Duration, Instant};

use edgegw_tests::{
    backends::TestBackend,
    browser::{Chromium, Page},
    cp::{ControlPlane, Store},
    gateway::curl,
    managed::{ManagedNode, register},
    process::TempDir,
};
use serde_json::{Value, json};

/// An OpenAPI document whose description carries markup that must stay
/// text.
const PETS: &str = r#"openapi: 3.0.3
info:
  title: Pet store
  version: "1.0"
  description: "Pets for everyone. <script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
paths:
  /pets/{id}:
    get:
      operationId: get-pet
      summary: One pet
      description: Returns the pet with this id.
"#;

/// Waits (up to `secs`) for `f` to answer Some.
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A GET through the gateway with subscription key `key`: status, body.
fn call(node: &ManagedNode, path: &str, key: &str) -> (u16, String) {
    curl(&[
        "-H",
        &format!("Ocp-Apim-Subscription-Key: {key}"),
        &format!("http://127.0.0.1:{}{path}", node.port),
    ])
}

fn sign_in_operator(page: &Page, cp: &ControlPlane) {
    page.goto(&format!("{}/ui/", cp.url()));
    page.fill("input[name=token]", &cp.admin_token);
    page.click("form[data-testid=signin] button[type=submit]");
    page.wait_text("nav", "Sign out");
}

fn sign_up_consumer(page: &Page, cp: &ControlPlane, email: &str) {
    page.goto(&format!("{}/portal/", cp.url()));
    page.fill("input[name=email]", email);
    page.fill("input[name=password]", "a long enough password");
    page.click("button[name=signup]");
    page.wait_text("[data-testid=who]", email);
}

/// A fetch from the page (its cookies, its origin): `{status, body}`.
fn fetch(page: &Page, method: &str, path: &str, csrf: Option<&str>) -> Value {
    let headers = match csrf {
        Some(t) => json!({"X-CSRF-Token": t, "Content-Type": "application/json"}),
        None => json!({"Content-Type": "application/json"}),
    };
    let body = if method == "GET" {
        "undefined"
    } else {
        "'{\"name\": \"forged\", \"apis\": []}'"
    };
    page.js(&format!(
        "fetch({path}, {{method: {method}, headers: {headers}, body: {body}}}).then(async r => ({{status: r.status, body: await r.text()}}))",
        path = serde_json::to_string(path).unwrap(),
        method = serde_json::to_string(method).unwrap(),
    ))
}

#[test]
fn operator_and_consumers_in_a_real_browser() {
    let tmp = TempDir::new("console");
    let mut cp = ControlPlane::start(&tmp.0);
    let backend = TestBackend::echo();
    let browser = Chromium::start();

    // The operator signs in and imports a document from the page.
    let ops = browser.page();
    sign_in_operator(&ops, &cp);
    let doc = tmp.write("pets.yaml", PETS);
    ops.fill("form[data-testid=import] input[name=name]", "pets");
    ops.fill("form[data-testid=import] input[name=path]", "/petstore");
    ops.fill(
        "form[data-testid=import] input[name=backend]",
        &format!("http://{}", backend.addr),
    );
    ops.tab
        .wait_for_element("form[data-testid=import] input[name=file]")
        .unwrap()
        .set_input_files(&[doc.to_str().unwrap()])
        .unwrap();
    ops.click("form[data-testid=import] button[type=submit]");
    ops.wait_text("[data-testid=ok]", "imported pets");
    ops.wait_text("[data-testid=apis]", "/petstore");
    ops.screenshot("ui-apis");
    // Its docs: the description's markup is text, and never ran.
    ops.click_text("[data-testid=apis] a", "pets");
    let docs = ops.wait_text("[data-testid=docs]", "Returns the pet with this id.");
    assert!(docs.contains("Pet store"), "{docs}");
    assert!(
        docs.contains("<script>window.__pwned = 1</script><img src=x onerror="),
        "{docs}"
    );
    assert_eq!(ops.js("window.__pwned === undefined"), json!(true));
    assert_eq!(
        ops.js(
            "document.querySelectorAll('[data-testid=docs] script, [data-testid=docs] img').length"
        ),
        json!(0)
    );
    ops.wait_text("[data-testid=operations]", "get-pet");
    ops.screenshot("ui-api-docs");

    // A product, published in the portal, and a subscription to it.
    ops.click_text("nav a", "Products");
    ops.fill("form[data-testid=new-product] input[name=name]", "petstore");
    ops.fill("form[data-testid=new-product] input[name=apis]", "pets");
    ops.click("form[data-testid=new-product] button[type=submit]");
    ops.wait_text("[data-testid=products]", "published");
    ops.screenshot("ui-products");
    ops.click_text("nav a", "Subscriptions");
    ops.fill(
        "form[data-testid=new-subscription] input[name=id]",
        "ops-sub",
    );
    ops.fill(
        "form[data-testid=new-subscription] input[name=scope]",
        "product:petstore",
    );
    ops.click("form[data-testid=new-subscription] button[type=submit]");
    let ops_key = ops.text("[data-testid=key]");
    assert_eq!(ops_key.len(), 48, "{ops_key}");
    ops.wait_text("[data-testid=subscriptions]", "ops-sub");
    ops.screenshot("ui-subscriptions");
    // The page made them through the same API scripts use.
    let (_, sub) = cp.admin("GET", "/v1/subscriptions/ops-sub", None);
    assert_eq!(sub["scope"], "product:petstore", "{sub}");

    // A gateway serving the API; the portal offers it for trying.
    let token = register(&cp, "edge-1", &["pets"], None);
    let mut node = ManagedNode::of("consolegw", &cp, &token, "[analytics]\nperiod_secs = 2\n");
    cp.restart_with(&[
        "--portal-gateway",
        &format!("http://127.0.0.1:{}", node.port),
    ]);
    node.start();
    ops.click_text("nav a", "Fleet");
    ops.wait("the gateway healthy on the fleet page", || {
        ops.click_text("button", "Refresh");
        std::thread::sleep(Duration::from_millis(300));
        let text = ops.js("document.querySelector('[data-testid=health-edge-1]')?.innerText");
        (text == json!("healthy")).then_some(())
    });
    let fleet = ops.text("[data-testid=fleet]");
    assert!(!fleet.contains("(behind)"), "{fleet}");
    ops.screenshot("ui-fleet");

    // Traffic with the key the page showed; the analytics page counts it.
    eventually(20, "the key to work on the gateway", || {
        (call(&node, "/petstore/pets/1", &ops_key).0 == 200).then_some(())
    });
    for i in 0..20 {
        assert_eq!(call(&node, &format!("/petstore/pets/{i}"), &ops_key).0, 200);
    }
    let url = format!("{}/ui/#/analytics", cp.url());
    let counted = eventually(40, "requests on the analytics page", || {
        ops.goto(&url);
        let text = ops.wait_text("[data-testid=total-requests]", "requests");
        let n: u64 = text.split_whitespace().next()?.parse().ok()?;
        (n >= 20).then_some(n)
    });
    assert!(counted >= 20);
    ops.tab
        .wait_for_element("[data-testid=chart-requests] canvas")
        .unwrap();
    ops.screenshot("ui-analytics");

    // A consumer signs up, subscribes, and calls the API with the key
    // the page showed.
    let alice = browser.page();
    sign_up_consumer(&alice, &cp, "alice@example.com");
    alice.wait_text("[data-testid=product-petstore]", "Pet store");
    alice.screenshot("portal-products");
    alice.click_text("[data-testid=product-petstore] button", "Subscribe");
    let alice_key = alice.text("[data-testid=key]");
    assert_eq!(alice_key.len(), 48, "{alice_key}");
    eventually(20, "alice's key to work on the gateway", || {
        (call(&node, "/petstore/pets/7", &alice_key).0 == 200).then_some(())
    });
    for i in 0..5 {
        assert_eq!(
            call(&node, &format!("/petstore/pets/{i}"), &alice_key).0,
            200
        );
    }
    // The try-it form, from the docs page, through the gateway.
    alice.click_text("[data-testid=product-petstore] a", "Pet store");
    alice.wait_text("[data-testid=docs]", "Returns the pet with this id.");
    assert_eq!(alice.js("window.__pwned === undefined"), json!(true));
    alice.click_text("button", "Try it");
    alice.fill(".tryit input[name=path]", "/petstore/pets/5");
    alice.fill(".tryit input[name=key]", &alice_key);
    alice.click(".tryit button[type=submit]");
    let answer = alice.wait_text("[data-testid=try-answer]", "200");
    assert!(answer.contains("/pets/5"), "{answer}");
    alice.screenshot("portal-try-it");
    alice.click_text("nav a", "My subscriptions");
    let mine = alice.wait_text("[data-testid=my-subscriptions]", "petstore");
    let alice_sub = mine
        .split_whitespace()
        .find(|w| w.starts_with("portal-"))
        .unwrap()
        .to_string();
    alice.screenshot("portal-subscriptions");
    let usage_url = format!("{}/portal/#/usage", cp.url());
    eventually(40, "alice's requests on her usage page", || {
        alice.goto(&usage_url);
        let text = alice.wait_text("[data-testid=usage-total]", "requests");
        let n: u64 = text.split_whitespace().next()?.parse().ok()?;
        // Her own 5 and the try-it, at least; never the operator's 20.
        assert!(n < 20, "alice sees others' requests: {text}");
        (n >= 5).then_some(())
    });
    alice.screenshot("portal-usage");

    // Another consumer sees none of it and cannot touch it.
    let bob = browser.page();
    sign_up_consumer(&bob, &cp, "bob@example.com");
    bob.click_text("nav a", "My subscriptions");
    bob.wait_text("[data-testid=my-subscriptions]", "none yet");
    bob.screenshot("portal-other-consumer");
    let csrf = bob.js("fetch('/v1/session').then(r => r.json()).then(s => s.csrf)");
    let csrf = csrf.as_str().unwrap();
    let stolen = fetch(
        &bob,
        "POST",
        &format!("/v1/portal/subscriptions/{alice_sub}/regenerate?key=primary"),
        Some(csrf),
    );
    assert_eq!(stolen["status"], 404, "{stolen}");
    let admin = fetch(&bob, "GET", "/v1/subscriptions", None);
    assert_eq!(admin["status"], 403, "{admin}");
    let usage = bob.js("fetch('/v1/portal/usage').then(r => r.json()).then(u => u.rows.length)");
    assert_eq!(usage, json!(0));
    assert_eq!(
        call(&node, "/petstore/pets/1", &alice_key).0,
        200,
        "alice's key still works"
    );

    // The operator sees both accounts.
    ops.goto(&format!("{}/ui/#/consumers", cp.url()));
    let consumers = ops.wait_text("[data-testid=consumers]", "bob@example.com");
    assert!(consumers.contains("alice@example.com"), "{consumers}");
    assert!(consumers.contains(&alice_sub), "{consumers}");
    ops.screenshot("ui-consumers");
    for (page, name) in [
        ("named-values", "ui-named-values"),
        ("backends", "ui-backends"),
        ("dos-profiles", "ui-dos-profiles"),
    ] {
        ops.goto(&format!("{}/ui/#/{page}", cp.url()));
        ops.wait_text("main", "New");
        ops.screenshot(name);
    }
    // Nothing the pages loaded came from another origin.
    for page in [&ops, &alice] {
        assert_eq!(
            page.js("performance.getEntriesByType('resource').every(e => e.name.startsWith(location.origin))"),
            json!(true)
        );
    }
    node.stop();
}

#[test]
fn bad_input_gets_a_clear_message_and_changes_nothing() {
    let tmp = TempDir::new("consolebad");
    let cp = ControlPlane::start(&tmp.0);
    let browser = Chromium::start();
    let page = browser.page();

    // A wrong token.
    page.goto(&format!("{}/ui/", cp.url()));
    page.fill("input[name=token]", "egwa_not-a-token");
    page.click("form[data-testid=signin] button[type=submit]");
    page.wait_text("[data-testid=error]", "admin token not recognised");
    page.screenshot("ui-wrong-token");
    sign_in_operator(&page, &cp);

    // A malformed document and an oversized one.
    let bad = tmp.write("bad.yaml", "openapi: 3.0.0\npaths: [unclosed\n");
    let big = tmp.0.join("big.json");
    std::fs::write(&big, vec![b' '; 17 << 20]).unwrap();
    for (file, want) in [
        (&bad, "OpenAPI document"),
        (&big, "the import takes documents of at most"),
    ] {
        page.fill("form[data-testid=import] input[name=name]", "bad");
        page.fill("form[data-testid=import] input[name=path]", "/bad");
        page.fill(
            "form[data-testid=import] input[name=backend]",
            "http://127.0.0.1:9",
        );
        page.tab
            .wait_for_element("form[data-testid=import] input[name=file]")
            .unwrap()
            .set_input_files(&[file.to_str().unwrap()])
            .unwrap();
        page.click("form[data-testid=import] button[type=submit]");
        page.wait_text("[data-testid=error]", want);
    }
    page.screenshot("ui-bad-document");
    assert_eq!(cp.admin("GET", "/v1/apis", None).1, json!([]));

    // Writes without the session's CSRF token.
    for csrf in [None, Some("forged")] {
        let answer = fetch(&page, "POST", "/v1/products", csrf);
        assert_eq!(answer["status"], 403, "{answer}");
        assert!(
            answer["body"].as_str().unwrap().contains("CSRF token"),
            "{answer}"
        );
    }
    assert_eq!(cp.admin("GET", "/v1/products", None).1, json!([]));

    // A session expires (on a control plane whose sessions last 3 s): the
    // next page says so and shows the sign-in; a write is refused.
    let short_dir = TempDir::new("consoleshort");
    let short = ControlPlane::start_with(&short_dir.0, &["--session-ttl", "3s"]);
    let brief = browser.page();
    sign_in_operator(&brief, &short);
    let signed_in = Instant::now();
    std::thread::sleep(Duration::from_secs(4).saturating_sub(signed_in.elapsed()));
    brief.click_text("nav a", "Products");
    brief.wait_text("[data-testid=error]", "session expired at");
    brief.tab.wait_for_element("input[name=token]").unwrap();
    brief.screenshot("ui-session-expired");
    let answer = fetch(&brief, "POST", "/v1/products", Some("whatever"));
    assert_eq!(answer["status"], 401, "{answer}");
    assert!(
        answer["body"].as_str().unwrap().contains("session expired"),
        "{answer}"
    );
    assert_eq!(short.admin("GET", "/v1/products", None).1, json!([]));

    // Failed sign-ins are limited: after five, even the right token waits.
    // (On the control plane with short sessions, which has seen no failed
    // sign-in: the 60 s window of this page's wrong token may have passed.)
    for _ in 0..5 {
        let status = brief.js(
            "fetch('/v1/session', {method: 'POST', body: JSON.stringify({token: 'egwa_still-wrong'})}).then(r => r.status)",
        );
        assert_eq!(status, json!(401));
    }
    brief.fill("input[name=token]", &short.admin_token);
    brief.click("form[data-testid=signin] button[type=submit]");
    brief.wait_text("[data-testid=error]", "too many failed sign-ins");
    brief.screenshot("ui-rate-limited");

    // Security headers on pages and API answers alike.
    for path in ["/ui/", "/portal/", "/v1/session", "/assets/none.js"] {
        let answer = cp.request("GET", path, None, &[], None);
        let csp = answer.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }

    // Text is sent gzip-compressed to clients that take it (chromium ran
    // every page above that way), and as it is to those that do not.
    for (accept, encoding) in [
        ("Accept-Encoding: gzip, deflate, br", Some("gzip")),
        ("Accept-Encoding: gzip;q=0, br", None),
        ("Accept-Encoding: identity", None),
    ] {
        let answer = cp.request("GET", "/ui/", None, &[accept], None);
        assert_eq!(answer.status, 200, "{accept}");
        assert_eq!(answer.header("content-encoding"), encoding, "{accept}");
        assert_eq!(answer.header("vary"), Some("accept-encoding"), "{accept}");
        if encoding.is_none() {
            assert!(answer.body.contains("<script"), "{accept}: {}", answer.body);
        }
    }
}

edgegw_tests::on_both_stores!(portal_api_keeps_each_consumer_to_their_own);

/// The portal's routes over curl, on SQLite and PostgreSQL: accounts,
/// sessions, publishing with approval, subscriptions of one's own only.
fn portal_api_keeps_each_consumer_to_their_own(store: Store) {
    let tmp = TempDir::new("portalapi");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let ok = |method: &str, path: &str, body: Value| {
        let (status, answer) = cp.admin(method, path, Some(&body));
        assert!(
            status == 200 || status == 201,
            "{method} {path}: {status} {answer}"
        );
        answer
    };
    ok(
        "PUT",
        "/v1/apis/hello",
        json!({"name": "hello", "path": "/hello", "backend": "http://127.0.0.1:9"}),
    );
    ok(
        "POST",
        "/v1/products",
        json!({"name": "gold", "apis": ["hello"]}),
    );
    ok(
        "POST",
        "/v1/products",
        json!({"name": "hidden", "apis": ["hello"]}),
    );
    ok(
        "PUT",
        "/v1/published-products/gold",
        json!({"approval_required": true}),
    );

    // A consumer's session: the cookie and the CSRF token.
    let account = |email: &str, route: &str| -> (String, String, u16) {
        let answer = cp.request(
            "POST",
            &format!("/v1/portal/{route}"),
            None,
            &[],
            Some(
                json!({"email": email, "password": "0123456789ab"})
                    .to_string()
                    .as_bytes(),
            ),
        );
        let cookie = answer
            .header("set-cookie")
            .map(|c| c.split(';').next().unwrap().to_string())
            .unwrap_or_default();
        let csrf = serde_json::from_str::<Value>(&answer.body)
            .ok()
            .and_then(|v| v["csrf"].as_str().map(String::from))
            .unwrap_or_default();
        (cookie, csrf, answer.status)
    };
    let (carol, carol_csrf, status) = account("carol@example.com", "signup");
    assert_eq!(status, 201);
    assert_eq!(account("carol@example.com", "signup").2, 409);
    assert_eq!(account("carol@example.com", "signin").2, 201);
    let (dave, dave_csrf, _) = account("dave@example.com", "signup");
    let as_ = |cookie: &str, csrf: &str, method: &str, path: &str, body: Option<Value>| {
        let cookie = format!("Cookie: {cookie}");
        let csrf = format!("X-CSRF-Token: {csrf}");
        let text = body.map(|b| b.to_string());
        let answer = cp.request(
            method,
            path,
            None,
            &[&cookie, &csrf],
            text.as_deref().map(str::as_bytes),
        );
        let value = serde_json::from_str::<Value>(&answer.body).unwrap_or(Value::Null);
        (answer.status, value)
    };

    // Only published products show; subscribing needs approval here.
    let (_, products) = as_(&carol, &carol_csrf, "GET", "/v1/portal/products", None);
    assert_eq!(products.as_array().unwrap().len(), 1, "{products}");
    assert_eq!(products[0]["name"], "gold");
    let (status, hidden) = as_(
        &carol,
        &carol_csrf,
        "POST",
        "/v1/portal/subscriptions",
        Some(json!({"product": "hidden"})),
    );
    assert_eq!(status, 404, "{hidden}");
    let (status, sub) = as_(
        &carol,
        &carol_csrf,
        "POST",
        "/v1/portal/subscriptions",
        Some(json!({"product": "gold"})),
    );
    assert_eq!(status, 201, "{sub}");
    assert_eq!(sub["state"], "suspended", "{sub}");
    assert_eq!(sub["pending"], true, "{sub}");
    let id = sub["id"].as_str().unwrap().to_string();
    assert_eq!(sub["primary_key"].as_str().unwrap().len(), 48);
    let (_, listed) = cp.admin("GET", &format!("/v1/subscriptions/{id}"), None);
    assert_eq!(listed["state"], "suspended", "{listed}");
    assert!(
        listed.get("primary_key").is_none(),
        "keys are shown once: {listed}"
    );

    // The operator approves it.
    ok(
        "POST",
        &format!("/v1/consumer-subscriptions/{id}/approve"),
        json!({}),
    );
    let (_, mine) = as_(&carol, &carol_csrf, "GET", "/v1/portal/subscriptions", None);
    assert_eq!(mine[0]["state"], "active", "{mine}");
    assert_eq!(mine[0]["pending"], false, "{mine}");

    // Dave sees none of it and cannot regenerate Carol's key.
    let (_, theirs) = as_(&dave, &dave_csrf, "GET", "/v1/portal/subscriptions", None);
    assert_eq!(theirs, json!([]));
    let (status, _) = as_(
        &dave,
        &dave_csrf,
        "POST",
        &format!("/v1/portal/subscriptions/{id}/regenerate?key=primary"),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = as_(&dave, &dave_csrf, "GET", "/v1/subscriptions", None);
    assert_eq!(status, 403);
    // Without the CSRF token, even her own write is refused.
    let (status, _) = as_(
        &carol,
        "",
        "POST",
        &format!("/v1/portal/subscriptions/{id}/regenerate?key=primary"),
        None,
    );
    assert_eq!(status, 403);
    let (status, fresh) = as_(
        &carol,
        &carol_csrf,
        "POST",
        &format!("/v1/portal/subscriptions/{id}/regenerate?key=secondary"),
        None,
    );
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh["secondary_key"].as_str().unwrap().len(), 48);
    // A wrong password is one message, whether or not the account exists.
    assert_eq!(
        cp.request(
            "POST",
            "/v1/portal/signin",
            None,
            &[],
            Some(br#"{"email": "carol@example.com", "password": "wrong password"}"#)
        )
        .status,
        401
    );

    // Deleting a consumer deletes their subscriptions and sessions.
    let (status, _) = cp.admin("DELETE", "/v1/consumers/carol@example.com", None);
    assert_eq!(status, 204);
    assert_eq!(
        cp.admin("GET", &format!("/v1/subscriptions/{id}"), None).0,
        404
    );
    let (status, _) = as_(&carol, &carol_csrf, "GET", "/v1/portal/subscriptions", None);
    assert_eq!(status, 401);
    let (_, consumers) = cp.admin("GET", "/v1/consumers", None);
    assert_eq!(consumers.as_array().unwrap().len(), 1, "{consumers}");
}
