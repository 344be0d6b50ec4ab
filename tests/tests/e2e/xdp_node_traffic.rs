//! The node's own traffic under a `[dos]` policy, through
//! BPF_PROG_TEST_RUN: replies to connections it opened pass
//! `unprotected_ports = "drop"` (and nothing else does), and IPv6
//! neighbours on the link cannot starve each other: link-local sources
//! have a bucket per address, and neighbour discovery none at all. Lists,
//! bans and flag checks hold for all of it.

use std::time::Duration;

use edgegw::datapath::{self, Cidr};
use edgegw_tests::{
    packets::*,
    xdp::{TestProgram, dos_policy},
};
use gateway_common::Reason;

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

/// The ephemeral range the daemon's code reads (this process's network
/// namespace, as `apply_policy` runs in it).
fn ephemeral() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut it = text.split_whitespace().map(|s| s.parse::<u16>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn tcp4(src: [u8; 4], port: u16, flags: u8) -> Vec<u8> {
    ether(ETH_IPV4, &[], &ipv4(src, PROTO_TCP, &tcp(port, flags)))
}

fn udp4(src: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    ether(
        ETH_IPV4,
        &[],
        &ipv4(src, PROTO_UDP, &udp_from(sport, dport, b"answer")),
    )
}

fn tcp6(src: [u8; 16], port: u16, flags: u8) -> Vec<u8> {
    ether(ETH_IPV6, &[], &ipv6(src, PROTO_TCP, &tcp(port, flags)))
}

const FILTERED: &str = r#"unprotected_ports = "drop"
deny = ["198.51.100.0/24"]
[[dos.port_groups]]
name = "web"
tcp = [8080]"#;

#[test]
fn replies_to_the_nodes_connections_pass_the_port_filter_and_nothing_else() {
    let (lo, hi) = ephemeral();
    let mid = lo + (hi - lo) / 2;
    let below = lo - 1;
    let prog = TestProgram::configured(FILTERED);
    datapath::ban(&prog.pins, cidr("203.0.113.0/24"), Duration::from_secs(600)).unwrap();
    let peer = [192, 0, 2, 10];
    let peer6 = v6(0x2001, 10);
    use Reason::*;
    let mut cases: Vec<(String, Vec<u8>, Reason)> = vec![
        (
            "SYN+ACK to the lowest ephemeral port".into(),
            tcp4(peer, lo, SYN | ACK),
            Passed,
        ),
        ("ACK to the highest".into(), tcp4(peer, hi, ACK), Passed),
        ("PSH+ACK".into(), tcp4(peer, mid, PSH | ACK), Passed),
        ("FIN+ACK".into(), tcp4(peer, mid, FIN | ACK), Passed),
        ("RST".into(), tcp4(peer, mid, RST), Passed),
        ("RST+ACK".into(), tcp4(peer, mid, RST | ACK), Passed),
        (
            "SYN to an ephemeral port".into(),
            tcp4(peer, mid, SYN),
            PortFiltered,
        ),
        (
            "ACK below the range".into(),
            tcp4(peer, below, ACK),
            PortFiltered,
        ),
        (
            "ACK to a closed well-known port".into(),
            tcp4(peer, 22, ACK),
            PortFiltered,
        ),
        (
            "SYN to a protected port".into(),
            tcp4(peer, 8080, SYN),
            Passed,
        ),
        (
            "IPv6 ACK to an ephemeral port".into(),
            tcp6(peer6, mid, ACK),
            Passed,
        ),
        (
            "IPv6 SYN to an ephemeral port".into(),
            tcp6(peer6, mid, SYN),
            PortFiltered,
        ),
        ("DNS answer".into(), udp4(peer, 53, mid), Passed),
        ("NTP answer".into(), udp4(peer, 123, lo), Passed),
        (
            "UDP from another port".into(),
            udp4(peer, 5353, mid),
            PortFiltered,
        ),
        (
            "UDP from 53 below the range".into(),
            udp4(peer, 53, below),
            PortFiltered,
        ),
        (
            "UDP from 53 to a closed port".into(),
            udp4(peer, 53, 22),
            PortFiltered,
        ),
        // What the rule lets through still meets every other check.
        (
            "denied ACK".into(),
            tcp4([198, 51, 100, 1], mid, ACK),
            Denied,
        ),
        (
            "denied DNS answer".into(),
            udp4([198, 51, 100, 1], 53, mid),
            Denied,
        ),
        (
            "banned ACK".into(),
            tcp4([203, 0, 113, 1], mid, ACK),
            Banned,
        ),
        ("FIN without ACK".into(), tcp4(peer, mid, FIN), BadTcpFlags),
        ("no flags".into(), tcp4(peer, mid, 0), BadTcpFlags),
    ];
    if hi < u16::MAX {
        cases.push((
            "ACK above the range".into(),
            tcp4(peer, hi + 1, ACK),
            PortFiltered,
        ));
        cases.push((
            "DNS above the range".into(),
            udp4(peer, 53, hi + 1),
            PortFiltered,
        ));
    }
    for (what, frame, reason) in &cases {
        prog.expect(what, frame, *reason);
    }

    // Without the drop policy nothing is marked and every port passes.
    let open = TestProgram::configured("unprotected_ports = \"pass\"");
    open.expect(
        "SYN to an ephemeral port, ports open",
        &tcp4(peer, mid, SYN),
        Passed,
    );
    open.expect("UDP, ports open", &udp4(peer, 5353, 22), Passed);
}

#[test]
fn replies_are_charged_to_the_sources_global_buckets() {
    let (lo, _) = ephemeral();
    let prog = TestProgram::configured(&format!(
        "packets_per_sec = 1\npacket_burst = 3\n{FILTERED}"
    ));
    let peer = [192, 0, 2, 20];
    for i in 0..3 {
        prog.expect(&format!("ACK {i}"), &tcp4(peer, lo, ACK), Reason::Passed);
    }
    prog.expect(
        "ACK over the burst",
        &tcp4(peer, lo, ACK),
        Reason::RateLimited,
    );
    prog.expect(
        "DNS over the burst",
        &udp4(peer, 53, lo),
        Reason::RateLimited,
    );
    let top = datapath::top(&prog.pins, 10).unwrap();
    assert_eq!(
        (top[0].source.as_str(), top[0].packets, top[0].dropped),
        ("192.0.2.20", 5, 2),
        "{top:?}"
    );
}

#[test]
fn reply_marks_follow_policy_updates() {
    let (lo, _) = ephemeral();
    let peer = [192, 0, 2, 30];
    let prog = TestProgram::configured(&format!("udp_reply_ports = [5353]\n{FILTERED}"));
    prog.expect("UDP from 5353", &udp4(peer, 5353, lo), Reason::Passed);
    prog.expect(
        "UDP from 53 is no longer a reply",
        &udp4(peer, 53, lo),
        Reason::PortFiltered,
    );
    datapath::apply_policy(&prog.pins, Some(&dos_policy(FILTERED))).unwrap();
    prog.expect("5353 unmarked", &udp4(peer, 5353, lo), Reason::PortFiltered);
    prog.expect("53 marked", &udp4(peer, 53, lo), Reason::Passed);
    // Ports open: marks cleared; closed again: marks back.
    datapath::apply_policy(
        &prog.pins,
        Some(&dos_policy("deny = [\"198.51.100.0/24\"]")),
    )
    .unwrap();
    prog.expect("open", &tcp4(peer, 22, SYN), Reason::Passed);
    datapath::apply_policy(&prog.pins, Some(&dos_policy(FILTERED))).unwrap();
    prog.expect("closed again", &tcp4(peer, 22, SYN), Reason::PortFiltered);
    prog.expect("reply again", &tcp4(peer, lo, ACK), Reason::Passed);
}

fn link_local(last: u16) -> [u8; 16] {
    v6(0xfe80, last)
}

/// Neighbour discovery of `kind` from `src` with hop limit `hops`.
fn nd(src: [u8; 16], kind: u8, hops: u8) -> Vec<u8> {
    ether(
        ETH_IPV6,
        &[],
        &ipv6_hops(src, PROTO_ICMPV6, hops, &icmpv6(kind)),
    )
}

#[test]
fn link_local_neighbours_have_their_own_buckets() {
    let prog = TestProgram::configured("packets_per_sec = 1\npacket_burst = 2\nipv6_prefix = 64");
    let (a, b) = (link_local(1), link_local(2));
    for i in 0..2 {
        prog.expect(
            &format!("fe80::1 ACK {i}"),
            &tcp6(a, 443, ACK),
            Reason::Passed,
        );
    }
    prog.expect(
        "fe80::1 over its burst",
        &tcp6(a, 443, ACK),
        Reason::RateLimited,
    );
    prog.expect(
        "fe80::2, same /64, own bucket",
        &tcp6(b, 443, ACK),
        Reason::Passed,
    );
    // fe80::/10, not only fe80::/64.
    let mut febf = link_local(1);
    febf[1] = 0xbf;
    prog.expect("febf::1", &tcp6(febf, 443, ACK), Reason::Passed);
    // A global /64 stays one source.
    let (g1, g2) = (v6(0x2001, 1), v6(0x2001, 2));
    prog.expect("2001::1", &tcp6(g1, 443, ACK), Reason::Passed);
    prog.expect(
        "2001::2 of the same /64",
        &tcp6(g2, 443, ACK),
        Reason::Passed,
    );
    prog.expect(
        "the /64's bucket is spent",
        &tcp6(g1, 443, ACK),
        Reason::RateLimited,
    );

    let top = datapath::top(&prog.pins, 10).unwrap();
    let row = |s: &str| {
        top.iter()
            .find(|r| r.source == s)
            .unwrap_or_else(|| panic!("{s}: {top:?}"))
    };
    assert_eq!(
        (row("fe80::1/128").packets, row("fe80::1/128").dropped),
        (3, 1)
    );
    assert_eq!(row("fe80::2/128").packets, 1);
    assert_eq!(row("febf::1/128").packets, 1);
    assert_eq!((row("2001::/64").packets, row("2001::/64").dropped), (3, 1));
}

#[test]
fn neighbour_discovery_is_never_rate_limited_but_lists_and_bans_hold() {
    let prog = TestProgram::configured(
        "packets_per_sec = 1\npacket_burst = 1\ndeny = [\"fe80::bad/128\"]",
    );
    datapath::ban(&prog.pins, cidr("fe80::dead/128"), Duration::from_secs(600)).unwrap();
    let flooder = link_local(1);
    prog.expect(
        "flooder's first packet",
        &tcp6(flooder, 443, ACK),
        Reason::Passed,
    );
    prog.expect(
        "flooder limited",
        &tcp6(flooder, 443, ACK),
        Reason::RateLimited,
    );
    // Every kind of neighbour discovery, well beyond any burst, from the
    // flooder itself, another neighbour, the unspecified address (duplicate
    // address detection) and a global address.
    let unspecified = [0u8; 16];
    for src in [flooder, link_local(2), unspecified, v6(0x2001, 5)] {
        for kind in 133..=137 {
            for i in 0..5 {
                prog.expect(
                    &format!("ND type {kind} #{i}"),
                    &nd(src, kind, 255),
                    Reason::Passed,
                );
            }
        }
    }
    // Not neighbour discovery: limited as usual.
    let other = link_local(3);
    prog.expect("echo request", &nd(other, 128, 255), Reason::Passed);
    prog.expect(
        "second echo request",
        &nd(other, 128, 255),
        Reason::RateLimited,
    );
    let routed = link_local(4);
    prog.expect("NS with hop limit 64", &nd(routed, 135, 64), Reason::Passed);
    prog.expect(
        "routed NS: not ND",
        &nd(routed, 135, 64),
        Reason::RateLimited,
    );
    let fragmented = ether(
        ETH_IPV6,
        &[],
        &ipv6_hops(
            link_local(5),
            44,
            255,
            &ipv6_frag(PROTO_ICMPV6, 0, true, &icmpv6(135)),
        ),
    );
    prog.expect("fragmented NS", &fragmented, Reason::Passed);
    prog.expect("fragmented NS: not ND", &fragmented, Reason::RateLimited);
    // Lists and bans hold.
    let mut denied = link_local(0x0bad);
    prog.expect("denied NS", &nd(denied, 135, 255), Reason::Denied);
    denied[15] = 0xad;
    denied[14] = 0xde;
    prog.expect("banned NA", &nd(denied, 136, 255), Reason::Banned);
}
