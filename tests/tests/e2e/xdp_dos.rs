//! DoS verdicts through BPF_PROG_TEST_RUN: the shipped program with a
//! policy written to its pinned maps by the daemon's own code
//! (`datapath::apply_policy`, `datapath::ban`), one fixture per reason and
//! edge case, each checked for verdict and exactly one counter.

use std::time::Duration;

use edgegw::datapath::{self, Cidr};
use edgegw_tests::{
    packets::*,
    xdp::{TestProgram, dos_policy},
};
use gateway_common::{MAX_BANS, Reason};

const SRC: [u8; 4] = [192, 0, 2, 7];

fn tcp4(src: [u8; 4], port: u16, flags: u8) -> Vec<u8> {
    ether(ETH_IPV4, &[], &ipv4(src, PROTO_TCP, &tcp(port, flags)))
}

fn tcp6(src: [u8; 16], port: u16, flags: u8) -> Vec<u8> {
    ether(ETH_IPV6, &[], &ipv6(src, PROTO_TCP, &tcp(port, flags)))
}

fn udp4(src: [u8; 4], port: u16) -> Vec<u8> {
    ether(ETH_IPV4, &[], &ipv4(src, PROTO_UDP, &udp(port, b"q")))
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

#[test]
fn without_a_policy_parsed_packets_pass_unless_banned() {
    let prog = TestProgram::load();
    prog.expect(
        "SYN+FIN, no policy",
        &tcp4(SRC, 80, SYN | FIN),
        Reason::Passed,
    );
    // A policy that is removed again fails open too.
    datapath::apply_policy(&prog.pins, Some(&dos_policy("deny = [\"192.0.2.0/24\"]"))).unwrap();
    prog.expect("denied", &tcp4(SRC, 80, ACK), Reason::Denied);
    datapath::apply_policy(&prog.pins, None).unwrap();
    prog.expect("policy removed", &tcp4(SRC, 80, ACK), Reason::Passed);
    // An operator's ban holds even without a policy; nothing else does.
    datapath::ban(&prog.pins, cidr("192.0.2.0/24"), Duration::from_secs(60)).unwrap();
    prog.expect(
        "banned without a policy",
        &tcp4(SRC, 80, ACK),
        Reason::Banned,
    );
    prog.expect(
        "other sources still pass",
        &tcp4([198, 51, 100, 1], 80, SYN | FIN),
        Reason::Passed,
    );
    let mut bad = tcp4(SRC, 80, ACK);
    bad[14] = 0x44;
    prog.expect("malformed is still dropped", &bad, Reason::Malformed);
}

#[test]
fn deny_allow_and_their_precedence() {
    let prog = TestProgram::configured(
        r#"deny = ["192.0.2.0/24", "2001:db8:bad::/48"]
           allow = ["192.0.2.7/32", "2001:db8:bad:1::/64"]"#,
    );
    prog.expect("denied v4", &tcp4([192, 0, 2, 8], 80, ACK), Reason::Denied);
    prog.expect(
        "allow wins over deny v4",
        &tcp4(SRC, 80, ACK),
        Reason::Passed,
    );
    let mut denied6 = v6(0x2001, 9);
    denied6[2..6].copy_from_slice(&[0x0d, 0xb8, 0x0b, 0xad]);
    prog.expect("denied v6", &tcp6(denied6, 443, ACK), Reason::Denied);
    let mut allowed6 = denied6;
    allowed6[7] = 1;
    prog.expect(
        "allow wins over deny v6",
        &tcp6(allowed6, 443, ACK),
        Reason::Passed,
    );
    prog.expect(
        "other source",
        &tcp4([198, 51, 100, 1], 80, ACK),
        Reason::Passed,
    );
    // Allow bypasses every check, including flags.
    prog.expect(
        "allowed bad flags",
        &tcp4(SRC, 80, SYN | FIN),
        Reason::Passed,
    );
    // The source is found behind VLAN tags, IPv4 options and IPv6 extension headers.
    let tagged = ether(
        ETH_IPV4,
        &[TPID_8021AD, TPID_8021Q],
        &ipv4([192, 0, 2, 9], PROTO_TCP, &tcp(80, ACK)),
    );
    prog.expect("denied behind QinQ", &tagged, Reason::Denied);
    let opts = ether(
        ETH_IPV4,
        &[],
        &ipv4_full([192, 0, 2, 9], PROTO_TCP, &[1; 12], 0, &tcp(80, ACK)),
    );
    prog.expect("denied with IPv4 options", &opts, Reason::Denied);
    let ext = ether(
        ETH_IPV6,
        &[],
        &ipv6(
            denied6,
            0,
            &ipv6_ext(60, 0, &ipv6_ext(PROTO_TCP, 1, &tcp(443, ACK))),
        ),
    );
    prog.expect("denied with IPv6 extension headers", &ext, Reason::Denied);
}

#[test]
fn bans_expire_and_yield_to_the_allow_list() {
    let prog = TestProgram::configured(r#"allow = ["192.0.2.7/32"]"#);
    datapath::ban(&prog.pins, cidr("192.0.2.0/24"), Duration::from_millis(400)).unwrap();
    datapath::ban(&prog.pins, cidr("2001:db8::/32"), Duration::from_secs(600)).unwrap();
    prog.expect("banned v4", &tcp4([192, 0, 2, 8], 80, ACK), Reason::Banned);
    prog.expect("allow wins over a ban", &tcp4(SRC, 80, ACK), Reason::Passed);
    let mut src6 = v6(0x2001, 1);
    src6[2..4].copy_from_slice(&[0x0d, 0xb8]);
    prog.expect("banned v6", &tcp6(src6, 443, ACK), Reason::Banned);
    let bans = datapath::list_bans(&prog.pins).unwrap();
    assert_eq!(bans.len(), 2, "{bans:?}");
    assert_eq!(bans[0].cidr, "192.0.2.0/24");
    assert_eq!(bans[1].cidr, "2001:db8::/32");
    assert!(bans[1].expires_in_secs > 590 && bans[1].expires_in_secs <= 600);

    std::thread::sleep(Duration::from_millis(500));
    prog.expect(
        "expired ban",
        &tcp4([192, 0, 2, 8], 80, ACK),
        Reason::Passed,
    );
    assert_eq!(
        datapath::list_bans(&prog.pins).unwrap().len(),
        1,
        "expired bans are not listed"
    );
    datapath::unban(&prog.pins, cidr("2001:db8::/32")).unwrap();
    prog.expect("unbanned v6", &tcp6(src6, 443, ACK), Reason::Passed);
    let err = datapath::unban(&prog.pins, cidr("2001:db8::/32"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not banned"), "{err}");
}

#[test]
fn a_full_ban_list_is_an_error_and_expired_bans_make_room() {
    let prog = TestProgram::configured("");
    for i in 0..MAX_BANS {
        let b = i.to_be_bytes();
        datapath::ban(
            &prog.pins,
            Cidr::V4([10, b[1], b[2], b[3]], 32),
            Duration::from_secs(60),
        )
        .unwrap();
    }
    let err = datapath::ban(&prog.pins, cidr("192.0.2.1"), Duration::from_secs(60))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ban list is full") && err.contains("edgegw unban"),
        "{err}"
    );
    // Re-banning an already banned block updates it in place.
    datapath::ban(&prog.pins, cidr("10.0.0.5"), Duration::from_secs(120)).unwrap();
    // Replace one ban by a short one; once it expired, a new ban fits.
    datapath::ban(&prog.pins, cidr("10.0.0.6"), Duration::from_millis(100)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    datapath::ban(&prog.pins, cidr("192.0.2.1"), Duration::from_secs(60)).unwrap();
    prog.expect(
        "the new ban holds",
        &tcp4([192, 0, 2, 1], 80, ACK),
        Reason::Banned,
    );
}

#[test]
fn every_bad_tcp_flag_combination_drops() {
    let prog = TestProgram::configured("");
    for (name, flags) in [
        ("SYN+FIN", SYN | FIN),
        ("SYN+RST", SYN | RST),
        ("SYN+FIN+ACK", SYN | FIN | ACK),
        ("no flags", 0),
        ("FIN without ACK", FIN),
        ("PSH without ACK", PSH),
        ("URG without ACK", URG),
        ("FIN+PSH+URG (xmas)", FIN | PSH | URG),
    ] {
        prog.expect(name, &tcp4(SRC, 80, flags), Reason::BadTcpFlags);
        prog.expect(name, &tcp6(v6(0x2001, 5), 80, flags), Reason::BadTcpFlags);
    }
    for (name, flags) in [
        ("SYN", SYN),
        ("SYN+ACK", SYN | ACK),
        ("ACK", ACK),
        ("RST", RST),
        ("FIN+ACK", FIN | ACK),
        ("PSH+ACK", PSH | ACK),
        ("URG+ACK", URG | ACK),
    ] {
        prog.expect(name, &tcp4(SRC, 80, flags), Reason::Passed);
    }
}

#[test]
fn ports_outside_every_group_follow_the_policy() {
    let groups = r#"
        [[dos.port_groups]]
        name = "web"
        tcp = [8080]
        udp = [5353]"#;
    let prog = TestProgram::configured(&format!("unprotected_ports = \"drop\"{groups}"));
    prog.expect("protected TCP", &tcp4(SRC, 8080, SYN), Reason::Passed);
    prog.expect("protected UDP", &udp4(SRC, 5353), Reason::Passed);
    prog.expect("unprotected TCP", &tcp4(SRC, 22, SYN), Reason::PortFiltered);
    prog.expect(
        "UDP on the TCP port",
        &udp4(SRC, 8080),
        Reason::PortFiltered,
    );
    prog.expect("unprotected UDP", &udp4(SRC, 53), Reason::PortFiltered);
    let icmp = ether(
        ETH_IPV4,
        &[],
        &ipv4(SRC, PROTO_ICMP, &[8, 0, 0, 0, 0, 1, 0, 1]),
    );
    prog.expect("ICMP has no port", &icmp, Reason::Passed);

    let open = TestProgram::configured(&format!("unprotected_ports = \"pass\"{groups}"));
    open.expect(
        "unprotected TCP passes",
        &tcp4(SRC, 22, SYN),
        Reason::Passed,
    );
}

#[test]
fn fragments_follow_the_policy() {
    let first4 = ether(
        ETH_IPV4,
        &[],
        &ipv4_full(SRC, PROTO_UDP, &[], 0x2000, &udp(53, &[0; 16])),
    );
    let later4 = ether(
        ETH_IPV4,
        &[],
        &ipv4_full(SRC, PROTO_UDP, &[], 185, &[0xaa; 16]),
    );
    let src6 = v6(0x2001, 3);
    let first6 = ether(
        ETH_IPV6,
        &[],
        &ipv6(src6, 44, &ipv6_frag(PROTO_UDP, 0, true, &udp(53, &[0; 16]))),
    );
    let later6 = ether(
        ETH_IPV6,
        &[],
        &ipv6(src6, 44, &ipv6_frag(PROTO_UDP, 100, false, &[0xbb; 16])),
    );
    let frames = [
        ("IPv4 first", &first4),
        ("IPv4 later", &later4),
        ("IPv6 first", &first6),
        ("IPv6 later", &later6),
    ];

    let drop = TestProgram::configured("fragments = \"drop\"");
    for (what, frame) in frames {
        drop.expect(what, frame, Reason::Fragment);
    }
    drop.expect("unfragmented", &udp4(SRC, 53), Reason::Passed);
    let pass = TestProgram::configured(
        "fragments = \"pass\"\nunprotected_ports = \"drop\"\nport_groups = [{ name = \"dns\", udp = [53] }]",
    );
    for (what, frame) in frames {
        // A later fragment has no port: it is not port filtered.
        pass.expect(what, frame, Reason::Passed);
    }
}

#[test]
fn packet_bucket_limits_each_source_per_port_group() {
    let prog = TestProgram::configured(
        r#"packets_per_sec = 1
           packet_burst = 5
           [[dos.port_groups]]
           name = "api"
           tcp = [8080]
           packet_burst = 2"#,
    );
    for i in 0..5 {
        prog.expect(
            &format!("global burst {i}"),
            &tcp4(SRC, 80, ACK),
            Reason::Passed,
        );
    }
    prog.expect(
        "global burst exhausted",
        &tcp4(SRC, 80, ACK),
        Reason::RateLimited,
    );
    for i in 0..2 {
        prog.expect(
            &format!("group burst {i}"),
            &tcp4(SRC, 8080, ACK),
            Reason::Passed,
        );
    }
    prog.expect(
        "group burst exhausted",
        &tcp4(SRC, 8080, ACK),
        Reason::RateLimited,
    );
    prog.expect(
        "another source has its own bucket",
        &tcp4([192, 0, 2, 99], 80, ACK),
        Reason::Passed,
    );

    let top = datapath::top(&prog.pins, 10).unwrap();
    assert_eq!(top[0].source, "192.0.2.7");
    assert_eq!((top[0].packets, top[0].dropped), (9, 2), "{top:?}");
    assert_eq!(
        (top[1].source.as_str(), top[1].packets, top[1].dropped),
        ("192.0.2.99", 1, 0)
    );
}

#[test]
fn syn_bucket_limits_new_connections_only() {
    let prog = TestProgram::configured("syn_per_sec = 1\nsyn_burst = 3");
    for i in 0..3 {
        prog.expect(&format!("SYN {i}"), &tcp4(SRC, 80, SYN), Reason::Passed);
    }
    prog.expect(
        "SYN over the burst",
        &tcp4(SRC, 80, SYN),
        Reason::SynRateLimited,
    );
    prog.expect(
        "SYN+ACK is not a new connection",
        &tcp4(SRC, 80, SYN | ACK),
        Reason::Passed,
    );
    prog.expect("ACK", &tcp4(SRC, 80, ACK), Reason::Passed);
    prog.expect("UDP", &udp4(SRC, 53), Reason::Passed);
}

#[test]
fn buckets_refill_over_time() {
    let prog = TestProgram::configured(
        "packets_per_sec = 10\npacket_burst = 1\nsyn_per_sec = 10\nsyn_burst = 1",
    );
    prog.expect("first", &tcp4(SRC, 80, ACK), Reason::Passed);
    prog.expect("empty", &tcp4(SRC, 80, ACK), Reason::RateLimited);
    // 10 per second: one token after 100 ms.
    std::thread::sleep(Duration::from_millis(250));
    prog.expect("refilled", &tcp4(SRC, 80, ACK), Reason::Passed);
    prog.expect("empty again", &tcp4(SRC, 80, ACK), Reason::RateLimited);
    std::thread::sleep(Duration::from_millis(250));
    prog.expect("SYN after refill", &tcp4(SRC, 80, SYN), Reason::Passed);
}

#[test]
fn ipv6_sources_are_aggregated_by_prefix() {
    let prog = TestProgram::configured("packet_burst = 2\npackets_per_sec = 1\nipv6_prefix = 64");
    let host = |net: u8, host: u8| {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, net, 0, 0, 0, 0, 0, 0, 0, 0];
        a[15] = host;
        a
    };
    prog.expect("host 1", &tcp6(host(2, 1), 443, ACK), Reason::Passed);
    prog.expect(
        "host 2 of the same /64",
        &tcp6(host(2, 2), 443, ACK),
        Reason::Passed,
    );
    prog.expect(
        "host 3 of the same /64: bucket shared",
        &tcp6(host(2, 3), 443, ACK),
        Reason::RateLimited,
    );
    prog.expect("another /64", &tcp6(host(3, 1), 443, ACK), Reason::Passed);
    let top = datapath::top(&prog.pins, 10).unwrap();
    assert_eq!(top[0].source, "2001:db8:1:2::/64", "{top:?}");
    assert_eq!((top[0].packets, top[0].dropped), (3, 1));
}

#[test]
fn a_sprayed_lru_keeps_working() {
    let prog = TestProgram::load_with_sources(64);
    datapath::apply_policy(
        &prog.pins,
        Some(&dos_policy("packet_burst = 1\npackets_per_sec = 1")),
    )
    .unwrap();
    // Far more sources than entries: the LRU evicts, nothing fails.
    for i in 0..1000u32 {
        let b = i.to_be_bytes();
        prog.expect(
            "spray",
            &tcp4([10, b[1], b[2], b[3]], 80, ACK),
            Reason::Passed,
        );
    }
    assert!(datapath::top(&prog.pins, 1000).unwrap().len() <= 64);
}

#[test]
fn policy_updates_apply_in_place_and_keep_state() {
    let prog = TestProgram::configured(
        "deny = [\"198.51.100.0/24\"]\npacket_burst = 2\npackets_per_sec = 1",
    );
    prog.expect("denied", &tcp4([198, 51, 100, 1], 80, ACK), Reason::Denied);
    prog.expect("1", &tcp4(SRC, 80, ACK), Reason::Passed);
    prog.expect("2", &tcp4(SRC, 80, ACK), Reason::Passed);
    datapath::apply_policy(
        &prog.pins,
        Some(&dos_policy(
            "deny = [\"203.0.113.0/24\"]\npacket_burst = 2\npackets_per_sec = 1",
        )),
    )
    .unwrap();
    prog.expect(
        "stale deny removed",
        &tcp4([198, 51, 100, 1], 80, ACK),
        Reason::Passed,
    );
    prog.expect("new deny", &tcp4([203, 0, 113, 1], 80, ACK), Reason::Denied);
    prog.expect(
        "the source's bucket survived the update",
        &tcp4(SRC, 80, ACK),
        Reason::RateLimited,
    );
}

#[test]
fn truncated_frames_are_malformed_with_a_policy_too() {
    let prog = TestProgram::configured("deny = [\"192.0.2.0/24\"]\nunprotected_ports = \"drop\"");
    let frames = [
        tcp4(SRC, 80, SYN),
        tcp6(v6(0x2001, 4), 443, SYN),
        ether(
            ETH_IPV4,
            &[TPID_8021Q],
            &ipv4_full(SRC, PROTO_UDP, &[1; 4], 0, &udp(53, b"x")),
        ),
    ];
    for frame in frames {
        for len in 14..frame.len() {
            prog.expect(&format!("cut to {len}"), &frame[..len], Reason::Malformed);
        }
    }
}
