//! set-method, set-body (literal, expression, Liquid), return-response with
//! bodies and headers made per request, find-and-replace,
//! authentication-basic and trace, written as Microsoft's policy
//! reference documents them, run by a real gateway against a real echo
//! backend that answers with what it received; the YAML forms too.

use edgegw_tests::{
    apim::{ApimGateway, block, fetch},
    backends::TestBackend,
};

fn apis(backend: &TestBackend) -> String {
    format!(
        "[[apis]]\nname = \"shop\"\npath = \"/shop\"\nbackend = \"http://{}\"\n\
         [[apis.operations]]\nname = \"any\"\nmethod = \"*\"\nurl = \"/*\"\n",
        backend.addr
    )
}

const API: &str = r#"<policies>
  <inbound>
    <base />
    <trace source="shop-api" severity="information">
      <message>@("inbound " + context.Request.Method)</message>
      <metadata name="case" value="{{tier}}" />
    </trace>
    <choose>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-case", "") == "method")'>
        <set-method>PUT</set-method>
        <authentication-basic username="{{user}}" password="{{password}}" />
      </when>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-case", "") == "literal")'>
        <set-body>replaced by edgegw</set-body>
      </when>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-case", "") == "expr")'>
        <set-body>@(context.Request.Body.As&lt;string&gt;(preserveContent: true).ToUpper())</set-body>
      </when>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-case", "") == "liquid")'>
        <set-body template="liquid">{"name": "{{body.name}}", "tier": "{{context.Request.Headers["X-Tier"]}}", "q": "{{context.Request.Url.Query.q}}", "region": "{{tier}}"}</set-body>
      </when>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-case", "") == "replace")'>
        <find-and-replace from="sad" to="happy" />
      </when>
    </choose>
  </inbound>
  <outbound>
    <base />
    <choose>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-out", "") == "replace")'>
        <find-and-replace from="body_bytes" to="size_of_body" />
      </when>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-out", "") == "liquid")'>
        <set-body template="liquid">status={{context.Response.StatusCode}} method={{body.method}}</set-body>
      </when>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-out", "") == "literal")'>
        <set-body>short</set-body>
      </when>
    </choose>
    <trace source="shop-api">
      <message>outbound</message>
    </trace>
  </outbound>
</policies>"#;

fn catalog() -> String {
    format!(
        "named_values:\n  - {{name: user, value: Aladdin}}\n  - {{name: password, value: open sesame, secret: true}}\n  - {{name: tier, value: gold}}\n\
         apis:\n  - name: shop\n    subscription_required: false\n    policies: |\n{}",
        block(API, 6),
    )
}

#[test]
fn body_method_basic_auth_and_trace_policies_from_xml() {
    let backend = TestBackend::echo();
    let gw = ApimGateway::start("apimbody", &apis(&backend), &catalog());
    let url = gw.url("/shop/items?q=7");
    let case = |c: &str| format!("x-case: {c}");

    // set-method and authentication-basic (named values, a secret one).
    let r = fetch(&["-H", &case("method"), &url]);
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.json();
    assert_eq!(echo["method"], "PUT", "{echo}");
    assert_eq!(
        echo["headers"]["authorization"],
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );

    // set-body: a literal, with the length the backend is told.
    let r = fetch(&["-H", &case("literal"), "--data-binary", "original", &url]);
    let echo = r.json();
    assert_eq!(echo["body"], "replaced by edgegw", "{echo}");
    assert_eq!(echo["headers"]["content-length"], "18");
    // ... on a request without a body too.
    let r = fetch(&["-H", &case("literal"), &url]);
    assert_eq!(r.json()["body"], "replaced by edgegw");

    // An expression reading the body.
    let r = fetch(&["-H", &case("expr"), "--data-binary", "make me loud", &url]);
    let echo = r.json();
    assert_eq!(echo["body"], "MAKE ME LOUD", "{echo}");
    assert_eq!(echo["headers"]["content-length"], "12");

    // A Liquid template over the JSON body, the headers and the query.
    let r = fetch(&[
        "-H",
        &case("liquid"),
        "-H",
        "X-Tier: silver",
        "-H",
        "content-type: application/json",
        "--data-binary",
        r#"{"name": "ada"}"#,
        &url,
    ]);
    let echo = r.json();
    let sent: serde_json::Value = serde_json::from_str(echo["body"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {echo}"));
    assert_eq!(
        sent,
        serde_json::json!({"name": "ada", "tier": "silver", "q": "7", "region": "gold"})
    );

    // find-and-replace on the request body; without a match it is kept.
    let r = fetch(&["-H", &case("replace"), "--data-binary", "sad, so sad", &url]);
    assert_eq!(r.json()["body"], "happy, so happy");
    let r = fetch(&["-H", &case("replace"), "--data-binary", "glad", &url]);
    assert_eq!(r.json()["body"], "glad");

    // Outbound: find-and-replace and Liquid on the backend's body, with
    // the length the client is told.
    let r = fetch(&["-H", "x-out: replace", &url]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"size_of_body\":0"), "{}", r.body);
    assert_eq!(
        r.header("content-length")
            .map(|l| l.parse::<usize>().unwrap()),
        Some(r.body.len())
    );
    let r = fetch(&["-H", "x-out: liquid", "-X", "DELETE", &url]);
    assert_eq!(r.body, "status=200 method=DELETE");
    let r = fetch(&["-H", "x-out: literal", &url]);
    assert_eq!(
        (r.body.as_str(), r.header("content-length")),
        ("short", Some("5"))
    );

    // trace: inbound's and outbound's events in the access log line.
    let lines = gw.gw.wait_access_log(10);
    let traced = &lines[0]["edgegw.trace"];
    assert_eq!(traced[0]["source"], "shop-api", "{traced}");
    assert_eq!(traced[0]["severity"], "information");
    assert_eq!(traced[0]["message"], "inbound GET");
    assert_eq!(traced[0]["metadata"]["case"], "gold");
    assert_eq!(traced[1]["message"], "outbound");
    assert_eq!(traced[1]["severity"], "verbose");
    let text = std::fs::read_to_string(&gw.gw.access_log).unwrap();
    assert!(
        !text.contains("open sesame") && !text.contains("QWxhZGRp"),
        "{text}"
    );
    assert_eq!(lines.len(), 10);
    assert_eq!(backend.hits(), 10);
}

#[test]
fn yaml_forms_and_a_bad_template() {
    let backend = TestBackend::echo();
    let catalog = "apis:\n  - name: shop\n    subscription_required: false\n    policies:\n      inbound:\n\
        \x20       - set-method: {method: PATCH}\n\
        \x20       - find-and-replace: {from: a, to: b}\n\
        \x20       - set-body: {template: liquid, value: '[{{body}}] {{context.Request.Method}}'}\n\
        \x20       - authentication-basic: {username: u, password: p}\n\
        \x20       - trace: {source: yaml, message: hi}\n";
    let gw = ApimGateway::start("apimbodyyaml", &apis(&backend), catalog);
    let r = fetch(&["--data-binary", "\"aaa\"", &gw.url("/shop/x")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.json();
    assert_eq!(echo["method"], "PATCH", "{echo}");
    // Expressions after set-method read the new method, as in APIM.
    assert_eq!(echo["body"], "[bbb] PATCH", "{echo}");
    assert_eq!(echo["headers"]["authorization"], "Basic dTpw");

    // A template that does not parse is refused at load, on one line.
    let bad = "apis:\n  - name: shop\n    policies: |\n      <policies><inbound><set-body template=\"liquid\">{% if body.x %}open</set-body></inbound></policies>\n";
    let tmp = edgegw_tests::process::TempDir::new("apimbodybad");
    let cat = tmp.write("catalog.yaml", bad);
    let cfg = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n{}\n[catalog]\nfile = \"catalog.yaml\"\n",
            edgegw_tests::process::free_port(),
            apis(&backend)
        ),
    );
    let out = edgegw_tests::process::edgegw(&[
        "catalog",
        "validate",
        cat.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("<set-body>") && l.contains("Liquid template:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("api \"shop\": policy XML line 1"), "{line}");
}

/// `validate-jwt output-token-variable-name`: the validated token is a
/// `Jwt` in `context.Variables`, read by a later expression; a token that
/// fails validation never reaches it.
#[test]
fn validated_token_is_a_variable_for_expressions() {
    use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
    let backend = TestBackend::echo();
    let policy = r#"<policies>
  <inbound>
    <validate-jwt header-name="Authorization" failed-validation-httpcode="401" output-token-variable-name="jwt">
      <issuer-signing-keys>
        <key>YW4taHMyNTYtc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmc=</key>
      </issuer-signing-keys>
    </validate-jwt>
    <set-header name="x-sub" exists-action="override">
      <value>@(((Jwt)context.Variables["jwt"]).Claims.GetValueOrDefault("sub", "none"))</value>
    </set-header>
    <set-header name="x-role" exists-action="override">
      <value>@(((Jwt)context.Variables["jwt"]).Claims.GetValueOrDefault("role", "none"))</value>
    </set-header>
  </inbound>
</policies>"#;
    let catalog = format!(
        "apis:\n  - name: shop\n    subscription_required: false\n    policies: |\n{}",
        block(policy, 6)
    );
    let gw = ApimGateway::start("apimjwtvar", &apis(&backend), &catalog);
    let sign = |secret: &[u8]| {
        let claims = serde_json::json!({"sub": "ada", "role": "admin", "exp": get_current_timestamp() + 300});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let good = format!(
        "Authorization: Bearer {}",
        sign(b"an-hs256-secret-of-32-bytes-long")
    );
    let r = fetch(&["-H", &good, &gw.url("/shop/me")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.json();
    assert_eq!(echo["headers"]["x-sub"], "ada", "{echo}");
    assert_eq!(echo["headers"]["x-role"], "admin", "{echo}");

    let bad = format!(
        "Authorization: Bearer {}",
        sign(b"another-secret-of-32-bytes-long!")
    );
    assert_eq!(fetch(&["-H", &bad, &gw.url("/shop/me")]).status, 401);
    assert_eq!(backend.hits(), 1);
}

/// `return-response` as APIM documents write it: header values and the
/// body made by expressions or a Liquid template from the request, and
/// in outbound from the backend's response; a failing expression is the
/// usual 500.
const RETURN: &str = r#"<policies>
  <inbound>
    <base />
    <choose>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-case", "") == "expr")'>
        <return-response>
          <set-status code="201" reason="Created" />
          <set-header name="Content-Type" exists-action="override">
            <value>application/json</value>
          </set-header>
          <set-header name="x-method" exists-action="override">
            <value>@(context.Request.Method.ToLower())</value>
          </set-header>
          <set-body>@(new JObject(
              new JProperty("path", context.Request.Url.Path),
              new JProperty("name", context.Request.Body.As<JObject>(preserveContent: true)["name"].ToString())
            ).ToString())</set-body>
        </return-response>
      </when>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-case", "") == "liquid")'>
        <return-response>
          <set-header name="Content-Type"><value>text/plain</value></set-header>
          <set-body template="liquid">hello {{body.name}} via {{context.Request.Method}}</set-body>
        </return-response>
      </when>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-case", "") == "fail")'>
        <return-response>
          <set-header name="x-bad"><value>@(context.Request.Headers["x-missing"].ToString())</value></set-header>
        </return-response>
      </when>
    </choose>
  </inbound>
  <outbound>
    <base />
    <choose>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-out", "") == "wrap")'>
        <return-response>
          <set-status code="202" reason="Accepted" />
          <set-header name="x-backend-status"><value>@(context.Response.StatusCode.ToString())</value></set-header>
          <set-body>@("backend said " + context.Response.StatusCode.ToString())</set-body>
        </return-response>
      </when>
    </choose>
  </outbound>
</policies>"#;

#[test]
fn return_response_makes_its_headers_and_body_per_request() {
    let backend = TestBackend::echo();
    let catalog = format!(
        "apis:\n  - name: shop\n    subscription_required: false\n    policies: |\n{}",
        block(RETURN, 6),
    );
    let gw = ApimGateway::start("apimreturn", &apis(&backend), &catalog);
    let url = gw.url("/shop/orders");

    let r = fetch(&[
        "-H",
        "x-case: expr",
        "--data-binary",
        r#"{"name": "ada"}"#,
        &url,
    ]);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-method"), Some("post"));
    assert_eq!(
        r.json(),
        // Url.Path: the path after the API's prefix, as the backend gets it.
        serde_json::json!({"path": "/orders", "name": "ada"})
    );

    let r = fetch(&[
        "-H",
        "x-case: liquid",
        "-X",
        "PUT",
        "--data-binary",
        r#"{"name": "bo"}"#,
        &url,
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.body, "hello bo via PUT");

    let r = fetch(&["-H", "x-case: fail", &url]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.header("x-bad").is_none());

    // Outbound: the backend's answer replaced by one made from it.
    let r = fetch(&["-H", "x-out: wrap", &url]);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.header("x-backend-status"), Some("200"));
    assert_eq!(r.body, "backend said 200");
    // Only the outbound call reached the backend.
    assert_eq!(backend.hits(), 1);
}

/// `context.Request.OriginalUrl` is the URL the client sent (the API's
/// prefix and the original query included) while `Url` is the one the
/// backend gets after `rewrite-uri` and `set-query-parameter`; `ToUri()`
/// reads it as a System.Uri, as real documents do.
#[test]
fn original_url_is_what_the_client_sent() {
    let backend = TestBackend::echo();
    let policy = r#"<policies>
  <inbound>
    <base />
    <rewrite-uri template="/v2/items" copy-unmatched-params="true" />
    <set-query-parameter name="added" exists-action="override"><value>1</value></set-query-parameter>
    <set-header name="x-original" exists-action="override">
      <value>@(context.Request.OriginalUrl.Path + context.Request.OriginalUrl.QueryString)</value>
    </set-header>
    <set-header name="x-url" exists-action="override">
      <value>@(context.Request.Url.Path + context.Request.Url.QueryString)</value>
    </set-header>
    <set-header name="x-original-host" exists-action="override">
      <value>@(context.Request.OriginalUrl.ToUri().Host + " " + context.Request.OriginalUrl.ToUri().AbsolutePath)</value>
    </set-header>
    <set-header name="x-original-q" exists-action="override">
      <value>@(context.Request.OriginalUrl.Query.GetValueOrDefault("q", "none") + "/" + context.Request.OriginalUrl.Query.GetValueOrDefault("added", "none"))</value>
    </set-header>
  </inbound>
</policies>"#;
    let catalog = format!(
        "apis:\n  - name: shop\n    subscription_required: false\n    policies: |\n{}",
        block(policy, 6),
    );
    let gw = ApimGateway::start("apimorig", &apis(&backend), &catalog);
    let r = fetch(&[
        "-H",
        "host: shop.example:8080",
        &gw.url("/shop/orders/7?q=a%20b"),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.json();
    let header = |name: &str| {
        seen["headers"][name]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("x-original"), "/shop/orders/7?q=a%20b");
    assert_eq!(header("x-url"), "/v2/items?q=a%20b&added=1");
    assert_eq!(header("x-original-host"), "shop.example /shop/orders/7");
    assert_eq!(header("x-original-q"), "a b/none");
}
