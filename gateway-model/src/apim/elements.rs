//! Every policy element edgegw runs, under its APIM name, attributes and
//! child elements as Microsoft's policy reference documents them, read
//! into the settings of the same policy's YAML form.

use roxmltree::Node;
use serde_yaml::{Mapping, Value};

use super::reader::Reader;
use crate::policy::expr;

/// How an attribute's value is read.
#[derive(Clone, Copy)]
enum Kind {
    /// Literal text.
    Text,
    /// A whole number.
    Int,
    /// Seconds, given to the YAML form in milliseconds.
    SecondsAsMs,
    /// `true` or `false`.
    Bool,
    /// A counter key or condition: a literal (taken as is) or an
    /// expression.
    Key,
    /// Literal text (taken as is) or an expression.
    TextOrExpr,
    /// Accepted by APIM, not by edgegw yet: refused with the reason.
    NotYet(&'static str),
}

use Kind::*;

/// An attribute: its APIM name, the YAML setting it becomes, how it reads.
type Attr = (&'static str, &'static str, Kind);

/// One element: its APIM name, the YAML policy, its attributes, and what
/// reads its child elements (into the same settings).
struct Element {
    xml: &'static str,
    policy: &'static str,
    attrs: &'static [Attr],
    children: Option<fn(&mut Reader, Node, &mut Mapping)>,
}

const LIMIT_ATTRS: &[Attr] = &[
    ("calls", "calls", Int),
    ("renewal-period", "renewal_period", Int),
    ("retry-after-header-name", "retry_after_header_name", Text),
    (
        "retry-after-variable-name",
        "retry_after_variable_name",
        Text,
    ),
    (
        "remaining-calls-header-name",
        "remaining_calls_header_name",
        Text,
    ),
    (
        "remaining-calls-variable-name",
        "remaining_calls_variable_name",
        Text,
    ),
    ("total-calls-header-name", "total_calls_header_name", Text),
];
const TOKEN_LIMIT_ATTRS: &[Attr] = &[
    ("counter-key", "counter_key", Key),
    ("tokens-per-minute", "tokens_per_minute", Int),
    ("token-quota", "token_quota", Int),
    ("token-quota-period", "token_quota_period", Text),
    ("estimate-prompt-tokens", "estimate_prompt_tokens", Bool),
    ("retry-after-header-name", "retry_after_header_name", Text),
    (
        "retry-after-variable-name",
        "retry_after_variable_name",
        Text,
    ),
    (
        "remaining-tokens-header-name",
        "remaining_tokens_header_name",
        Text,
    ),
    (
        "remaining-tokens-variable-name",
        "remaining_tokens_variable_name",
        Text,
    ),
    (
        "remaining-quota-tokens-header-name",
        "remaining_quota_tokens_header_name",
        Text,
    ),
    (
        "remaining-quota-tokens-variable-name",
        "remaining_quota_tokens_variable_name",
        Text,
    ),
    (
        "tokens-consumed-header-name",
        "tokens_consumed_header_name",
        Text,
    ),
    (
        "tokens-consumed-variable-name",
        "tokens_consumed_variable_name",
        Text,
    ),
];
const ELEMENTS: &[Element] = &[
    Element {
        xml: "rate-limit",
        policy: "rate-limit",
        attrs: LIMIT_ATTRS,
        children: Some(per_api_limits),
    },
    Element {
        xml: "rate-limit-by-key",
        policy: "rate-limit-by-key",
        attrs: &[
            ("calls", "calls", Int),
            ("renewal-period", "renewal_period", Int),
            ("counter-key", "counter_key", Key),
            ("increment-condition", "increment_condition", TextOrExpr),
            ("increment-count", "increment_count", Int),
            ("retry-after-header-name", "retry_after_header_name", Text),
            (
                "retry-after-variable-name",
                "retry_after_variable_name",
                Text,
            ),
            (
                "remaining-calls-header-name",
                "remaining_calls_header_name",
                Text,
            ),
            (
                "remaining-calls-variable-name",
                "remaining_calls_variable_name",
                Text,
            ),
            ("total-calls-header-name", "total_calls_header_name", Text),
        ],
        children: None,
    },
    Element {
        xml: "quota",
        policy: "quota",
        attrs: &[
            ("calls", "calls", Int),
            ("bandwidth", "bandwidth", Int),
            ("renewal-period", "renewal_period", Int),
        ],
        children: Some(per_api_limits),
    },
    Element {
        xml: "quota-by-key",
        policy: "quota-by-key",
        attrs: &[
            ("calls", "calls", Int),
            ("bandwidth", "bandwidth", Int),
            ("renewal-period", "renewal_period", Int),
            ("counter-key", "counter_key", Key),
            ("increment-condition", "increment_condition", TextOrExpr),
            (
                "first-period-start",
                "",
                NotYet("quota periods start when the policy is loaded; remove it"),
            ),
        ],
        children: None,
    },
    Element {
        xml: "limit-concurrency",
        policy: "limit-concurrency",
        attrs: &[("key", "", Text), ("max-count", "max_count", Int)],
        children: None,
    },
    Element {
        xml: "ip-filter",
        policy: "ip-filter",
        attrs: &[("action", "action", Text)],
        children: Some(ip_filter),
    },
    Element {
        xml: "cache-lookup",
        policy: "cache-lookup",
        attrs: &[
            ("vary-by-developer", "vary_by_developer", Bool),
            ("vary-by-developer-groups", "vary_by_developer_groups", Bool),
            ("caching-type", "caching_type", Text),
            ("downstream-caching-type", "downstream_caching_type", Text),
            ("must-revalidate", "must_revalidate", Bool),
            (
                "allow-private-response-caching",
                "allow_private_response_caching",
                Bool,
            ),
        ],
        children: Some(cache_lookup),
    },
    Element {
        xml: "cache-store",
        policy: "cache-store",
        attrs: &[
            ("duration", "duration", Int),
            ("cache-response", "cache_response", Bool),
        ],
        children: None,
    },
    Element {
        xml: "cache-lookup-value",
        policy: "cache-lookup-value",
        attrs: &[
            ("key", "key", Key),
            ("variable-name", "variable_name", Text),
            ("default-value", "default_value", Text),
            ("caching-type", "caching_type", Text),
        ],
        children: None,
    },
    Element {
        xml: "cache-store-value",
        policy: "cache-store-value",
        attrs: &[
            ("key", "key", Key),
            ("value", "value", Key),
            ("duration", "duration", Int),
            ("caching-type", "caching_type", Text),
        ],
        children: None,
    },
    Element {
        xml: "cache-remove-value",
        policy: "cache-remove-value",
        attrs: &[("key", "key", Key), ("caching-type", "caching_type", Text)],
        children: None,
    },
    Element {
        xml: "validate-client-certificate",
        policy: "validate-client-certificate",
        attrs: &[
            ("validate-revocation", "validate-revocation", Bool),
            ("validate-trust", "validate-trust", Bool),
            ("validate-not-before", "validate-not-before", Bool),
            ("validate-not-after", "validate-not-after", Bool),
            ("ignore-error", "ignore-error", Bool),
        ],
        children: Some(client_identities),
    },
    Element {
        xml: "check-header",
        policy: "check-header",
        attrs: &[
            ("name", "name", Text),
            ("failed-check-httpcode", "failed_check_httpcode", Int),
            (
                "failed-check-error-message",
                "failed_check_error_message",
                Text,
            ),
            ("ignore-case", "ignore_case", Bool),
        ],
        children: Some(check_header),
    },
    Element {
        xml: "validate-jwt",
        policy: "validate-jwt",
        attrs: &[
            ("header-name", "header_name", Text),
            ("query-parameter-name", "query_parameter_name", Text),
            (
                "failed-validation-httpcode",
                "failed_validation_httpcode",
                Int,
            ),
            (
                "failed-validation-error-message",
                "failed_validation_error_message",
                Text,
            ),
            ("require-expiration-time", "require_expiration_time", Bool),
            ("clock-skew", "clock_skew", Int),
            ("require-signed-tokens", "", Text),
            // The token is read after "Bearer ": checked below.
            ("require-scheme", "", Text),
            (
                "token-value",
                "",
                NotYet("the token comes from header-name or query-parameter-name; use one of them"),
            ),
            (
                "output-token-variable-name",
                "output_token_variable_name",
                Text,
            ),
        ],
        children: Some(validate_jwt),
    },
    Element {
        xml: "validate-azure-ad-token",
        policy: "validate-jwt",
        attrs: &[
            ("tenant-id", "", Text),
            ("header-name", "header_name", Text),
            ("query-parameter-name", "query_parameter_name", Text),
            (
                "failed-validation-httpcode",
                "failed_validation_httpcode",
                Int,
            ),
            (
                "failed-validation-error-message",
                "failed_validation_error_message",
                Text,
            ),
            (
                "output-token-variable-name",
                "output_token_variable_name",
                Text,
            ),
            (
                "token-value",
                "",
                NotYet("the token comes from header-name or query-parameter-name; use one of them"),
            ),
        ],
        children: Some(validate_azure_ad_token),
    },
    Element {
        xml: "cors",
        policy: "cors",
        attrs: &[
            ("allow-credentials", "allow_credentials", Bool),
            (
                "terminate-unmatched-request",
                "",
                NotYet(
                    "unmatched preflight requests are always answered without CORS headers; remove it",
                ),
            ),
        ],
        children: Some(cors),
    },
    Element {
        xml: "set-header",
        policy: "set-header",
        attrs: &[
            ("name", "name", Text),
            ("exists-action", "exists_action", Text),
        ],
        children: Some(one_value),
    },
    Element {
        xml: "set-query-parameter",
        policy: "set-query-parameter",
        attrs: &[
            ("name", "name", Text),
            ("exists-action", "exists_action", Text),
        ],
        children: Some(one_value),
    },
    Element {
        xml: "rewrite-uri",
        policy: "rewrite-uri",
        attrs: &[
            ("template", "template", TextOrExpr),
            ("copy-unmatched-params", "copy_unmatched_params", Bool),
        ],
        children: None,
    },
    Element {
        xml: "set-backend-service",
        policy: "set-backend-service",
        attrs: &[
            ("base-url", "base_url", Text),
            ("backend-id", "backend_id", Text),
            // APIM writes id="apim-generated-policy"; it names nothing.
            ("id", "", Text),
        ],
        children: None,
    },
    Element {
        xml: "forward-request",
        policy: "forward-request",
        attrs: &[
            ("timeout", "timeout", Int),
            (
                "follow-redirects",
                "",
                NotYet("redirects are passed to the client; remove it"),
            ),
            ("buffer-request-body", "buffer_request_body", Bool),
            // Responses stream either way; buffering them changes no answer.
            ("buffer-response", "", Bool),
            (
                "fail-on-error-status-code",
                "",
                NotYet("backend error statuses are passed to outbound; remove it"),
            ),
            (
                "http-version",
                "",
                NotYet("the backend's protocol is set on the backend; remove it"),
            ),
        ],
        children: None,
    },
    Element {
        xml: "retry",
        policy: "retry",
        attrs: &[
            ("condition", "condition", Key),
            ("count", "count", Int),
            ("interval", "interval_ms", SecondsAsMs),
            ("max-interval", "max_interval_ms", SecondsAsMs),
            ("delta", "delta_ms", SecondsAsMs),
            ("first-fast-retry", "first_fast_retry", Bool),
        ],
        children: Some(retry),
    },
    Element {
        xml: "mock-response",
        policy: "mock-response",
        attrs: &[
            ("status-code", "status_code", Int),
            ("content-type", "content_type", Text),
        ],
        children: None,
    },
    Element {
        xml: "return-response",
        policy: "return-response",
        attrs: &[(
            "response-variable-name",
            "",
            NotYet(
                "variables are not supported yet; write <set-status>, <set-header> and <set-body> inside",
            ),
        )],
        children: Some(return_response),
    },
    Element {
        xml: "authentication-managed-identity",
        policy: "authentication-managed-identity",
        // `authentication-provider="WorkloadIdentity"` is how APIM's
        // self-hosted gateway says "the workload's identity": the node's
        // `[identity]` is that identity either way.
        attrs: &[
            ("resource", "resource", Text),
            ("client-id", "client_id", Text),
            (
                "output-token-variable-name",
                "output_token_variable_name",
                Text,
            ),
            ("ignore-error", "ignore_error", Bool),
            ("authentication-provider", "", Text),
        ],
        children: None,
    },
    Element {
        xml: "set-status",
        policy: "set-status",
        // The reason phrase is the status's standard one (HTTP/2 has none).
        attrs: &[("code", "code", Int), ("reason", "", Text)],
        children: None,
    },
    Element {
        xml: "set-variable",
        policy: "set-variable",
        attrs: &[("name", "name", Text), ("value", "value", TextOrExpr)],
        children: None,
    },
    Element {
        xml: "set-method",
        policy: "set-method",
        attrs: &[],
        children: Some(set_method),
    },
    Element {
        xml: "set-body",
        policy: "set-body",
        attrs: &[
            ("template", "template", Text),
            (
                "xsi-nil",
                "",
                NotYet("bodies are not converted between XML and JSON; remove it"),
            ),
            (
                "parse-date",
                "",
                NotYet("dates in JSON bodies are copied as written; remove it"),
            ),
        ],
        children: Some(set_body),
    },
    Element {
        xml: "find-and-replace",
        policy: "find-and-replace",
        attrs: &[("from", "from", TextOrExpr), ("to", "to", TextOrExpr)],
        children: None,
    },
    Element {
        xml: "authentication-basic",
        policy: "authentication-basic",
        attrs: &[
            ("username", "username", Text),
            ("password", "password", Text),
        ],
        children: None,
    },
    Element {
        xml: "send-request",
        policy: "send-request",
        attrs: &[
            ("mode", "mode", Text),
            ("response-variable-name", "response_variable_name", Text),
            ("timeout", "timeout", Int),
            ("ignore-error", "ignore_error", Bool),
        ],
        children: Some(send_request),
    },
    Element {
        xml: "send-one-way-request",
        policy: "send-request",
        attrs: &[("mode", "mode", Text), ("timeout", "timeout", Int)],
        children: Some(send_request),
    },
    Element {
        xml: "trace",
        policy: "trace",
        attrs: &[("source", "source", Text), ("severity", "severity", Text)],
        children: Some(trace),
    },
    // The AI gateway's policies: one policy under both of APIM's names.
    Element {
        xml: "llm-token-limit",
        policy: "llm-token-limit",
        attrs: TOKEN_LIMIT_ATTRS,
        children: None,
    },
    Element {
        xml: "azure-openai-token-limit",
        policy: "llm-token-limit",
        attrs: TOKEN_LIMIT_ATTRS,
        children: None,
    },
    Element {
        xml: "llm-emit-token-metric",
        policy: "llm-emit-token-metric",
        attrs: &[("namespace", "namespace", Text)],
        children: Some(token_metric_dimensions),
    },
    Element {
        xml: "azure-openai-emit-token-metric",
        policy: "llm-emit-token-metric",
        attrs: &[("namespace", "namespace", Text)],
        children: Some(token_metric_dimensions),
    },
];

/// Elements refused with a line of their own: built elsewhere, or later.
const NOT_YET: &[(&str, &str)] = &[("include-fragment", "policy fragments are not supported yet")];

/// The YAML policy name and settings of a policy element; `None` when
/// it has problems (reported).
pub(super) fn translate(r: &mut Reader, node: Node) -> Option<(&'static str, Value)> {
    let name = node.tag_name().name();
    if let Some((_, why)) = NOT_YET.iter().find(|(n, _)| *n == name) {
        r.problem(node, format!("{why}; remove it"));
        return None;
    }
    let Some(element) = ELEMENTS.iter().find(|e| e.xml == name) else {
        let known: Vec<&str> = ELEMENTS.iter().map(|e| e.xml).chain(["choose"]).collect();
        r.problem(
            node,
            format!("unknown policy element; edgegw runs: {}", known.join(", ")),
        );
        return None;
    };
    let before = r.problem_count();
    let allowed: Vec<&str> = element.attrs.iter().map(|a| a.0).collect();
    r.attributes(node, &allowed);
    let mut args = Mapping::new();
    for &(xml, field, kind) in element.attrs {
        if let Some(value) = attribute(r, node, xml, kind)
            && !field.is_empty()
        {
            args.insert(field.into(), value);
        }
    }
    if name == "validate-jwt"
        && node
            .attribute("require-signed-tokens")
            .is_some_and(|v| v != "true")
    {
        r.attr_problem(
            node,
            "require-signed-tokens",
            "edgegw accepts signed tokens only; remove it or write \"true\"".into(),
        );
    }
    if name == "validate-jwt"
        && node
            .attribute("require-scheme")
            .is_some_and(|v| !v.eq_ignore_ascii_case("bearer"))
    {
        r.attr_problem(
            node,
            "require-scheme",
            "edgegw reads the token after \"Bearer \"; remove it or write \"Bearer\"".into(),
        );
    }
    if name == "forward-request" && !args.contains_key("timeout") {
        // APIM's default.
        args.insert("timeout".into(), 300.into());
    }
    match element.children {
        Some(read) => read(r, node, &mut args),
        None => r.no_children(node),
    }
    (r.problem_count() == before).then_some((element.policy, Value::Mapping(args)))
}

/// An attribute's settings value; `None` when absent or refused.
fn attribute(r: &mut Reader, node: Node, name: &str, kind: Kind) -> Option<Value> {
    let attr = node.attributes().find(|a| a.name() == name)?;
    if let NotYet(why) = kind {
        r.attr_problem(node, name, format!("not supported yet: {why}"));
        return None;
    }
    if matches!(kind, Key | TextOrExpr) && edgegw_policy_expr::is_expression(attr.value()) {
        let (line, column) = r.position(attr.range_value().start);
        let text = r.attr(node, name)?;
        return Some(expr::located(&text, line, column));
    }
    let text = r.literal(node, name)?;
    let number = |r: &mut Reader| match text.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            r.attr_problem(
                node,
                name,
                format!("\"{text}\" is not a whole number; write e.g. {name}=\"10\""),
            );
            None
        }
    };
    Some(match kind {
        Int => number(r)?.into(),
        SecondsAsMs => number(r)?.saturating_mul(1000).into(),
        Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" => true.into(),
            "false" => false.into(),
            _ => {
                r.attr_problem(node, name, format!("\"{text}\" is not true or false"));
                return None;
            }
        },
        // A literal key is literal text: braces are not placeholders.
        Key => text.replace('{', "{{").replace('}', "}}").into(),
        Text | TextOrExpr | NotYet(_) => text.into(),
    })
}

/// Rewrites a YAML setting's name in a policy's message to the APIM
/// attribute the document used.
pub(super) fn xml_names(element: &str, policy: &str, message: &str) -> String {
    let mut out = message.replace(&format!("policy \"{policy}\": "), "");
    if let Some(e) = ELEMENTS.iter().find(|e| e.xml == element) {
        // Longest first: `vary_by_developer` is a prefix of another field.
        let mut attrs: Vec<&Attr> = e.attrs.iter().collect();
        attrs.sort_by_key(|a| std::cmp::Reverse(a.1.len()));
        for (xml, field, _) in attrs {
            if !field.is_empty() && xml != field {
                out = out.replace(field, xml);
            }
        }
    }
    out
}

/// `<api name="..."><operation .../></api>` limits per API: not yet.
fn per_api_limits(r: &mut Reader, node: Node, _: &mut Mapping) {
    for child in r.children(node, &["api"]) {
        r.problem(
            child,
            "per-API and per-operation limits inside one policy are not supported yet; write a rate-limit in each API's or operation's policies".into(),
        );
    }
}

fn texts(r: &mut Reader, parent: Node, name: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for child in r.children(parent, &[name]) {
        r.attributes(child, &[]);
        if let Some(t) = r.text(child) {
            out.push(t.into());
        }
    }
    out
}

fn ip_filter(r: &mut Reader, node: Node, args: &mut Mapping) {
    let mut addresses = Vec::new();
    for child in r.children(node, &["address", "address-range"]) {
        if child.tag_name().name() == "address" {
            r.attributes(child, &[]);
            addresses.extend(r.text(child).map(Value::from));
        } else {
            r.attributes(child, &["from", "to"]);
            r.no_children(child);
            match (r.literal(child, "from"), r.literal(child, "to")) {
                (Some(from), Some(to)) => addresses.push(format!("{from}-{to}").into()),
                _ => r.problem(child, "needs from=\"...\" and to=\"...\" addresses".into()),
            }
        }
    }
    args.insert("addresses".into(), Value::Sequence(addresses));
}

fn check_header(r: &mut Reader, node: Node, args: &mut Mapping) {
    let values = texts(r, node, "value");
    args.insert("values".into(), Value::Sequence(values));
}

/// `<vary-by-header>` and `<vary-by-query-parameter>` of `<cache-lookup>`,
/// one name each (query parameters may also be `;`-separated).
fn cache_lookup(r: &mut Reader, node: Node, args: &mut Mapping) {
    let (headers, query) = ("vary-by-header", "vary-by-query-parameter");
    let mut lists = (Vec::new(), Vec::new());
    for child in r.children(node, &[headers, query]) {
        r.attributes(child, &[]);
        let Some(text) = r.text(child) else { continue };
        match child.tag_name().name() {
            n if n == headers => lists.0.push(Value::from(text)),
            _ => lists.1.push(Value::from(text)),
        }
    }
    args.insert("vary_by_header".into(), Value::Sequence(lists.0));
    args.insert("vary_by_query_parameter".into(), Value::Sequence(lists.1));
}

/// `<identities><identity thumbprint="..." .../></identities>` of
/// `<validate-client-certificate>`: every attribute as documented.
fn client_identities(r: &mut Reader, node: Node, args: &mut Mapping) {
    const IDENTITY: &[&str] = &[
        "thumbprint",
        "serial-number",
        "common-name",
        "subject",
        "dns-name",
        "issuer-subject",
        "issuer-thumbprint",
        "issuer-certificate-id",
        "certificate-id",
    ];
    let mut identities = Vec::new();
    for list in r.children(node, &["identities"]) {
        r.attributes(list, &[]);
        for identity in r.children(list, &["identity"]) {
            r.attributes(identity, IDENTITY);
            r.no_children(identity);
            let mut map = Mapping::new();
            for name in IDENTITY {
                if let Some(v) = r.literal(identity, name) {
                    map.insert((*name).into(), v.into());
                }
            }
            if map.is_empty() {
                r.problem(
                    identity,
                    format!("needs at least one of: {}", IDENTITY.join(", ")),
                );
            }
            identities.push(Value::Mapping(map));
        }
    }
    if !identities.is_empty() {
        args.insert("identities".into(), Value::Sequence(identities));
    }
}

/// `<value>` of set-header and set-query-parameter: one, which may be an
/// expression.
fn one_value(r: &mut Reader, node: Node, args: &mut Mapping) {
    let children = r.children(node, &["value"]);
    if children.len() > 1 {
        r.problem(
            children[1],
            "only one <value> is supported yet; write one set-header with exists-action=\"append\" per value".into(),
        );
        return;
    }
    if let Some(child) = children.first() {
        r.attributes(*child, &[]);
        if let Some(v) = text_or_expression(r, *child) {
            args.insert("value".into(), v);
        }
    }
}

/// An element's text: a literal, or an expression located where it is.
fn text_or_expression(r: &mut Reader, node: Node) -> Option<Value> {
    let text = r.text(node)?;
    if edgegw_policy_expr::is_expression(&text) {
        let start = node
            .children()
            .find(|c| c.is_text() && !c.text().unwrap_or_default().trim().is_empty())
            .map_or(node.range().start, |c| {
                let raw = c.text().unwrap_or_default();
                c.range().start + (raw.len() - raw.trim_start().len())
            });
        let (line, column) = r.position(start);
        return Some(expr::located(&text, line, column));
    }
    Some(text.into())
}

fn cors(r: &mut Reader, node: Node, args: &mut Mapping) {
    let lists = [
        ("allowed-origins", "origin", "allowed_origins"),
        ("allowed-methods", "method", "allowed_methods"),
        ("allowed-headers", "header", "allowed_headers"),
        ("expose-headers", "header", "expose_headers"),
    ];
    let names: Vec<&str> = lists.iter().map(|l| l.0).collect();
    for child in r.children(node, &names) {
        let Some((_, item, field)) = lists.iter().find(|l| l.0 == child.tag_name().name()) else {
            continue;
        };
        if *field == "allowed_methods" {
            r.attributes(child, &["preflight-result-max-age"]);
            if let Some(v) = attribute(r, child, "preflight-result-max-age", Int) {
                args.insert("preflight_result_max_age".into(), v);
            }
        } else {
            r.attributes(child, &[]);
        }
        let values = texts(r, child, item);
        args.insert((*field).into(), Value::Sequence(values));
    }
}

fn validate_jwt(r: &mut Reader, node: Node, args: &mut Mapping) {
    let children = r.children(
        node,
        &[
            "openid-config",
            "issuer-signing-keys",
            "decryption-keys",
            "audiences",
            "issuers",
            "required-claims",
        ],
    );
    for child in children {
        match child.tag_name().name() {
            "openid-config" => {
                r.attributes(child, &["url"]);
                r.no_children(child);
                if args.contains_key("openid_config_url") {
                    r.problem(
                        child,
                        "only one <openid-config> is supported yet; keep one".into(),
                    );
                } else if let Some(url) = r.literal(child, "url") {
                    args.insert("openid_config_url".into(), url.into());
                } else {
                    r.problem(
                        child,
                        "needs url=\"https://.../.well-known/openid-configuration\"".into(),
                    );
                }
            }
            "issuer-signing-keys" => {
                r.attributes(child, &[]);
                let mut keys = Vec::new();
                for key in r.children(child, &["key"]) {
                    keys.extend(signing_key(r, key));
                }
                args.insert("signing_keys".into(), Value::Sequence(keys));
            }
            "decryption-keys" => r.problem(
                child,
                "encrypted tokens are not supported yet; remove it".into(),
            ),
            "audiences" => {
                r.attributes(child, &[]);
                let v = texts(r, child, "audience");
                args.insert("audiences".into(), Value::Sequence(v));
            }
            "issuers" => {
                r.attributes(child, &[]);
                let v = texts(r, child, "issuer");
                args.insert("issuers".into(), Value::Sequence(v));
            }
            _ => {
                r.attributes(child, &[]);
                let mut claims = Vec::new();
                for claim in r.children(child, &["claim"]) {
                    claims.extend(required_claim(r, claim));
                }
                args.insert("required_claims".into(), Value::Sequence(claims));
            }
        }
    }
}

/// `<validate-azure-ad-token tenant-id>`: `validate-jwt` against the
/// tenant's Microsoft Entra ID keys (its OpenID configuration), with the
/// tenant's v1 and v2 issuers; `<backend-application-ids>` and
/// `<audiences>` are the accepted audiences (an application ID also as
/// `api://ID`), `<client-application-ids>` the accepted `azp`/`appid`.
fn validate_azure_ad_token(r: &mut Reader, node: Node, args: &mut Mapping) {
    let tenant = r.literal(node, "tenant-id").map(|t| t.trim().to_string());
    match tenant {
        Some(t) if is_tenant_id(&t) => {
            args.insert(
                "openid_config_url".into(),
                format!("https://login.microsoftonline.com/{t}/v2.0/.well-known/openid-configuration")
                    .into(),
            );
            args.insert(
                "issuers".into(),
                Value::Sequence(vec![
                    format!("https://login.microsoftonline.com/{t}/v2.0").into(),
                    format!("https://sts.windows.net/{t}/").into(),
                ]),
            );
        }
        Some(t) => r.attr_problem(
            node,
            "tenant-id",
            format!("\"{t}\" is not a tenant ID; give the directory's ID (a GUID), which the token's issuer is checked against"),
        ),
        None => r.problem(node, "needs tenant-id=\"TENANT-GUID\"".into()),
    }
    let mut audiences = Vec::new();
    let children = r.children(
        node,
        &[
            "client-application-ids",
            "backend-application-ids",
            "audiences",
            "required-claims",
            "decryption-keys",
        ],
    );
    for child in children {
        r.attributes(child, &[]);
        match child.tag_name().name() {
            "client-application-ids" => {
                let ids = texts(r, child, "application-id");
                args.insert("client_application_ids".into(), Value::Sequence(ids));
            }
            "backend-application-ids" => {
                for id in texts(r, child, "application-id") {
                    if let Some(id) = id.as_str() {
                        audiences.push(Value::from(format!("api://{id}")));
                    }
                    audiences.push(id);
                }
            }
            "audiences" => audiences.extend(texts(r, child, "audience")),
            "required-claims" => {
                let mut claims = Vec::new();
                for claim in r.children(child, &["claim"]) {
                    claims.extend(required_claim(r, claim));
                }
                args.insert("required_claims".into(), Value::Sequence(claims));
            }
            _ => r.problem(
                child,
                "encrypted tokens are not supported yet; remove it".into(),
            ),
        }
    }
    if !audiences.is_empty() {
        args.insert("audiences".into(), Value::Sequence(audiences));
    }
}

/// A directory (tenant) ID: a GUID.
fn is_tenant_id(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `<key>BASE64</key>`: a symmetric (HS256) key, as APIM writes them.
fn signing_key(r: &mut Reader, key: Node) -> Option<Value> {
    use base64::Engine;
    r.attributes(key, &["id"]);
    let text = r.text(key)?;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim()) else {
        r.problem(
            key,
            "is not base64; give the symmetric key base64-encoded (RSA keys: use <openid-config>)"
                .into(),
        );
        return None;
    };
    let Ok(secret) = String::from_utf8(bytes) else {
        r.problem(key, "binary symmetric keys are not supported yet; use a key that is UTF-8 text once decoded".into());
        return None;
    };
    let mut map = Mapping::new();
    map.insert("alg".into(), "HS256".into());
    map.insert("secret".into(), secret.into());
    if let Some(id) = r.literal(key, "id") {
        map.insert("kid".into(), id.into());
    }
    Some(Value::Mapping(map))
}

/// `<claim name="..." match="any|all"><value>...</value></claim>`.
fn required_claim(r: &mut Reader, claim: Node) -> Option<Value> {
    r.attributes(claim, &["name", "match", "separator"]);
    let Some(name) = r.literal(claim, "name") else {
        r.problem(claim, "needs name=\"CLAIM\"".into());
        return None;
    };
    let values = texts(r, claim, "value");
    let matching = claim.attribute("match").unwrap_or("all");
    if values.len() > 1 && matching != "any" {
        r.problem(
            claim,
            "match=\"all\" with several values is not supported yet; write match=\"any\" or one value".into(),
        );
        return None;
    }
    if claim.attribute("separator").is_some() {
        r.attr_problem(claim, "separator", "not supported yet; remove it".into());
        return None;
    }
    let mut map = Mapping::new();
    map.insert("name".into(), name.into());
    map.insert("values".into(), Value::Sequence(values));
    Some(Value::Mapping(map))
}

/// `<retry>` holds the policies it repeats: only `forward-request` is
/// meaningful there; it is read by the caller as a sibling.
fn retry(r: &mut Reader, node: Node, _: &mut Mapping) {
    for child in r.children(node, &["forward-request"]) {
        let _ = child;
    }
}

/// `<return-response>` with `<set-status>`, `<set-header>` and
/// `<set-body>` inside; header values and the body may be expressions,
/// the body a Liquid template.
fn return_response(r: &mut Reader, node: Node, args: &mut Mapping) {
    let mut headers = Mapping::new();
    for child in r.children(node, &["set-status", "set-header", "set-body"]) {
        match child.tag_name().name() {
            "set-status" => {
                r.attributes(child, &["code", "reason"]);
                r.no_children(child);
                if let Some(code) = attribute(r, child, "code", Int) {
                    args.insert("status_code".into(), code);
                }
            }
            "set-header" => {
                r.attributes(child, &["name", "exists-action"]);
                let Some(name) = r.literal(child, "name") else {
                    r.problem(child, "needs name=\"HEADER\"".into());
                    continue;
                };
                let mut values = Vec::new();
                for value in r.children(child, &["value"]) {
                    r.attributes(value, &[]);
                    values.extend(text_or_expression(r, value));
                }
                match values.pop() {
                    Some(Value::String(v))
                        if values.is_empty() && name.eq_ignore_ascii_case("content-type") =>
                    {
                        args.insert("content_type".into(), v.into());
                    }
                    Some(v) if values.is_empty() => {
                        headers.insert(name.into(), v);
                    }
                    _ => r.problem(child, "give exactly one <value>".into()),
                }
            }
            _ => {
                r.attributes(child, &["template"]);
                let liquid = match r.literal(child, "template").as_deref() {
                    None => false,
                    Some(t) if t.eq_ignore_ascii_case("liquid") => true,
                    Some(t) => {
                        r.problem(
                            child,
                            format!("template=\"{t}\" is unknown; use template=\"liquid\" or none"),
                        );
                        continue;
                    }
                };
                if liquid {
                    args.insert("body".into(), r.template_text(child).into());
                    args.insert("body_template".into(), "liquid".into());
                } else if let Some(body) = text_or_expression(r, child) {
                    args.insert("body".into(), body);
                }
            }
        }
    }
    if !headers.is_empty() {
        args.insert("headers".into(), Value::Mapping(headers));
    }
}

/// `<send-request>` / `<send-one-way-request>` with `<set-url>`,
/// `<set-method>`, `<set-header>` (one header setting per `<value>`) and
/// `<set-body>` inside.
fn send_request(r: &mut Reader, node: Node, args: &mut Mapping) {
    if node.tag_name().name() == "send-one-way-request" {
        args.insert("one_way".into(), true.into());
    }
    let mut headers = Vec::new();
    let known = [
        "set-url",
        "set-method",
        "set-header",
        "set-body",
        "authentication-certificate",
        "authentication-managed-identity",
        "proxy",
    ];
    for child in r.children(node, &known) {
        match child.tag_name().name() {
            "set-url" => {
                r.attributes(child, &[]);
                if let Some(v) = text_or_expression(r, child) {
                    args.insert("url".into(), v);
                }
            }
            "set-method" => {
                r.attributes(child, &[]);
                if let Some(v) = text_or_expression(r, child) {
                    args.insert("method".into(), v);
                }
            }
            "set-header" => {
                r.attributes(child, &["name", "exists-action"]);
                let Some(name) = r.literal(child, "name") else {
                    r.problem(child, "needs name=\"HEADER\"".into());
                    continue;
                };
                let action = r.literal(child, "exists-action");
                let values = r.children(child, &["value"]);
                let header = |value: Option<Value>, action: Option<&str>| {
                    let mut h = Mapping::new();
                    h.insert("name".into(), name.clone().into());
                    if let Some(v) = value {
                        h.insert("value".into(), v);
                    }
                    if let Some(a) = action {
                        h.insert("exists_action".into(), a.into());
                    }
                    Value::Mapping(h)
                };
                if values.is_empty() {
                    headers.push(header(None, action.as_deref()));
                }
                for (i, value) in values.into_iter().enumerate() {
                    r.attributes(value, &[]);
                    let v = text_or_expression(r, value);
                    // Every value after the first is one more line.
                    let action = if i == 0 { action.as_deref() } else { Some("append") };
                    headers.push(header(v, action));
                }
            }
            "set-body" => {
                r.attributes(child, &["template"]);
                let mut body = Mapping::new();
                if let Some(t) = r.literal(child, "template") {
                    body.insert("template".into(), t.to_ascii_lowercase().into());
                    body.insert("value".into(), r.template_text(child).into());
                } else if let Some(v) = text_or_expression(r, child) {
                    body.insert("value".into(), v);
                }
                args.insert("body".into(), Value::Mapping(body));
            }
            "authentication-managed-identity" => {
                if let Some((_, settings)) = translate(r, child) {
                    args.insert("authentication_managed_identity".into(), settings);
                }
            }
            other => r.problem(
                child,
                format!("<{other}> inside a request of its own is not supported yet; put the credential in a <set-header> (e.g. Authorization) instead"),
            ),
        }
    }
    if !headers.is_empty() {
        args.insert("headers".into(), Value::Sequence(headers));
    }
}

/// `<set-method>METHOD</set-method>`: a literal or an expression.
fn set_method(r: &mut Reader, node: Node, args: &mut Mapping) {
    if let Some(v) = text_or_expression(r, node) {
        args.insert("method".into(), v);
    }
}

/// `<set-body>`: its text, an expression, or (with template="liquid") a
/// template kept as written.
fn set_body(r: &mut Reader, node: Node, args: &mut Mapping) {
    let liquid = args.get("template").and_then(Value::as_str) == Some("liquid");
    let value = if liquid {
        Some(r.template_text(node).into())
    } else {
        text_or_expression(r, node)
    };
    if let Some(v) = value {
        args.insert("value".into(), v);
    }
}

/// `<trace>` with `<message>` and `<metadata name="" value="" />`.
/// `<dimension name="..." [value="..."] />` children.
fn token_metric_dimensions(r: &mut Reader, node: Node, args: &mut Mapping) {
    let mut dimensions = Vec::new();
    for child in r.children(node, &["dimension"]) {
        r.attributes(child, &["name", "value"]);
        r.no_children(child);
        let Some(name) = r.literal(child, "name") else {
            r.problem(child, "needs name=\"...\"".into());
            continue;
        };
        let mut m = Mapping::new();
        m.insert("name".into(), name.into());
        if let Some(value) = attribute(r, child, "value", TextOrExpr) {
            m.insert("value".into(), value);
        }
        dimensions.push(Value::Mapping(m));
    }
    if !dimensions.is_empty() {
        args.insert("dimensions".into(), Value::Sequence(dimensions));
    }
}

fn trace(r: &mut Reader, node: Node, args: &mut Mapping) {
    // The older form: the message as the element's text.
    if !node.children().any(|c| c.is_element()) {
        if let Some(v) = text_or_expression(r, node) {
            args.insert("message".into(), v);
        }
        return;
    }
    let mut metadata = Vec::new();
    for child in r.children(node, &["message", "metadata"]) {
        if child.tag_name().name() == "message" {
            r.attributes(child, &[]);
            if let Some(v) = text_or_expression(r, child) {
                args.insert("message".into(), v);
            }
        } else {
            r.attributes(child, &["name", "value"]);
            r.no_children(child);
            match (
                r.literal(child, "name"),
                attribute(r, child, "value", TextOrExpr),
            ) {
                (Some(name), Some(value)) => {
                    let mut m = Mapping::new();
                    m.insert("name".into(), name.into());
                    m.insert("value".into(), value);
                    metadata.push(Value::Mapping(m));
                }
                _ => r.problem(child, "needs name=\"...\" and value=\"...\"".into()),
            }
        }
    }
    if !metadata.is_empty() {
        args.insert("metadata".into(), Value::Sequence(metadata));
    }
}
