//! Header rewriting on the way to and from the backend: hop-by-hop removal,
//! `X-Forwarded-*` / `Forwarded`, and the W3C `traceparent`.

use std::net::SocketAddr;

use hyper::{
    HeaderMap,
    header::{self, HeaderName, HeaderValue},
};

/// Headers that describe one hop and must not be forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, those named in `Connection` included.
/// `TE: trailers` survives: gRPC needs it end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let te_trailers = headers.get_all(header::TE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim() == "trailers"))
    });
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Appends the client to `X-Forwarded-For` and `Forwarded`, and sets
/// `X-Forwarded-Proto` / `X-Forwarded-Host`.
pub fn add_forwarded(
    headers: &mut HeaderMap,
    client: SocketAddr,
    proto: &'static str,
    host: Option<&str>,
) {
    let ip = client.ip().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ip}"),
        None => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    // RFC 7239: IPv6 addresses are quoted and bracketed.
    let mut element = String::with_capacity(64);
    element.push_str("for=");
    if client.is_ipv6() {
        element.push_str("\"[");
        element.push_str(&ip);
        element.push_str("]\"");
    } else {
        element.push_str(&ip);
    }
    element.push_str(";proto=");
    element.push_str(proto);
    if let Some(host) = host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"')) {
        element.push_str(";host=\"");
        element.push_str(host);
        element.push('"');
        if let Ok(v) = HeaderValue::from_str(host) {
            headers.insert("x-forwarded-host", v);
        }
    }
    let forwarded = match headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {element}"),
        None => element,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, v);
    }
}

/// The trace this request belongs to: the incoming `traceparent`'s trace id
/// when valid, else a new one. `span` is this hop's new parent id.
#[derive(Clone, Debug)]
pub struct Trace {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

impl Trace {
    /// Continues a valid `traceparent` (version 00) or starts a new trace.
    pub fn continue_or_start(headers: &HeaderMap) -> Trace {
        let span_id = random_hex(8);
        if let Some((trace_id, flags)) = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent)
        {
            return Trace {
                trace_id,
                span_id,
                flags,
            };
        }
        Trace {
            trace_id: random_hex(16),
            span_id,
            flags: "01".into(),
        }
    }

    /// The `traceparent` value to send to the backend.
    pub fn header(&self) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "00-{}-{}-{}",
            self.trace_id, self.span_id, self.flags
        ))
        .expect("hex digits are a valid header value")
    }
}

fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = v.trim().split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let [version, trace, parent, flags] = parts.as_slice() else {
        return None;
    };
    let all_zero = |s: &str| s.bytes().all(|b| b == b'0');
    (*version == "00"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && !all_zero(trace)
        && !all_zero(parent))
    .then(|| (trace.to_string(), flags.to_string()))
}

/// `bytes` random bytes as lower-case hex, never all zero. Ids need to be
/// unique, not secret: a per-thread splitmix64 seeded from the OS is enough
/// and keeps a syscall off every request.
fn random_hex(bytes: usize) -> String {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(os_seed());
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes * 2);
    STATE.with(|state| {
        let mut left = bytes;
        while left > 0 {
            // splitmix64
            let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            state.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            if z == 0 {
                continue;
            }
            for b in z.to_le_bytes().iter().take(left.min(8)) {
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
            left = left.saturating_sub(8);
        }
    });
    out
}

fn os_seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .expect("the system random source works");
    u64::from_le_bytes(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers_keeps_te_trailers() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers, deflate"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret").is_none() && h.get("keep-alive").is_none());
        assert_eq!(h.get("te").unwrap(), "trailers");
        assert_eq!(h.get("x-keep").unwrap(), "1");
    }

    #[test]
    fn appends_forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.9"));
        add_forwarded(
            &mut h,
            "[::1]:5".parse().unwrap(),
            "https",
            Some("api.example"),
        );
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.9, ::1");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(
            h.get("forwarded").unwrap(),
            "for=\"[::1]\";proto=https;host=\"api.example\""
        );
    }

    #[test]
    fn traceparent_is_continued_when_valid_and_started_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let t = Trace::continue_or_start(&h);
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(t.span_id, "00f067aa0ba902b7");
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-zz-00f067aa0ba902b7-01"),
        );
        let t = Trace::continue_or_start(&h);
        assert_eq!(t.trace_id.len(), 32);
        assert_ne!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(parse_traceparent(t.header().to_str().unwrap()).is_some());
    }

    #[test]
    fn random_ids_have_the_right_length_and_differ() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert_eq!(random_hex(8).len(), 16);
        assert_ne!(a, random_hex(16));
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
