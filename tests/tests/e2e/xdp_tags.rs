//! VLAN tag stacks and the one rule for frames the parser cannot see into,
//! through BPF_PROG_TEST_RUN. The kernel strips any number of priority
//! tags (VLAN ID 0) and delivers the packet, so every rule must hold at
//! every depth the program walks (0-8, any mix of 802.1Q and 802.1ad, VLAN
//! ID 0 with or without priority bits, or a real VLAN), and anything deeper
//! must drop as `unparsed` while something is enforced.

use std::time::Duration;

use edgegw::datapath::{self, Cidr};
use edgegw_tests::{
    packets::*,
    xdp::{TestProgram, dos_policy},
};
use gateway_common::Reason;

/// The deepest stack the program walks.
const MAX_TAGS: usize = 8;

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

/// Every rule at once: a deny list, a ban, a SYN bucket of one, closed
/// ports dropped, and the TCP flag checks (always on).
fn enforcing() -> TestProgram {
    let prog = TestProgram::load();
    let dos = r#"deny = ["198.51.100.0/24", "2001:db8:bad::/48"]
syn_per_sec = 1
syn_burst = 1
unprotected_ports = "drop"
[[dos.port_groups]]
name = "api"
tcp = [8080]"#;
    datapath::apply_policy(&prog.pins, Some(&dos_policy(dos))).unwrap();
    datapath::ban(&prog.pins, cidr("203.0.113.0/24"), Duration::from_secs(600)).unwrap();
    datapath::ban(
        &prog.pins,
        cidr("2001:db8:ba::/48"),
        Duration::from_secs(600),
    )
    .unwrap();
    prog
}

#[derive(Clone, Copy, Debug)]
enum Family {
    V4,
    V6,
}

/// Source addresses by role; `fresh` gives each case a source (an IPv6 /64)
/// of its own, so that no case spends another's bucket.
struct Sources {
    next: u32,
}

impl Sources {
    fn denied(f: Family) -> Vec<u8> {
        match f {
            Family::V4 => vec![198, 51, 100, 7],
            Family::V6 => [
                0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7,
            ]
            .into(),
        }
    }
    fn banned(f: Family) -> Vec<u8> {
        match f {
            Family::V4 => vec![203, 0, 113, 7],
            Family::V6 => [
                0x20, 0x01, 0x0d, 0xb8, 0, 0xba, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7,
            ]
            .into(),
        }
    }
    fn fresh(&mut self, f: Family) -> Vec<u8> {
        self.next += 1;
        let n = self.next.to_be_bytes();
        match f {
            Family::V4 => vec![10, n[1], n[2], n[3]],
            Family::V6 => [
                0x20, 0x01, 0x0d, 0xb8, n[1], n[2], n[3], 1, 0, 0, 0, 0, 0, 0, 0, 1,
            ]
            .into(),
        }
    }
}

fn tcp_frame(f: Family, src: &[u8], tags: &[(u16, u16)], port: u16, flags: u8) -> Vec<u8> {
    match f {
        Family::V4 => ether_tags(
            ETH_IPV4,
            tags,
            &ipv4(src.try_into().unwrap(), PROTO_TCP, &tcp(port, flags)),
        ),
        Family::V6 => ether_tags(
            ETH_IPV6,
            tags,
            &ipv6(src.try_into().unwrap(), PROTO_TCP, &tcp(port, flags)),
        ),
    }
}

/// The tag stacks of one depth: every TPID mix, with VLAN ID 0 (with and
/// without priority bits) and a real VLAN ID.
/// A named rule giving the TPID of the tag at each depth.
type Mix = (&'static str, fn(usize) -> u16);

fn stacks(depth: usize) -> Vec<(String, Vec<(u16, u16)>)> {
    let mixes: [Mix; 4] = [
        ("802.1Q", |_| TPID_8021Q),
        ("802.1ad", |_| TPID_8021AD),
        ("802.1ad outer, 802.1Q inner", |i| {
            if i == 0 { TPID_8021AD } else { TPID_8021Q }
        }),
        ("alternating", |i| {
            if i % 2 == 0 { TPID_8021Q } else { TPID_8021AD }
        }),
    ];
    let mut out = Vec::new();
    for (mix, tpid) in mixes {
        for (vid, tci) in [("VID 0", 0u16), ("VID 0 PCP 5", 0xa000), ("VID 100", 100)] {
            let tags = (0..depth).map(|i| (tpid(i), tci)).collect();
            out.push((format!("{depth} tags {mix} {vid}"), tags));
            if depth == 0 {
                return out;
            }
        }
    }
    out
}

/// Every rule at every depth, IPv4 and IPv6: the rule's own verdict up to
/// MAX_TAGS, `unparsed` beyond, and exactly one counter each time.
#[test]
fn every_rule_holds_at_every_tag_depth() {
    let prog = enforcing();
    let mut sources = Sources { next: 0 };
    let mut cases = 0;
    for depth in 0..=MAX_TAGS + 3 {
        let deep = depth > MAX_TAGS;
        let want = |r: Reason| if deep { Reason::Unparsed } else { r };
        for (stack, tags) in stacks(depth) {
            for family in [Family::V4, Family::V6] {
                let at = |rule: &str| format!("{family:?} {stack}: {rule}");
                let frame = |src: &[u8], port, flags| tcp_frame(family, src, &tags, port, flags);
                let fresh = sources.fresh(family);
                prog.expect(
                    &at("ACK to a protected port"),
                    &frame(&fresh, 8080, ACK),
                    want(Reason::Passed),
                );
                prog.expect(
                    &at("deny list"),
                    &frame(&Sources::denied(family), 8080, ACK),
                    want(Reason::Denied),
                );
                prog.expect(
                    &at("ban"),
                    &frame(&Sources::banned(family), 8080, ACK),
                    want(Reason::Banned),
                );
                prog.expect(
                    &at("first SYN"),
                    &frame(&fresh, 8080, SYN),
                    want(Reason::Passed),
                );
                prog.expect(
                    &at("SYN over the burst"),
                    &frame(&fresh, 8080, SYN),
                    want(Reason::SynRateLimited),
                );
                prog.expect(
                    &at("closed port"),
                    &frame(&sources.fresh(family), 22, SYN),
                    want(Reason::PortFiltered),
                );
                prog.expect(
                    &at("SYN+FIN"),
                    &frame(&sources.fresh(family), 8080, SYN | FIN),
                    want(Reason::BadTcpFlags),
                );
                cases += 7;
            }
        }
    }
    // 0 tags: 1 stack; 1..=11 tags: 12 stacks each; two families, 7 frames.
    assert_eq!(cases, (1 + 11 * 12) * 2 * 7);
}

/// The rule for unparsed frames, case by case: it drops whatever the
/// parser cannot see into while a policy or a ban is in force, whatever
/// the (unknown) source, and passes it only when nothing is enforced.
#[test]
fn what_the_parser_cannot_see_into_drops_while_anything_is_enforced() {
    let src = [192, 0, 2, 7];
    let deep = |n: usize| {
        ether(
            ETH_IPV4,
            &vec![TPID_8021Q; n],
            &ipv4(src, PROTO_TCP, &tcp(8080, ACK)),
        )
    };
    let mut ext_chain = tcp(443, ACK);
    let mut next = PROTO_TCP;
    for _ in 0..9 {
        ext_chain = ipv6_ext(next, 0, &ext_chain);
        next = 60;
    }
    let long_chain = ether(ETH_IPV6, &[], &ipv6(v6(0x2001, 7), 60, &ext_chain));
    let mpls = ether(
        ETH_MPLS,
        &[],
        &[0, 0, 0x11, 64, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0],
    );
    let pppoe = ether(0x8864, &[], &[0x11, 0, 0, 1, 0, 22, 0, 0x21]);
    let arp_deep = ether(0x0806, &[TPID_8021Q; 9], &[0; 28]);
    let arp_tagged = ether(0x0806, &[TPID_8021Q; 8], &[0; 28]);

    // Nothing enforced: fail open.
    let prog = TestProgram::load();
    for (what, frame) in [("nine tags", &deep(9)), ("MPLS", &mpls)] {
        prog.expect(what, frame, Reason::Passed);
    }
    // A ban alone is enforcement: the unparsed frame could come from the
    // banned source. Once every ban has expired, fail open again.
    datapath::ban(
        &prog.pins,
        cidr("198.51.100.0/24"),
        Duration::from_millis(300),
    )
    .unwrap();
    prog.expect("nine tags, a ban active", &deep(9), Reason::Unparsed);
    prog.expect("eight tags, a ban active", &deep(8), Reason::Passed);
    std::thread::sleep(Duration::from_millis(400));
    prog.expect("nine tags, the ban expired", &deep(9), Reason::Passed);

    // A policy: every kind of unparsed frame drops, even from a source the
    // allow list names (the program cannot know the source).
    datapath::apply_policy(
        &prog.pins,
        Some(&dos_policy("allow = [\"192.0.2.0/24\", \"2001::/16\"]")),
    )
    .unwrap();
    for (what, frame, reason) in [
        ("eight tags, allowed source", deep(8), Reason::Passed),
        ("nine tags, allowed source", deep(9), Reason::Unparsed),
        ("sixteen tags", deep(16), Reason::Unparsed),
        (
            "IPv6 with nine extension headers",
            long_chain,
            Reason::Unparsed,
        ),
        ("MPLS", mpls, Reason::Unparsed),
        ("PPPoE session", pppoe, Reason::Unparsed),
        ("ARP behind nine tags", arp_deep, Reason::Unparsed),
        ("ARP behind eight tags", arp_tagged, Reason::Passed),
        ("ARP", ether(0x0806, &[], &[0; 28]), Reason::Passed),
        ("LLDP", ether(0x88cc, &[], &[0; 20]), Reason::Passed),
    ] {
        prog.expect(what, &frame, reason);
    }
    // A truncated tag is malformed, not unparsed, at any depth.
    let mut cut = deep(5);
    cut.truncate(14 + 4 * 4 + 2);
    prog.expect("cut inside the fifth tag", &cut, Reason::Malformed);

    // The policy removed: fail open again.
    datapath::apply_policy(&prog.pins, None).unwrap();
    prog.expect("nine tags, policy removed", &deep(9), Reason::Passed);
}
