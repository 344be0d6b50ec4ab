//! Packet fixtures through BPF_PROG_TEST_RUN for the parser: every parse path
//! and every truncation point, each checked for verdict and counter change.

use edgegw_tests::{
    packets::*,
    xdp::{TestProgram, XDP_DROP, XDP_PASS},
};
use gateway_common::Reason;

const SRC4: [u8; 4] = [192, 0, 2, 7];

struct Fixture {
    what: &'static str,
    frame: Vec<u8>,
    reason: Reason,
}

fn f(what: &'static str, frame: Vec<u8>, reason: Reason) -> Fixture {
    Fixture {
        what,
        frame,
        reason,
    }
}

/// Runs the frame and checks the verdict and that exactly the expected
/// reason counted one packet of the frame's size.
fn check(prog: &TestProgram, fx: &Fixture) {
    let before: Vec<(u64, u64)> = Reason::ALL.iter().map(|&r| prog.counter(r)).collect();
    let verdict = prog.run(&fx.frame);
    let want = if fx.reason.is_pass() {
        XDP_PASS
    } else {
        XDP_DROP
    };
    assert_eq!(verdict, want, "{}: verdict", fx.what);
    for (i, &r) in Reason::ALL.iter().enumerate() {
        let (p, b) = prog.counter(r);
        let (dp, db) = (p - before[i].0, b - before[i].1);
        if r == fx.reason {
            assert_eq!(
                (dp, db),
                (1, fx.frame.len() as u64),
                "{}: counter {}",
                fx.what,
                r.name()
            );
        } else {
            assert_eq!((dp, db), (0, 0), "{}: counter {} moved", fx.what, r.name());
        }
    }
}

fn v4_tcp() -> Vec<u8> {
    ether(ETH_IPV4, &[], &ipv4(SRC4, PROTO_TCP, &tcp(80, SYN)))
}

fn fixtures() -> Vec<Fixture> {
    use Reason::{Malformed, Passed};
    let src6 = v6(0x2001, 7);
    let mut bad_version = ipv4(SRC4, PROTO_TCP, &tcp(80, ACK));
    bad_version[0] = 0x65;
    let mut ihl4 = ipv4(SRC4, PROTO_TCP, &tcp(80, ACK));
    ihl4[0] = 0x44;
    let mut total_too_long = ipv4(SRC4, PROTO_TCP, &tcp(80, ACK));
    total_too_long[2..4].copy_from_slice(&100u16.to_be_bytes());
    let mut total_below_ihl = ipv4(SRC4, PROTO_TCP, &tcp(80, ACK));
    total_below_ihl[2..4].copy_from_slice(&16u16.to_be_bytes());
    let mut padded = ether(ETH_IPV4, &[], &ipv4(SRC4, PROTO_UDP, &udp(53, b"q")));
    padded.extend_from_slice(&[0; 20]);
    let mut doff4 = tcp(80, ACK);
    doff4[12] = 4 << 4;
    let mut doff_past_ip = tcp(80, ACK);
    doff_past_ip[12] = 15 << 4;
    let mut udp_len_short = udp(53, b"abc");
    udp_len_short[4..6].copy_from_slice(&7u16.to_be_bytes());
    let mut udp_len_long = udp(53, b"abc");
    udp_len_long[4..6].copy_from_slice(&200u16.to_be_bytes());
    let mut v6_bad_version = ipv6(src6, PROTO_TCP, &tcp(443, SYN));
    v6_bad_version[0] = 0x40;
    let mut v6_payload_long = ipv6(src6, PROTO_TCP, &tcp(443, SYN));
    v6_payload_long[4..6].copy_from_slice(&500u16.to_be_bytes());
    // Nine hop-by-hop style headers: more than the parser follows.
    let mut deep = tcp(443, ACK);
    let mut next = PROTO_TCP;
    for _ in 0..9 {
        deep = ipv6_ext(next, 0, &deep);
        next = 60;
    }
    let mut ah = vec![PROTO_TCP, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]; // 12 bytes: (1 + 2) * 4
    ah.extend_from_slice(&tcp(443, ACK));

    vec![
        f("ARP passes unparsed", ether(ETH_ARP, &[], &[0; 28]), Passed),
        f("IPv4 TCP SYN", v4_tcp(), Passed),
        f(
            "IPv4 UDP",
            ether(ETH_IPV4, &[], &ipv4(SRC4, PROTO_UDP, &udp(53, b"query"))),
            Passed,
        ),
        f(
            "IPv4 ICMP",
            ether(
                ETH_IPV4,
                &[],
                &ipv4(SRC4, PROTO_ICMP, &[8, 0, 0, 0, 0, 1, 0, 1]),
            ),
            Passed,
        ),
        f(
            "IPv4 with 4 bytes of options",
            ether(
                ETH_IPV4,
                &[],
                &ipv4_full(SRC4, PROTO_TCP, &[1, 1, 1, 0], 0, &tcp(80, ACK)),
            ),
            Passed,
        ),
        f(
            "IPv4 with 40 bytes of options (IHL 15)",
            ether(
                ETH_IPV4,
                &[],
                &ipv4_full(SRC4, PROTO_TCP, &[1; 40], 0, &tcp(80, ACK)),
            ),
            Passed,
        ),
        f(
            "IPv4 version field is not 4",
            ether(ETH_IPV4, &[], &bad_version),
            Malformed,
        ),
        f("IPv4 IHL below 5", ether(ETH_IPV4, &[], &ihl4), Malformed),
        f(
            "IPv4 total length beyond the frame",
            ether(ETH_IPV4, &[], &total_too_long),
            Malformed,
        ),
        f(
            "IPv4 total length below the header",
            ether(ETH_IPV4, &[], &total_below_ihl),
            Malformed,
        ),
        f("IPv4 frame with Ethernet padding", padded, Passed),
        f(
            "TCP data offset below 5",
            ether(ETH_IPV4, &[], &ipv4(SRC4, PROTO_TCP, &doff4)),
            Malformed,
        ),
        f(
            "TCP data offset past the datagram",
            ether(ETH_IPV4, &[], &ipv4(SRC4, PROTO_TCP, &doff_past_ip)),
            Malformed,
        ),
        f(
            "TCP with options",
            ether(
                ETH_IPV4,
                &[],
                &ipv4(
                    SRC4,
                    PROTO_TCP,
                    &tcp_full(80, SYN, &[2, 4, 5, 0xb4, 4, 2], &[]),
                ),
            ),
            Passed,
        ),
        f(
            "UDP length below 8",
            ether(ETH_IPV4, &[], &ipv4(SRC4, PROTO_UDP, &udp_len_short)),
            Malformed,
        ),
        f(
            "UDP length past the datagram",
            ether(ETH_IPV4, &[], &ipv4(SRC4, PROTO_UDP, &udp_len_long)),
            Malformed,
        ),
        f(
            "IPv4 first fragment",
            ether(
                ETH_IPV4,
                &[],
                &ipv4_full(SRC4, PROTO_UDP, &[], 0x2000, &udp_len_long),
            ),
            Passed,
        ),
        f(
            "IPv4 later fragment",
            ether(
                ETH_IPV4,
                &[],
                &ipv4_full(SRC4, PROTO_UDP, &[], 0x2000 | 185, &[0xaa; 40]),
            ),
            Passed,
        ),
        f(
            "IPv4 last fragment",
            ether(
                ETH_IPV4,
                &[],
                &ipv4_full(SRC4, PROTO_TCP, &[], 370, &[0xaa; 3]),
            ),
            Passed,
        ),
        f(
            "802.1Q tagged IPv4",
            ether(
                ETH_IPV4,
                &[TPID_8021Q],
                &ipv4(SRC4, PROTO_TCP, &tcp(80, SYN)),
            ),
            Passed,
        ),
        f(
            "802.1ad + 802.1Q (QinQ) IPv6",
            ether(
                ETH_IPV6,
                &[TPID_8021AD, TPID_8021Q],
                &ipv6(src6, PROTO_UDP, &udp(53, b"x")),
            ),
            Passed,
        ),
        f(
            "three VLAN tags are walked: a malformed IPv4 behind them",
            ether(ETH_IPV4, &[TPID_8021AD, TPID_8021Q, TPID_8021Q], &[0x45]),
            Malformed,
        ),
        f(
            "eight VLAN tags then IPv4 TCP",
            ether(
                ETH_IPV4,
                &[TPID_8021Q; 8],
                &ipv4(SRC4, PROTO_TCP, &tcp(80, SYN)),
            ),
            Passed,
        ),
        // Unparsed frames pass while nothing is enforced (xdp_tags tests
        // them under a policy).
        f(
            "nine VLAN tags, no policy: fail open",
            ether(
                ETH_IPV4,
                &[TPID_8021Q; 9],
                &ipv4(SRC4, PROTO_TCP, &tcp(80, SYN)),
            ),
            Passed,
        ),
        f(
            "MPLS, no policy: fail open",
            ether(ETH_MPLS, &[], &[0, 0, 0x11, 64]),
            Passed,
        ),
        f(
            "LLDP carries no IP",
            ether(0x88cc, &[TPID_8021Q], &[0; 20]),
            Passed,
        ),
        f(
            "802.3 length field (LLC) carries no IP",
            ether(46, &[], &[0x42, 0x42, 3, 0, 0, 0, 0, 0]),
            Passed,
        ),
        f(
            "QinQ with a malformed inner IPv4",
            ether(ETH_IPV4, &[TPID_8021AD, TPID_8021Q], &ihl4),
            Malformed,
        ),
        f(
            "IPv6 TCP",
            ether(ETH_IPV6, &[], &ipv6(src6, PROTO_TCP, &tcp(443, SYN))),
            Passed,
        ),
        f(
            "IPv6 UDP",
            ether(ETH_IPV6, &[], &ipv6(src6, PROTO_UDP, &udp(53, b"q"))),
            Passed,
        ),
        f(
            "IPv6 hop-by-hop, routing, destination options, then TCP",
            ether(
                ETH_IPV6,
                &[],
                &ipv6(
                    src6,
                    0,
                    &ipv6_ext(
                        43,
                        0,
                        &ipv6_ext(60, 1, &ipv6_ext(PROTO_TCP, 0, &tcp(443, ACK))),
                    ),
                ),
            ),
            Passed,
        ),
        f(
            "IPv6 hop-by-hop after a routing header",
            ether(
                ETH_IPV6,
                &[],
                &ipv6(
                    src6,
                    43,
                    &ipv6_ext(0, 0, &ipv6_ext(PROTO_TCP, 0, &tcp(443, ACK))),
                ),
            ),
            Malformed,
        ),
        f(
            "IPv6 authentication header then TCP",
            ether(ETH_IPV6, &[], &ipv6(src6, 51, &ah)),
            Passed,
        ),
        f(
            "IPv6 first fragment",
            ether(
                ETH_IPV6,
                &[],
                &ipv6(src6, 44, &ipv6_frag(PROTO_UDP, 0, true, &udp_len_long)),
            ),
            Passed,
        ),
        f(
            "IPv6 later fragment",
            ether(
                ETH_IPV6,
                &[],
                &ipv6(src6, 44, &ipv6_frag(PROTO_UDP, 100, false, &[0xbb; 16])),
            ),
            Passed,
        ),
        f(
            "IPv6 no next header",
            ether(ETH_IPV6, &[], &ipv6(src6, 59, &[])),
            Passed,
        ),
        f(
            "IPv6 version field is not 6",
            ether(ETH_IPV6, &[], &v6_bad_version),
            Malformed,
        ),
        f(
            "IPv6 payload length beyond the frame",
            ether(ETH_IPV6, &[], &v6_payload_long),
            Malformed,
        ),
        f(
            "IPv6 extension header longer than the payload",
            ether(
                ETH_IPV6,
                &[],
                &ipv6(src6, 0, &[PROTO_TCP, 10, 0, 0, 0, 0, 0, 0]),
            ),
            Malformed,
        ),
        f(
            "IPv6 with nine extension headers, no policy: fail open",
            ether(ETH_IPV6, &[], &ipv6(src6, 60, &deep)),
            Passed,
        ),
    ]
}

#[test]
fn every_parse_path_gives_its_verdict_and_counter() {
    let prog = TestProgram::load();
    for fx in fixtures() {
        check(&prog, &fx);
    }
}

/// Cutting a frame anywhere inside its headers (from the end of the Ethernet
/// header on: BPF_PROG_TEST_RUN refuses frames shorter than 14 bytes) makes
/// the IP length fields inconsistent or a header unreadable: malformed.
#[test]
fn every_truncation_point_is_malformed() {
    let prog = TestProgram::load();
    let src6 = v6(0x2001, 9);
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("IPv4 TCP", v4_tcp()),
        (
            "IPv4 options TCP options",
            ether(
                ETH_IPV4,
                &[],
                &ipv4_full(
                    SRC4,
                    PROTO_TCP,
                    &[1; 8],
                    0,
                    &tcp_full(80, SYN, &[1; 8], &[]),
                ),
            ),
        ),
        (
            "IPv4 UDP",
            ether(ETH_IPV4, &[], &ipv4(SRC4, PROTO_UDP, &udp(53, b"abcd"))),
        ),
        (
            "802.1Q IPv4 TCP",
            ether(
                ETH_IPV4,
                &[TPID_8021Q],
                &ipv4(SRC4, PROTO_TCP, &tcp(80, SYN)),
            ),
        ),
        (
            "QinQ IPv4 UDP",
            ether(
                ETH_IPV4,
                &[TPID_8021AD, TPID_8021Q],
                &ipv4(SRC4, PROTO_UDP, &udp(53, b"")),
            ),
        ),
        (
            "IPv6 TCP",
            ether(ETH_IPV6, &[], &ipv6(src6, PROTO_TCP, &tcp(443, SYN))),
        ),
        (
            "IPv6 ext UDP",
            ether(
                ETH_IPV6,
                &[],
                &ipv6(
                    src6,
                    0,
                    &ipv6_ext(44, 0, &ipv6_frag(PROTO_UDP, 0, false, &udp(53, b"z"))),
                ),
            ),
        ),
    ];
    for (what, frame) in frames {
        check(&prog, &f("complete frame", frame.clone(), Reason::Passed));
        for len in 14..frame.len() {
            let name = format!("{what} cut to {len} of {} bytes", frame.len());
            let fx = Fixture {
                what: Box::leak(name.into_boxed_str()),
                frame: frame[..len].to_vec(),
                reason: Reason::Malformed,
            };
            check(&prog, &fx);
        }
    }
}
