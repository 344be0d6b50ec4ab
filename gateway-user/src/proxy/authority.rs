//! The grammar of a `Host` header or `:authority` (RFC 9110 §7.2 and RFC
//! 3986 §3.2.2–3.2.3): `host [ ":" port ]`, the host an IP literal in
//! brackets or a reg-name (an IPv4 address is one). No user info, no
//! spaces, no path: anything else is refused before it is routed on or
//! written into `X-Forwarded-Host`.

/// Whether `value` is a valid `host[:port]`.
pub fn valid(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(close) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, rest) = value.split_at(close + 1);
        if !ip_literal(&literal[1..close]) {
            return false;
        }
        match rest {
            [] => return true,
            [b':', port @ ..] => (None, port),
            _ => return false,
        }
    } else {
        match value.iter().position(|&b| b == b':') {
            Some(i) => (Some(&value[..i]), &value[i + 1..]),
            None => (Some(value), &b""[..]),
        }
    };
    host.is_none_or(reg_name) && port_ok(port)
}

/// The host of a valid `value`, lower case and without its port.
pub fn host(value: &str) -> String {
    let host = if value.starts_with('[') {
        value.split_inclusive(']').next().unwrap_or(value)
    } else {
        value.split(':').next().unwrap_or(value)
    };
    host.to_ascii_lowercase()
}

/// `*DIGIT`, at most 65535 (RFC 3986 allows it empty: `host:`).
fn port_ok(port: &[u8]) -> bool {
    port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
        && port.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
}

/// `*( unreserved / pct-encoded / sub-delims )`, not empty (an empty Host
/// names nothing this gateway serves).
fn reg_name(host: &[u8]) -> bool {
    if host.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                let hex = |j: usize| host.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 2;
            }
            b if unreserved(b) || sub_delim(b) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// An IPv6 address (no zone), or `v` HEXDIG "." ... (IPvFuture).
fn ip_literal(inside: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inside {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| unreserved(b) || sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_hosts() {
        for v in [
            "a",
            "api.example.com",
            "API.Example.COM:8443",
            "127.0.0.1",
            "127.0.0.1:80",
            "host:",
            "host:65535",
            "xn--bcher-kva.example",
            "under_score.example",
            "a%41b",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]",
            "[::ffff:192.0.2.1]:1",
            "[v1.fe80::a+en1]",
        ] {
            assert!(valid(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn invalid_hosts() {
        for v in [
            "",
            ":80",
            "a b",
            "a b/c",
            "a/b",
            "a\\b",
            "user@host",
            "host:80:80",
            "host:65536",
            "host:123456",
            "host:8o",
            "host?x",
            "host#x",
            "a%4",
            "a%zz",
            "\"quoted\"",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[]",
            "[1.2.3.4]",
            "[fe80::1%eth0]",
            "[v.x]",
            "[v1.]",
            "::1",
            "h\u{e9}",
            "a\tb",
        ] {
            assert!(!valid(v.as_bytes()), "{v:?}");
        }
    }

    #[test]
    fn host_is_lower_case_without_port() {
        assert_eq!(host("API.Example:8443"), "api.example");
        assert_eq!(host("[::1]:80"), "[::1]");
        assert_eq!(host("a"), "a");
    }
}
