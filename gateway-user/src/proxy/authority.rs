//! The grammar of a `Host` header or `:authority` (RFC 9110 §7.2 and RFC
//! 3986 §3.2.2–3.2.3): `host [ ":" port ]`, the host an IP literal in
//! brackets or a reg-name (an IPv4 address is one). No user info, no
//! spaces, no path: anything else is refused before it is routed on or
//! written into `X-Forwarded-Host`.

/// Whether `value` is a valid `host[:port]`.
pub fn valid(value: &[u8]) -> bool {
    if value.first() == Some(&b'[') {
        let Some(close) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, rest) = value.split_at(close + 1);
        if !ip_literal(&literal[1..close]) {
            return false;
        }
        return match rest {
            [] => true,
            [b':', port @ ..] => port_ok(port),
            _ => false,
        };
    }
    // A reg-name up to the first ':' in one pass over a byte table (this
    // runs on every request), then the port.
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b if REG_NAME[usize::from(b)] => i += 1,
            b'%' => {
                let hex = |j: usize| value.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            b':' => break,
            _ => return false,
        }
    }
    // Not empty: an empty Host names nothing this gateway serves.
    i > 0 && value.get(i + 1..).is_none_or(port_ok)
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
    if port.len() > 5 {
        return false;
    }
    let mut n = 0u32;
    for &d in port {
        if !d.is_ascii_digit() {
            return false;
        }
        n = n * 10 + u32::from(d - b'0');
    }
    n <= 65535
}

/// The bytes of a reg-name but `%` (`unreserved / sub-delims`).
static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = unreserved(b) || sub_delim(b);
        i += 1;
    }
    t
};

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

const fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const fn sub_delim(b: u8) -> bool {
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
