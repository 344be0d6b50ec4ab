//! The translator, table-driven: documents written from Microsoft's
//! policy reference, and what each becomes or why it is refused.

use super::*;
use crate::policy::{Step, set_header::Action};

fn named() -> NamedValues {
    let mut named = NamedValues::default();
    named.insert("calls", "7", false).unwrap();
    named.insert("tier", "gold", false).unwrap();
    named
}

fn parse(inbound: &str, section: &str) -> (ScopePolicies, Vec<String>) {
    let text = format!("<policies>\n<{section}>\n{inbound}\n</{section}>\n</policies>");
    let mut problems = Vec::new();
    let scope = parse_scope(&text, "api \"a\"", &named(), &mut problems);
    (scope, problems)
}

fn spec(scope: &ScopePolicies, section: Section, i: usize) -> &PolicySpec {
    match &scope.section(section).expect("section")[i] {
        Step::Policy(p) => &p.spec,
        Step::Base => panic!("base at {i}"),
    }
}

#[test]
fn every_documented_element_translates() {
    // (section, document, policy it becomes, check)
    type Check = fn(&PolicySpec) -> bool;
    let cases: &[(&str, &str, Check)] = &[
        (
            "inbound",
            r#"<rate-limit calls="{{calls}}" renewal-period="60" />"#,
            |s| matches!(s, PolicySpec::Limit(l) if l.calls == Some(7) && l.period.as_secs() == 60 && l.key.is_none()),
        ),
        (
            "inbound",
            r#"<rate-limit-by-key calls="5" renewal-period="30" counter-key='@(String.Concat(context.Subscription.Id, "-x"))' increment-count="1" />"#,
            |s| matches!(s, PolicySpec::Limit(l) if l.key_expression.is_some() && l.key.is_none()),
        ),
        (
            "inbound",
            r#"<rate-limit calls="3" renewal-period="60" retry-after-header-name="x-wait" retry-after-variable-name="wait" remaining-calls-header-name="x-left" remaining-calls-variable-name="left" total-calls-header-name="x-total" />"#,
            |s| matches!(s, PolicySpec::Limit(l) if l.state_names.retry_after_header.as_ref().is_some_and(|h| h == "x-wait") && l.state_names.retry_after_variable.as_deref() == Some("wait") && l.state_names.remaining_calls_header.as_ref().is_some_and(|h| h == "x-left") && l.state_names.remaining_calls_variable.as_deref() == Some("left") && l.state_names.total_calls_header.as_ref().is_some_and(|h| h == "x-total")),
        ),
        (
            "inbound",
            r#"<rate-limit-by-key calls="5" renewal-period="30" counter-key="k" remaining-calls-header-name="x-left" />"#,
            |s| matches!(s, PolicySpec::Limit(l) if l.state_names.remaining_calls_header.is_some()),
        ),
        (
            "inbound",
            r#"<rate-limit-by-key calls="5" renewal-period="30" counter-key="{literal}" />"#,
            |s| matches!(s, PolicySpec::Limit(l) if l.key.as_ref().is_some_and(|k| format!("{k:?}").contains("Text(\"{literal}\")"))),
        ),
        (
            "inbound",
            r#"<quota calls="100" bandwidth="40" renewal-period="3600" />"#,
            |s| matches!(s, PolicySpec::Limit(l) if l.bytes == Some(40 * 1024)),
        ),
        (
            "inbound",
            r#"<quota-by-key calls="10" renewal-period="60" counter-key="@(context.Request.IpAddress)" />"#,
            |s| matches!(s, PolicySpec::Limit(_)),
        ),
        (
            "inbound",
            r#"<set-variable name="tier" value='@(context.Request.Headers.GetValueOrDefault("x-tier", "basic"))' />"#,
            |s| matches!(s, PolicySpec::SetVariable(v) if v.name == "tier" && v.value.is_expression()),
        ),
        (
            "outbound",
            r#"<set-variable name="label" value="{{tier}}" />"#,
            |s| matches!(s, PolicySpec::SetVariable(v) if v.value == crate::policy::expr::Text::Literal("gold".into())),
        ),
        (
            "inbound",
            r#"<limit-concurrency key="all" max-count="3" />"#,
            |s| matches!(s, PolicySpec::LimitConcurrency(l) if l.max == 3),
        ),
        (
            "inbound",
            r#"<ip-filter action="allow"><address>10.0.0.1</address><address-range from="10.1.0.1" to="10.1.0.9" /></ip-filter>"#,
            |s| matches!(s, PolicySpec::IpFilter(f) if f.allow && f.ranges.len() == 2),
        ),
        (
            "inbound",
            r#"<check-header name="x-tier" failed-check-httpcode="403" failed-check-error-message="no" ignore-case="true"><value>{{tier}}</value><value>silver</value></check-header>"#,
            |s| matches!(s, PolicySpec::CheckHeader(c) if c.status == 403 && c.values == ["gold", "silver"] && c.ignore_case),
        ),
        (
            "inbound",
            r#"<validate-jwt header-name="Authorization" failed-validation-httpcode="401" failed-validation-error-message="Unauthorized" require-expiration-time="true" require-signed-tokens="true" clock-skew="5">
                 <issuer-signing-keys><key>c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0</key></issuer-signing-keys>
                 <audiences><audience>api://a</audience></audiences>
                 <issuers><issuer>https://issuer</issuer></issuers>
                 <required-claims><claim name="role" match="any"><value>admin</value><value>ops</value></claim></required-claims>
               </validate-jwt>"#,
            |s| matches!(s, PolicySpec::ValidateJwt(j) if j.inline.len() == 1 && j.claims.skew == 5 && j.claims.required[0].1.len() == 2),
        ),
        (
            "inbound",
            r#"<cors allow-credentials="false"><allowed-origins><origin>*</origin></allowed-origins><allowed-methods preflight-result-max-age="300"><method>GET</method></allowed-methods><allowed-headers><header>*</header></allowed-headers><expose-headers><header>x-a</header></expose-headers></cors>"#,
            |s| matches!(s, PolicySpec::Cors(c) if c.any_origin && c.max_age == Some(300) && c.expose == ["x-a"]),
        ),
        (
            "inbound",
            r#"<set-header name="x-sub" exists-action="override"><value>@(context.Subscription.Id)</value></set-header>"#,
            |s| matches!(s, PolicySpec::SetHeader(h) if h.expression.is_some() && h.action == Action::Override),
        ),
        (
            "outbound",
            r#"<set-header name="x-powered-by" exists-action="delete" />"#,
            |s| matches!(s, PolicySpec::SetHeader(h) if h.action == Action::Delete),
        ),
        (
            "inbound",
            r#"<set-query-parameter name="v" exists-action="append"><value>2</value></set-query-parameter>"#,
            |s| matches!(s, PolicySpec::SetQuery(q) if q.action == "append"),
        ),
        (
            "inbound",
            r#"<set-query-parameter name="tenant" exists-action="override"><value>@(context.Subscription.Id)</value></set-query-parameter>"#,
            |s| matches!(s, PolicySpec::SetQuery(q) if q.value.as_ref().is_some_and(|v| v.is_expression())),
        ),
        (
            "inbound",
            r#"<rewrite-uri template="/v2/{id}" copy-unmatched-params="false" />"#,
            |s| matches!(s, PolicySpec::RewriteUri(r) if r.path == "/v2/{id}" && !r.copy_query),
        ),
        (
            "inbound",
            r#"<rewrite-uri template='@("/v2/" + context.Request.MatchedParameters["id"])' />"#,
            |s| matches!(s, PolicySpec::RewriteUri(r) if r.expression.is_some() && r.copy_query),
        ),
        (
            "inbound",
            r#"<set-backend-service base-url="http://10.0.0.5:8080/api" />"#,
            |s| matches!(s, PolicySpec::SetBackend(_)),
        ),
        (
            "inbound",
            r#"<set-backend-service id="apim-generated-policy" backend-id="orders-v2" />"#,
            |s| matches!(s, PolicySpec::SetBackend(b) if matches!(&b.target, crate::policy::set_backend::Target::Named(n) if n == "orders-v2")),
        ),
        (
            "backend",
            r#"<forward-request />"#,
            |s| matches!(s, PolicySpec::ForwardRequest(f) if f.timeout.as_secs() == 300),
        ),
        (
            "backend",
            r#"<retry count="3" interval="1" max-interval="4"><forward-request timeout="10" /></retry>"#,
            |s| matches!(s, PolicySpec::Retry(r) if r.count == 3 && r.interval.as_millis() == 1000 && r.condition.is_none()),
        ),
        (
            "backend",
            r#"<retry condition="@(context.Response.StatusCode &gt;= 500)" count="2" interval="0" />"#,
            |s| matches!(s, PolicySpec::Retry(r) if r.condition.is_some()),
        ),
        (
            "backend",
            r#"<retry count="4" interval="1" delta="2" max-interval="20" first-fast-retry="true" />"#,
            |s| {
                matches!(s, PolicySpec::Retry(r) if r.first_fast_retry
                && r.waits == crate::policy::retry::Waits::Exponential { delta: std::time::Duration::from_secs(2) }
                && [1, 2, 3].map(|n| r.wait(n).as_secs()) == [0, 7, 15])
            },
        ),
        (
            "on-error",
            r#"<choose><when condition='@(context.LastError.Source == "rate-limit")'><set-header name="x-src" exists-action="override"><value>@(context.LastError.Reason)</value></set-header></when></choose>"#,
            |s| matches!(s, PolicySpec::Choose(c) if c.whens.len() == 1),
        ),
        (
            "inbound",
            r#"<mock-response status-code="201" content-type="application/json" />"#,
            |s| matches!(s, PolicySpec::Return(r) if r.status == 201),
        ),
        (
            "inbound",
            r#"<return-response><set-status code="418" reason="teapot" /><set-header name="Content-Type" exists-action="override"><value>text/plain</value></set-header><set-header name="x-a"><value>1</value></set-header><set-body>short and stout</set-body></return-response>"#,
            |s| matches!(s, PolicySpec::Return(r) if r.status == 418 && r.content_type == "text/plain" && r.body == "short and stout" && r.headers["x-a"] == "1"),
        ),
        (
            "inbound",
            r#"<rate-limit-by-key calls="2" renewal-period="60" counter-key="@(context.Request.IpAddress)" increment-condition="@(context.Response.StatusCode >= 200 &amp;&amp; context.Response.StatusCode &lt; 400)" />"#,
            |s| matches!(s, PolicySpec::Limit(l) if l.increment_condition.is_some()),
        ),
        (
            "inbound",
            r#"<quota-by-key calls="10" renewal-period="60" counter-key="k" increment-condition='@(context.Response.StatusCode == 200)' />"#,
            |s| matches!(s, PolicySpec::Limit(l) if l.increment_condition.is_some()),
        ),
        (
            "inbound",
            r#"<cache-lookup vary-by-developer="true" vary-by-developer-groups="false" downstream-caching-type="private" must-revalidate="false" caching-type="internal" allow-private-response-caching="true">
                 <vary-by-header>Accept</vary-by-header>
                 <vary-by-header>Accept-Charset</vary-by-header>
                 <vary-by-query-parameter>page;size</vary-by-query-parameter>
               </cache-lookup>"#,
            |s| matches!(s, PolicySpec::CacheLookup(c) if c.vary_by_developer && !c.must_revalidate && c.allow_private && c.vary_by_header.len() == 2 && c.vary_by_query == ["page", "size"]),
        ),
        (
            "outbound",
            r#"<cache-store duration="3600" cache-response="true" />"#,
            |s| matches!(s, PolicySpec::CacheStore(c) if c.duration.as_secs() == 3600 && c.cache_response),
        ),
        (
            "inbound",
            r#"<validate-client-certificate validate-revocation="false" validate-trust="true" validate-not-before="true" validate-not-after="true" ignore-error="false">
                 <identities>
                   <identity thumbprint="9F2CAB7E1D3C4B5A69788796A5B4C3D2E1F00112" />
                   <identity common-name="device-42" issuer-subject="CN=Partner CA" />
                 </identities>
               </validate-client-certificate>"#,
            |s| matches!(s, PolicySpec::ValidateClientCertificate(v) if !v.validate_revocation && v.identities.len() == 2 && v.identities[1].common_name.as_deref() == Some("device-42")),
        ),
        (
            "outbound",
            r#"<set-status code="202" reason="Accepted" />"#,
            |s| matches!(s, PolicySpec::SetStatus(s) if s.0 == 202),
        ),
        (
            "inbound",
            r#"<choose><when condition='@(context.Request.Headers.GetValueOrDefault("x-tier", "") == "gold")'><set-header name="x-gold" exists-action="override"><value>1</value></set-header></when><otherwise /></choose>"#,
            |s| matches!(s, PolicySpec::Choose(c) if c.whens.len() == 1 && c.otherwise.is_empty()),
        ),
    ];
    for (section, doc, check) in cases {
        let (scope, problems) = parse(doc, section);
        assert!(problems.is_empty(), "{doc}: {problems:#?}");
        let section = Section::ALL
            .into_iter()
            .find(|s| s.name() == *section)
            .unwrap();
        assert!(
            check(spec(&scope, section, 0)),
            "{doc}: {:?}",
            spec(&scope, section, 0)
        );
    }
}

#[test]
fn retry_keeps_the_forward_request_it_wraps() {
    let (scope, problems) = parse(
        r#"<retry count="2"><forward-request timeout="9" /></retry>"#,
        "backend",
    );
    assert!(problems.is_empty(), "{problems:#?}");
    let steps = scope.section(Section::Backend).unwrap();
    assert_eq!(steps.len(), 2);
    assert!(
        matches!(spec(&scope, Section::Backend, 1), PolicySpec::ForwardRequest(f) if f.timeout.as_secs() == 9)
    );
}

#[test]
fn base_and_sections() {
    let text = "<policies><inbound><base /><rate-limit calls=\"1\" renewal-period=\"1\" /></inbound><backend><base /></backend><outbound /><on-error><base /></on-error></policies>";
    let mut problems = Vec::new();
    let scope = parse_scope(text, "global policies", &named(), &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(matches!(
        scope.section(Section::Inbound).unwrap()[0],
        Step::Base
    ));
    assert!(scope.section(Section::Outbound).unwrap().is_empty());
    let Step::Policy(p) = &scope.section(Section::Inbound).unwrap()[1] else {
        panic!()
    };
    assert_eq!(p.place, "global policies/inbound/1");
}

#[test]
fn every_problem_is_one_line_with_its_place() {
    // (document, the start of the one expected problem)
    let cases: &[(&str, &str)] = &[
        (
            "<policies><inbound><rate-limit calls=\"1\" renewal-period=\"1\"></inbound></policies>",
            "api \"a\": policy XML line 1, column 61: malformed XML: expected 'rate-limit' tag",
        ),
        (
            "<policy />",
            "api \"a\": policy XML line 1, column 1: <policy>: the document's root is <policy>",
        ),
        (
            "<policies><inbound><rate-limt calls=\"1\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 20: <rate-limt>: unknown policy element; edgegw runs: rate-limit, ",
        ),
        (
            "<policies><inbound><rate-limit calls=\"1\" renewal-period=\"1\" counter=\"x\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 61: <rate-limit> attribute \"counter\": unknown attribute; remove it or use one of: calls, ",
        ),
        (
            "<policies><inbound><rate-limit calls=\"x\" renewal-period=\"1\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 32: <rate-limit> attribute \"calls\": \"x\" is not a whole number",
        ),
        (
            "<policies><inbound><rate-limit calls=\"1\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 20: <rate-limit>: missing field `renewal-period`",
        ),
        (
            "<policies><inbound><rate-limit-by-key calls=\"1\" renewal-period=\"1\" counter-key=\"@(context.Request.Method &gt; 3)\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 20: <rate-limit-by-key>: line 1, column 83: `(context.Request.Method > 3)`: `>` cannot compare string with int",
        ),
        (
            "<policies><inbound><set-status code=\"200\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 20: <set-status>: policy \"set-status\" cannot run in the inbound section",
        ),
        (
            "<policies><inbound><cache-lookup vary-by-developer=\"false\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 20: <cache-lookup>: missing field `vary-by-developer-groups`",
        ),
        (
            "<policies><inbound><cache-lookup vary-by-developer=\"false\" vary-by-developer-groups=\"false\"><vary-by-custom>x</vary-by-custom></cache-lookup></inbound></policies>",
            "api \"a\": policy XML line 1, column 93: <vary-by-custom>: unknown element inside <cache-lookup>; use vary-by-header, vary-by-query-parameter",
        ),
        (
            "<policies><outbound><cache-store duration=\"0\" /></outbound></policies>",
            "api \"a\": policy XML line 1, column 21: <cache-store>: duration 0 is not a number of seconds",
        ),
        (
            "<policies><inbound><validate-client-certificate><identities><identity /></identities></validate-client-certificate></inbound></policies>",
            "api \"a\": policy XML line 1, column 61: <identity>: needs at least one of: thumbprint, ",
        ),
        (
            "<policies><inbound><validate-client-certificate><identities><identity thumbprint=\"AB\" name=\"x\" /></identities></validate-client-certificate></inbound></policies>",
            "api \"a\": policy XML line 1, column 87: <identity> attribute \"name\": unknown attribute; remove it or use one of: thumbprint, ",
        ),
        (
            "<policies><inbound><rate-limit-by-key calls=\"1\" renewal-period=\"1\" counter-key=\"k\" increment-condition=\"@(context.Response.StatusCode)\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 20: <rate-limit-by-key>: line 1, column 105: `@(context.Response.StatusCode)`: the expression is of type int, here it must be bool",
        ),
        (
            "<policies><inbound><rate-limit calls=\"1\" renewal-period=\"1\" retry-after-header-name=\"x wait\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 20: <rate-limit>: retry-after-header-name \"x wait\" is not a valid header name; write e.g. X-Limit-State",
        ),
        (
            "<policies><inbound><set-header name=\"x\"><value>{{nope}}</value></set-header></inbound></policies>",
            "api \"a\": policy XML line 1, column 41: <value>: unknown named value \"{{nope}}\"",
        ),
        (
            "<policies><inbound><base /><base /></inbound></policies>",
            "api \"a\": policy XML line 1, column 28: <base>: <base /> appears twice",
        ),
        (
            "<policies><inbond /></policies>",
            "api \"a\": policy XML line 1, column 11: <inbond>: unknown element inside <policies>; use inbound, backend, outbound, on-error",
        ),
        (
            "<policies><inbound><choose><when condition=\"@(1 + 1)\" /></choose></inbound></policies>",
            "api \"a\": policy XML line 1, column 34: <when> attribute \"condition\": the expression is of type int, a condition must be bool",
        ),
        (
            "<policies><backend><choose><when condition=\"@(true)\" /></choose></backend></policies>",
            "api \"a\": policy XML line 1, column 20: <choose>: <choose> in the backend section is not supported yet",
        ),
        (
            "<policies><inbound><quota-by-key calls=\"1\" renewal-period=\"1\" counter-key=\"k\" first-period-start=\"x\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 79: <quota-by-key> attribute \"first-period-start\": not supported yet",
        ),
        (
            "<policies><inbound><set-variable name=\"v\" value=\"1\" scope=\"x\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 53: <set-variable> attribute \"scope\": unknown attribute; remove it or use one of: name, value",
        ),
        (
            "<policies><inbound><set-variable name=\"v\" value=\"@(context.Request.Method * 2)\" /></inbound></policies>",
            "api \"a\": policy XML line 1, column 20: <set-variable>: line 1, column 52: `(context.Request.Method * 2)`:",
        ),
    ];
    let mut wrong = Vec::new();
    for (doc, want) in cases {
        let mut problems = Vec::new();
        parse_scope(doc, "api \"a\"", &named(), &mut problems);
        if problems.len() != 1 || !problems[0].starts_with(want) || problems[0].contains('\n') {
            wrong.push(format!("{doc}:\n got {problems:?}\nwant {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn problems_are_collected_not_stopped_at() {
    let (_, problems) = parse(
        "<rate-limt />\n<set-header name=\"bad name\"><value>v</value></set-header>\n<quota calls=\"0\" renewal-period=\"1\" />",
        "inbound",
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("line 3, column 1: <rate-limt>"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1]
            .contains("line 4, column 1: <set-header>: \"bad name\" is not a valid header name"),
        "{}",
        problems[1]
    );
    assert!(
        problems[2].contains("line 5, column 1: <quota>: calls must be at least 1"),
        "{}",
        problems[2]
    );
}

#[test]
fn body_method_auth_and_trace_elements_translate() {
    use crate::policy::{set_body::Body, set_method::SetMethodSpec};
    let (scope, problems) = parse(
        r#"<set-method>POST</set-method>
<set-method>@(context.Request.Headers.GetValueOrDefault("x-m", "GET"))</set-method>
<set-body>plain text</set-body>
<set-body>@(context.Request.Body.As&lt;JObject&gt;(preserveContent: true).ToString())</set-body>
<set-body template="liquid"><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><Name>{{body.name}}</Name><T>{{tier}}</T></soap:Envelope></set-body>
<find-and-replace from="sad" to="" />
<authentication-basic username="{{tier}}" password="pw" />
<trace source="api" severity="error"><message>@(context.Request.Method)</message><metadata name="a" value="{{tier}}" /><metadata name="m" value="@(context.Request.Method)" /></trace>
<validate-jwt header-name="Authorization" output-token-variable-name="jwt"><issuer-signing-keys><key>c2VjcmV0</key></issuer-signing-keys></validate-jwt>"#,
        "inbound",
    );
    assert!(problems.is_empty(), "{problems:?}");
    let s = |i| spec(&scope, Section::Inbound, i);
    assert!(matches!(s(0), PolicySpec::SetMethod(SetMethodSpec::Literal(m)) if m == "POST"));
    assert!(matches!(
        s(1),
        PolicySpec::SetMethod(SetMethodSpec::Expr(_))
    ));
    assert!(
        matches!(s(2), PolicySpec::SetBody(b) if matches!(&b.body, Body::Literal(l) if l == "plain text"))
    );
    assert!(matches!(s(3), PolicySpec::SetBody(b) if b.reads_body));
    let PolicySpec::SetBody(liquid) = s(4) else {
        panic!()
    };
    let Body::Liquid(t) = &liquid.body else {
        panic!()
    };
    let mut globals = liquid::Object::new();
    let mut body = liquid::Object::new();
    body.insert("name".into(), liquid::model::Value::scalar("ada"));
    globals.insert("body".into(), liquid::model::Value::Object(body));
    // The child elements are kept; the named value is substituted.
    assert_eq!(
        t.render(&globals).unwrap(),
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><Name>ada</Name><T>gold</T></soap:Envelope>"#
    );
    assert!(
        matches!(s(5), PolicySpec::FindAndReplace(f) if f.to == crate::policy::expr::Text::Literal(String::new()))
    );
    assert!(matches!(s(6), PolicySpec::AuthenticationBasic(a) if a.header == "Basic Z29sZDpwdw=="));
    assert!(
        matches!(s(7), PolicySpec::Trace(t) if t.message.is_expression() && t.metadata[0] == ("a".to_string(), crate::policy::expr::Text::Literal("gold".into())) && t.metadata[1].1.is_expression())
    );
    assert!(
        matches!(s(8), PolicySpec::ValidateJwt(j) if j.output_variable.as_deref() == Some("jwt"))
    );

    // Outbound too.
    let (_, problems) = parse(
        r#"<set-body template="liquid">{{context.Response.StatusCode}}</set-body><find-and-replace from="a" to="b" /><trace source="s"><message>m</message></trace>"#,
        "outbound",
    );
    assert!(problems.is_empty(), "{problems:?}");
    // The older trace form: the message as its text.
    let (scope, problems) = parse(
        "<trace source=\"OnError\">\n  On Error\n</trace><trace source=\"e\">@(context.LastError.Message)</trace>",
        "on-error",
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        matches!(spec(&scope, Section::OnError, 0), PolicySpec::Trace(t) if t.message == crate::policy::expr::Text::Literal("On Error".into()))
    );
    assert!(
        matches!(spec(&scope, Section::OnError, 1), PolicySpec::Trace(t) if t.message.is_expression())
    );
}

#[test]
fn bad_body_method_auth_and_trace_elements_are_refused_on_their_line() {
    for (doc, want) in [
        (
            "<set-method>P O</set-method>",
            "\"P O\" is not an HTTP method",
        ),
        (
            "<set-body template=\"liquid\">{% if x %}open</set-body>",
            "Liquid template: ",
        ),
        (
            "<set-body template=\"mustache\">x</set-body>",
            "only template is liquid",
        ),
        (
            "<set-body parse-date=\"false\">x</set-body>",
            "attribute \"parse-date\": not supported yet",
        ),
        ("<find-and-replace to=\"x\" />", "from is required"),
        (
            "<authentication-basic username=\"a:b\" password=\"p\" />",
            "cannot carry",
        ),
        (
            "<trace source=\"s\" severity=\"loud\"><message>m</message></trace>",
            "severity \"loud\"",
        ),
        (
            "<trace source=\"s\"><message>m</message><metadata name=\"a\" /></trace>",
            "needs name=\"...\" and value=\"...\"",
        ),
    ] {
        let (_, problems) = parse(doc, "inbound");
        assert_eq!(problems.len(), 1, "{doc}: {problems:?}");
        assert!(
            problems[0].contains(want) && problems[0].contains("line 3"),
            "{doc}: {problems:?}"
        );
        assert!(!problems[0].contains('\n'), "{problems:?}");
    }
    let (_, problems) = parse("<set-method>GET</set-method>", "outbound");
    assert!(
        problems[0].contains("cannot run in the outbound section"),
        "{problems:?}"
    );
}

#[test]
fn validate_jwt_require_scheme_is_bearer_or_refused() {
    let key = "<issuer-signing-keys><key>c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0</key></issuer-signing-keys>";
    for scheme in ["Bearer", "bearer"] {
        let (_, problems) = parse(
            &format!(
                r#"<validate-jwt header-name="Authorization" require-scheme="{scheme}">{key}</validate-jwt>"#
            ),
            "inbound",
        );
        assert!(problems.is_empty(), "{scheme}: {problems:?}");
    }
    let (_, problems) = parse(
        &format!(
            r#"<validate-jwt header-name="Authorization" require-scheme="Basic">{key}</validate-jwt>"#
        ),
        "inbound",
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .contains("attribute \"require-scheme\": edgegw reads the token after \"Bearer \""),
        "{problems:?}"
    );
}

#[test]
fn authentication_managed_identity_translates() {
    let (scope, problems) = parse(
        r#"<authentication-managed-identity resource="https://storage.azure.com/" client-id="app" output-token-variable-name="t" ignore-error="true" authentication-provider="WorkloadIdentity" />"#,
        "inbound",
    );
    assert!(problems.is_empty(), "{problems:?}");
    match spec(&scope, Section::Inbound, 0) {
        PolicySpec::AuthenticationManagedIdentity(m) => {
            assert_eq!(m.scope(), "https://storage.azure.com/.default");
            assert_eq!(m.client_id.as_deref(), Some("app"));
            assert_eq!(m.output_variable.as_deref(), Some("t"));
            assert!(m.ignore_error);
        }
        other => panic!("{other:?}"),
    }
    let (_, problems) = parse("<authentication-managed-identity />", "inbound");
    assert!(problems[0].contains("resource"), "{problems:?}");
}

#[test]
fn validate_azure_ad_token_is_validate_jwt_against_the_tenant() {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let (scope, problems) = parse(
        &format!(
            r#"<validate-azure-ad-token tenant-id="{tenant}" output-token-variable-name="jwt">
  <client-application-ids><application-id>11111111-2222-3333-4444-555555555555</application-id></client-application-ids>
  <backend-application-ids><application-id>backend-app</application-id></backend-application-ids>
  <audiences><audience>https://orders.example</audience></audiences>
  <required-claims><claim name="roles" match="any"><value>reader</value></claim></required-claims>
</validate-azure-ad-token>"#
        ),
        "inbound",
    );
    assert!(problems.is_empty(), "{problems:?}");
    let PolicySpec::ValidateJwt(j) = spec(&scope, Section::Inbound, 0) else {
        panic!("not validate-jwt");
    };
    let remote = j.remote.as_ref().unwrap();
    assert!(remote.openid);
    assert_eq!(
        remote.url,
        format!("https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration")
    );
    assert_eq!(
        j.claims.issuers,
        [
            format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            format!("https://sts.windows.net/{tenant}/")
        ]
    );
    assert_eq!(
        j.claims.audiences,
        ["api://backend-app", "backend-app", "https://orders.example"]
    );
    assert_eq!(
        j.claims.client_applications,
        ["11111111-2222-3333-4444-555555555555"]
    );
    assert_eq!(j.claims.required.len(), 1);
    assert_eq!(j.output_variable.as_deref(), Some("jwt"));
    for (doc, want) in [
        (
            "<validate-azure-ad-token tenant-id=\"contoso.onmicrosoft.com\" />",
            "is not a tenant ID",
        ),
        ("<validate-azure-ad-token />", "needs tenant-id"),
        (
            &format!(
                "<validate-azure-ad-token tenant-id=\"{tenant}\"><decryption-keys /></validate-azure-ad-token>"
            ),
            "encrypted tokens",
        ),
    ] {
        let (_, problems) = parse(doc, "inbound");
        assert!(
            problems.len() == 1 && problems[0].contains(want),
            "{doc}: {problems:?}"
        );
    }
}
