//! Header rewriting on the way to and from the backend: hop-by-hop removal,
//! `X-Forwarded-*` / `Forwarded`, and the W3C `traceparent`.

use std::net::IpAddr;

use hyper::{
    HeaderMap,
    header::{self, HeaderName, HeaderValue},
};

// Names as constants: a lookup by `&str` parses the name on every call.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Headers that describe one hop and must not be forwarded (RFC 9110 7.6.1).
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// A bit of its own for each name in `HOP_BY_HOP`, else 0: a match on the
/// text costs a length test for most names.
fn hop_by_hop_bit(name: &str) -> u8 {
    match name {
        "connection" => 1,
        "keep-alive" => 1 << 1,
        "proxy-connection" => 1 << 2,
        "proxy-authenticate" => 1 << 3,
        "proxy-authorization" => 1 << 4,
        "te" => 1 << 5,
        "trailer" => 1 << 6,
        "upgrade" => 1 << 7,
        _ => 0,
    }
}

/// Removes hop-by-hop headers, those named in `Connection` included.
/// `TE: trailers` survives: gRPC needs it end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none, or just `Connection: keep-alive`: one pass
    // over their few names notes which are present, and only those are
    // looked up again.
    let mut present = 0u8;
    for name in headers.keys() {
        present |= hop_by_hop_bit(name.as_str());
    }
    if present == 0 {
        return;
    }
    let has = |name: &HeaderName| present & hop_by_hop_bit(name.as_str()) != 0;
    if has(&header::CONNECTION) {
        // The usual `Connection: keep-alive` (or `close`) names nothing
        // beyond the hop-by-hop list: nothing to parse, nothing to collect.
        let mut named = Vec::new();
        let values = headers.get_all(header::CONNECTION).iter();
        for token in values
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let token = token.trim();
            if token.eq_ignore_ascii_case("close")
                || HOP_BY_HOP
                    .iter()
                    .any(|h| token.eq_ignore_ascii_case(h.as_str()))
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    let te_trailers = has(&header::TE)
        && headers.get_all(header::TE).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim() == "trailers"))
        });
    for name in &HOP_BY_HOP {
        if has(name) {
            headers.remove(name);
        }
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// The headers the proxy sets on a request to the backend: the client
/// appended to `X-Forwarded-For` and `Forwarded`, `X-Forwarded-Proto`,
/// `X-Forwarded-Host` and the `traceparent` of this hop. Kept apart from
/// the request's own map and only written out when the request head is:
/// the lean client writes them straight into the head after the request's
/// headers (skipping those they replace), hyper's client gets them
/// inserted (`apply`). Nothing is allocated per request for them.
#[derive(Clone)]
pub struct Added {
    client: ClientIp,
    proto: &'static str,
    /// Visible ASCII without quotes: safe in both headers that carry it.
    host: Option<String>,
    trace: Trace,
}

impl Added {
    pub fn new(
        client: ClientIp,
        proto: &'static str,
        host: Option<String>,
        trace: &Trace,
    ) -> Added {
        Added {
            client,
            proto,
            host: host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"')),
            trace: *trace,
        }
    }

    /// Each header with its value in parts, as the backend gets it; the
    /// request's own `X-Forwarded-For` and `Forwarded` (from `headers`)
    /// extended. The one place their text is made.
    fn each(&self, headers: &HeaderMap, mut f: impl FnMut(&'static str, &[&[u8]])) {
        let ip = self.client.text();
        // A prior value that is not text is dropped, not extended.
        let prior = |name: HeaderName| {
            headers
                .get(name)
                .filter(|v: &&HeaderValue| v.to_str().is_ok())
                .map_or(&[][..], |v| v.as_bytes())
        };
        let sep = |prior: &[u8]| if prior.is_empty() { &b""[..] } else { b", " };
        let xff = prior(X_FORWARDED_FOR);
        f(Self::NAMES[0], &[xff, sep(xff), ip]);
        f(Self::NAMES[1], &[self.proto.as_bytes()]);
        if let Some(host) = &self.host {
            f(Self::NAMES[2], &[host.as_bytes()]);
        }
        // RFC 7239: IPv6 addresses are quoted and bracketed.
        let (open, close) = if self.client.ip.is_ipv6() {
            (&b"\"["[..], &b"]\""[..])
        } else {
            (&b""[..], &b""[..])
        };
        let (host_open, host_text, host_close) = match &self.host {
            Some(h) => (&b";host=\""[..], h.as_bytes(), &b"\""[..]),
            None => (&b""[..], &b""[..], &b""[..]),
        };
        let prior_forwarded = prior(header::FORWARDED);
        f(
            Self::NAMES[3],
            &[
                prior_forwarded,
                sep(prior_forwarded),
                b"for=",
                open,
                ip,
                close,
                b";proto=",
                self.proto.as_bytes(),
                host_open,
                host_text,
                host_close,
            ],
        );
        f(Self::NAMES[4], &[&self.trace.text]);
    }

    const NAMES: [&'static str; 5] = [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "traceparent",
    ];

    /// Whether the request's header `name` gives way to one of these.
    pub fn replaces(&self, name: &str) -> bool {
        match name {
            "x-forwarded-host" => self.host.is_some(),
            _ => Self::NAMES.contains(&name),
        }
    }

    /// Writes them as header lines to `out`.
    pub fn write(&self, headers: &HeaderMap, out: &mut Vec<u8>) {
        self.each(headers, |name, parts| {
            // `line`, with the value in parts.
            put(out, name.as_bytes());
            out.extend_from_slice(b": ");
            for part in parts {
                put(out, part);
            }
            out.extend_from_slice(b"\r\n");
        });
    }

    /// Sets them in `headers` (for hyper's client).
    pub fn apply(&self, headers: &mut HeaderMap) {
        let mut values = Vec::with_capacity(Self::NAMES.len());
        self.each(headers, |name, parts| {
            if let Some(value) = crate::policy::context::joined(parts) {
                values.push((name, value));
            }
        });
        for (name, value) in values {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// Appends the HTTP/1.1 header line `name: value\r\n`: every head the
/// proxy writes uses it.
pub fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    put(out, name);
    out.extend_from_slice(b": ");
    put(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `bytes` to `out`.
#[inline]
pub fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

/// A client's address and its text, written once per connection (not per
/// request) and kept on the stack.
#[derive(Clone, Copy)]
pub struct ClientIp {
    ip: IpAddr,
    /// At most 45 characters: an IPv6 address with an IPv4 tail.
    text: [u8; 48],
    len: u8,
}

impl ClientIp {
    pub fn new(ip: IpAddr) -> ClientIp {
        use std::io::Write;
        let mut text = [0; 48];
        let mut rest = &mut text[..];
        let _ = write!(rest, "{ip}");
        let len = (48 - rest.len()) as u8;
        ClientIp { ip, text, len }
    }

    fn text(&self) -> &[u8] {
        &self.text[..usize::from(self.len)]
    }
}

/// The trace this request belongs to: the incoming `traceparent`'s trace id
/// and flags when valid, else a new trace; a new span id for this hop.
/// Kept as the `traceparent` text itself: one copy, no allocation.
#[derive(Clone, Copy, Debug)]
pub struct Trace {
    /// `00-{trace id: 32 hex}-{span id: 16 hex}-{flags: 2 hex}`.
    text: [u8; 55],
    /// The caller's span (16 hex), when the request continued a trace.
    parent: Option<[u8; 16]>,
}

impl Trace {
    const TRACE: std::ops::Range<usize> = 3..35;
    const SPAN: std::ops::Range<usize> = 36..52;
    const FLAGS: std::ops::Range<usize> = 53..55;

    /// Continues a valid `traceparent` (version 00) or starts a new trace.
    pub fn continue_or_start(headers: &HeaderMap) -> Trace {
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-01";
        let mut parent = None;
        match headers
            .get(&TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()))
        {
            Some((trace, span, flags)) => {
                text[Self::TRACE].copy_from_slice(trace);
                text[Self::FLAGS].copy_from_slice(flags);
                parent = Some(span.try_into().expect("16 hex digits"));
            }
            None => random_hex(&mut text[Self::TRACE]),
        }
        random_hex(&mut text[Self::SPAN]);
        Trace { text, parent }
    }

    /// The trace id as bytes (every request's, for the sampler).
    pub fn trace_bytes(&self) -> [u8; 16] {
        unhex(&self.text[Self::TRACE])
    }

    /// This hop's span id (the backend's parent) as bytes.
    pub fn span_bytes(&self) -> [u8; 8] {
        unhex(&self.text[Self::SPAN])
    }

    /// The caller's span id and sampled flag, when the trace was continued.
    pub fn parent(&self) -> Option<([u8; 8], bool)> {
        let span = unhex(self.parent.as_ref()?);
        let [flags] = unhex(&self.text[Self::FLAGS]);
        Some((span, flags & 1 == 1))
    }

    /// Sets the sampled flag the backend sees, for a trace this hop
    /// started (a continued trace keeps its caller's flags).
    pub fn decide(&mut self, sampled: bool) {
        if self.parent.is_none() {
            self.text[Self::FLAGS].copy_from_slice(if sampled { b"01" } else { b"00" });
        }
    }

    pub fn trace_id(&self) -> &str {
        self.str(Self::TRACE)
    }

    fn str(&self, range: std::ops::Range<usize>) -> &str {
        std::str::from_utf8(&self.text[range]).expect("built from ASCII hex")
    }

    /// The `traceparent` value the backend gets, as a header value.
    #[cfg(test)]
    pub fn header(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.text).expect("hex digits are a valid header value")
    }

    /// The trace id as an `x-request-id` value.
    pub fn request_id(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.text[Self::TRACE])
            .expect("hex digits are a valid header value")
    }
}

/// The trace id, parent span id and flags of a valid version 00 `traceparent`.
fn parse_traceparent(v: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let v = v.trim_ascii();
    let hex = |s: &[u8]| s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let all_zero = |s: &[u8]| s.iter().all(|b| *b == b'0');
    if v.len() != 55 || !v.starts_with(b"00-") || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let (trace, parent, flags) = (&v[Trace::TRACE], &v[Trace::SPAN], &v[Trace::FLAGS]);
    (hex(trace) && hex(parent) && hex(flags) && !all_zero(trace) && !all_zero(parent))
        .then_some((trace, parent, flags))
}

/// The bytes of `2 * N` lower-case hex digits (all a `Trace` holds: made
/// here or checked by `parse_traceparent`): `'0'..='9'` are 0x30..=0x39
/// and `'a'..='f'` 0x61..=0x66, so a digit's value is its low nibble, plus
/// 9 for a letter (bit 6). Parsing with `from_str_radix` cost the
/// sampler about 800 instructions a request.
fn unhex<const N: usize>(hex: &[u8]) -> [u8; N] {
    debug_assert_eq!(hex.len(), 2 * N);
    let nibble = |c: u8| (c & 0x0f) + 9 * (c >> 6);
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    out
}

/// Fills `out` (a multiple of 16 long) with random lower-case hex digits,
/// never all zero. Ids need
/// to be unique, not secret: a per-thread splitmix64 seeded from the OS is
/// enough and keeps a syscall off every request.
fn random_hex(out: &mut [u8]) {
    debug_assert_eq!(out.len() % 16, 0);
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(os_seed());
    }
    STATE.with(|state| {
        for chunk in out.chunks_exact_mut(16) {
            let z = loop {
                // splitmix64
                let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
                state.set(z);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                if z != 0 {
                    break z;
                }
            };
            chunk.copy_from_slice(&hex16(z));
        }
    });
}

/// The 16 lower-case hex digits of `z`, most significant first: each
/// nibble spread into a byte of its own, then made a digit by byte-wise
/// arithmetic, eight at a time (no table, no loop).
fn hex16(z: u64) -> [u8; 16] {
    fn spread(x: u32) -> u64 {
        let x = u64::from(x);
        let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
        let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
        (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f
    }
    fn digits(nibbles: u64) -> u64 {
        // Adding 6 carries into bit 4 exactly for 10..=15: the letters.
        let letters = ((nibbles + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        nibbles + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)
    }
    let mut out = [0; 16];
    out[..8].copy_from_slice(&digits(spread((z >> 32) as u32)).to_be_bytes());
    out[8..].copy_from_slice(&digits(spread(z as u32)).to_be_bytes());
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
    fn put_appends_exactly_the_bytes_at_every_length() {
        let source: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            for prefix in [0, 3, 8] {
                // Capacity exactly full, and with room to spare.
                for spare in [0, 64] {
                    let mut out = Vec::with_capacity(prefix + spare);
                    out.resize(prefix, 0xee);
                    put(&mut out, &source[..n]);
                    let mut expected = vec![0xee; prefix];
                    expected.extend_from_slice(&source[..n]);
                    assert_eq!(out, expected, "n {n}, prefix {prefix}, spare {spare}");
                }
            }
        }
    }

    impl Trace {
        fn span_id(&self) -> &str {
            self.str(Self::SPAN)
        }

        fn flags(&self) -> &str {
            self.str(Self::FLAGS)
        }
    }

    #[test]
    fn every_hop_by_hop_name_has_a_bit_of_its_own() {
        let bits: Vec<u8> = HOP_BY_HOP
            .iter()
            .map(|h| hop_by_hop_bit(h.as_str()))
            .collect();
        assert!(bits.iter().all(|b| b.count_ones() == 1), "{bits:?}");
        assert_eq!(bits.iter().fold(0, |all, b| all | b).count_ones(), 8);
        assert_eq!(hop_by_hop_bit("user-agent"), 0);
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers_keeps_te_trailers() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("close, X-Secret, Keep-Alive"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers, deflate"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret").is_none() && h.get("keep-alive").is_none());
        assert_eq!(h.get("te").unwrap(), "trailers");
        assert_eq!(h.get("x-keep").unwrap(), "1");
        // Upgrade alone (no Connection) is stripped too.
        let mut h = HeaderMap::new();
        h.insert("x-keep", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        strip_hop_by_hop(&mut h);
        assert_eq!(h["x-keep"], "1");
    }

    #[test]
    fn appends_forwarded_headers() {
        let trace = Trace::continue_or_start(&HeaderMap::new());
        let add = |h: &mut HeaderMap, client: &str, proto, host| {
            let ip = client.parse::<std::net::SocketAddr>().unwrap().ip();
            let added = Added::new(ClientIp::new(ip), proto, host, &trace);
            added.apply(h);
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.9"));
        add(&mut h, "[::1]:5", "https", Some("api.example".to_string()));
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.9, ::1");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "api.example");
        assert_eq!(
            h.get("forwarded").unwrap(),
            "for=\"[::1]\";proto=https;host=\"api.example\""
        );
        add(&mut h, "192.0.2.60:5", "http", None);
        assert_eq!(
            h.get("x-forwarded-for").unwrap(),
            "10.0.0.9, ::1, 192.0.2.60"
        );
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(
            h.get("forwarded").unwrap(),
            "for=\"[::1]\";proto=https;host=\"api.example\", for=192.0.2.60;proto=http"
        );
        // Without a host of its own, the client's X-Forwarded-Host stays.
        assert_eq!(h.get("x-forwarded-host").unwrap(), "api.example");
        assert_eq!(h.get("traceparent").unwrap(), trace.header());
    }

    #[test]
    fn added_headers_replace_exactly_the_ones_they_set() {
        let trace = Trace::continue_or_start(&HeaderMap::new());
        let added = Added::new(
            ClientIp::new("10.0.0.1".parse().unwrap()),
            "http",
            None,
            &trace,
        );
        let mut h = HeaderMap::new();
        added.apply(&mut h);
        let names: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-forwarded-for",
                "x-forwarded-proto",
                "forwarded",
                "traceparent"
            ]
        );
        for name in names {
            assert!(added.replaces(name), "{name}");
        }
        assert!(!added.replaces("x-forwarded-host"));
        assert!(!added.replaces("user-agent"));
    }

    #[test]
    fn traceparent_is_continued_when_valid_and_started_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let t = Trace::continue_or_start(&h);
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(t.span_id(), "00f067aa0ba902b7");
        assert_eq!(t.flags(), "01");
        assert_eq!(
            t.header(),
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", t.span_id()).as_str()
        );
        assert_eq!(t.request_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        h.insert(
            "traceparent",
            HeaderValue::from_static(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 "),
        );
        let t = Trace::continue_or_start(&h);
        assert_eq!(
            (t.trace_id(), t.flags()),
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00")
        );
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-zz-00f067aa0ba902b7-01"),
        );
        let t = Trace::continue_or_start(&h);
        assert_eq!(t.trace_id().len(), 32);
        assert_ne!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(parse_traceparent(t.header().as_bytes()).is_some());
        // All-zero ids and other versions are invalid: a new trace starts.
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert!(parse_traceparent(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn hex_digits_are_what_formatting_gives() {
        for z in [
            0,
            1,
            9,
            10,
            15,
            0x0123_4567_89ab_cdef,
            u64::MAX,
            0xa5a5_5a5a_f00f_0ff0,
        ] {
            assert_eq!(hex16(z), format!("{z:016x}").as_bytes(), "{z:x}");
        }
    }

    #[test]
    fn ids_are_read_back_as_the_bytes_their_digits_spell() {
        for z in [
            0,
            9,
            10,
            0x0123_4567_89ab_cdef,
            u64::MAX,
            0xa5a5_5a5a_f00f_0ff0,
        ] {
            assert_eq!(unhex::<8>(&hex16(z)), z.to_be_bytes(), "{z:x}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let t = Trace::continue_or_start(&h);
        assert_eq!(
            t.trace_bytes(),
            0x4bf92f3577b34da6a3ce929d0e0e4736u128.to_be_bytes()
        );
        assert_eq!(
            t.parent(),
            Some((0x00f067aa0ba902b7u64.to_be_bytes(), true))
        );
        assert_eq!(
            u64::from_be_bytes(t.span_bytes()),
            u64::from_str_radix(t.span_id(), 16).unwrap()
        );
    }

    #[test]
    fn random_ids_are_hex_and_differ() {
        let (a, b) = (
            Trace::continue_or_start(&HeaderMap::new()),
            Trace::continue_or_start(&HeaderMap::new()),
        );
        assert_ne!(a.trace_id(), b.trace_id());
        assert_ne!(a.span_id(), b.span_id());
        assert_eq!(a.flags(), "01");
        for id in [a.trace_id(), a.span_id()] {
            assert!(
                id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
    }

    #[test]
    fn ip_addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.0.0.9",
            "192.168.100.255",
            "1.20.103.4",
            "::1",
            "fe80::1:2",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ClientIp::new(ip).text(), ip.to_string().as_bytes());
        }
    }
}
