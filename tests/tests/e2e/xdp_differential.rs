//! Differential check of the XDP parser against an independent one: a few
//! thousand random frames (seeded, so a failure replays: set
//! EDGEGW_DIFF_SEED) through BPF_PROG_TEST_RUN. For each, the program
//! either drops it, or passes it with the same view of the packet as
//! `etherparse`: the same source address and the same destination port
//! (protocol and port, seen through the port group the program charged).
//!
//! The program's view is read from what it records: under a policy with a
//! /128 IPv6 key, no real limits and fifteen port groups of one TCP and one
//! UDP port each, a passed IP packet leaves exactly one `SOURCES` entry,
//! keyed by its source address and port group; the map is emptied after
//! every frame. A pass that leaves no entry must be a frame that carries no
//! IP, or neighbour discovery (exempt from the buckets).
//!
//! The reference decodes every header with etherparse; the chaining rules
//! it applies on top are the kernel's: VLAN tags are counted here (at most
//! eight are walked by the program, deeper stacks must drop), IPv6
//! extension headers are followed one by one and a non-first fragment ends
//! the walk, hop-by-hop is valid only first, IPv4 AH is not looked into
//! (the program leaves IPsec to the kernel: its source is still checked).
//!
//! Frames that are well formed by construction (no mutation, at most eight
//! tags and extension headers) must also pass, or drop only for bad TCP
//! flags: the check would otherwise be met by dropping everything.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aya::maps::{HashMap, MapData};
use edgegw::config::Config;
use edgegw_tests::{packets::*, xdp::TestProgram};
use etherparse::{
    IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice,
    Ipv6RawExtHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};
use gateway_common::{Reason, SOURCES_MAP, SourceKey, SourceState};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

const FRAMES: usize = 5000;
const GROUPS: u16 = 15;
const MAX_TAGS: usize = 8;
const MAX_EXT: usize = 8;

fn tcp_port(group: u16) -> u16 {
    1000 + group
}
fn udp_port(group: u16) -> u16 {
    2000 + group
}

fn policy_text() -> String {
    let mut dos = String::from(
        "ipv6_prefix = 128\npackets_per_sec = 1000000000\npacket_burst = 1000000000\n\
         syn_per_sec = 1000000000\nsyn_burst = 1000000000\n",
    );
    for g in 1..=GROUPS {
        dos.push_str(&format!(
            "[[dos.port_groups]]\nname = \"g{g}\"\ntcp = [{}]\nudp = [{}]\n",
            tcp_port(g),
            udp_port(g)
        ));
    }
    format!("[gateway]\nlisten = \"127.0.0.1:1\"\n[dos]\n{dos}")
}

/// The port group etherparse's view maps to (0: none).
fn group_of(l4: Option<(u8, u16)>) -> u8 {
    match l4 {
        Some((PROTO_TCP, p)) if (tcp_port(1)..=tcp_port(GROUPS)).contains(&p) => (p - 1000) as u8,
        Some((PROTO_UDP, p)) if (udp_port(1)..=udp_port(GROUPS)).contains(&p) => (p - 2000) as u8,
        _ => 0,
    }
}

/// What the reference parser sees.
#[derive(Debug)]
enum Reference {
    /// More VLAN tags or IPv6 extension headers than the program walks, or
    /// an ethertype that may carry IP which it does not parse: must drop.
    BeyondTheWalk(&'static str),
    /// Carries no IP.
    NotIp,
    Ip(View),
    /// etherparse (or the kernel's chaining rules) rejects it, and why.
    Invalid(#[expect(dead_code, reason = "shown in failure messages")] String),
}

#[derive(Debug, PartialEq)]
struct View {
    src: IpAddr,
    /// (protocol, destination port) when the packet has a transport header.
    l4: Option<(u8, u16)>,
    /// ICMPv6 neighbour discovery with hop limit 255, unfragmented.
    nd: bool,
}

fn reference(frame: &[u8]) -> Reference {
    let mut off = 12;
    let mut tags = 0;
    loop {
        let Some(t) = frame.get(off..off + 2) else {
            return Reference::Invalid("cut inside the tags".into());
        };
        let t = u16::from_be_bytes([t[0], t[1]]);
        if t != TPID_8021Q && t != TPID_8021AD {
            break;
        }
        tags += 1;
        off += 4;
    }
    if tags > MAX_TAGS {
        return Reference::BeyondTheWalk("VLAN tags");
    }
    let ethertype = u16::from_be_bytes([frame[off], frame[off + 1]]);
    let data = &frame[off + 2..];
    match ethertype {
        ETH_IPV4 => v4(data).map_or_else(Reference::Invalid, Reference::Ip),
        ETH_IPV6 => v6(data),
        t if t < 0x0600
            || [0x0806, 0x8808, 0x8809, 0x888e, 0x88cc, 0x88f7, 0x8902].contains(&t) =>
        {
            Reference::NotIp
        }
        _ => Reference::BeyondTheWalk("ethertype"),
    }
}

fn e(err: impl std::fmt::Debug) -> String {
    format!("{err:?}")
}

/// The transport header at the start of `payload` (`fragmented`: a first
/// fragment, whose UDP length describes the whole datagram).
fn transport(proto: u8, payload: &[u8], fragmented: bool) -> Result<Option<(u8, u16)>, String> {
    match proto {
        PROTO_TCP => {
            let tcp = TcpHeaderSlice::from_slice(payload).map_err(e)?;
            Ok(Some((PROTO_TCP, tcp.destination_port())))
        }
        PROTO_UDP => {
            let udp = UdpHeaderSlice::from_slice(payload).map_err(e)?;
            let len = udp.length() as usize;
            if len < 8 || (!fragmented && len > payload.len()) {
                return Err(format!("UDP length {len} of {}", payload.len()));
            }
            Ok(Some((PROTO_UDP, udp.destination_port())))
        }
        _ => Ok(None),
    }
}

fn v4(data: &[u8]) -> Result<View, String> {
    let ip = Ipv4HeaderSlice::from_slice(data).map_err(e)?;
    let total = ip.total_len() as usize;
    let ihl = ip.ihl() as usize * 4;
    if total < ihl || total > data.len() {
        return Err(format!("total length {total}"));
    }
    let src = IpAddr::V4(ip.source_addr());
    if ip.fragments_offset().value() != 0 {
        return Ok(View {
            src,
            l4: None,
            nd: false,
        });
    }
    let l4 = transport(ip.protocol().0, &data[ihl..total], ip.more_fragments())?;
    Ok(View { src, l4, nd: false })
}

fn v6(data: &[u8]) -> Reference {
    let ip = match Ipv6HeaderSlice::from_slice(data) {
        Ok(ip) => ip,
        Err(err) => return Reference::Invalid(e(err)),
    };
    let end = 40 + ip.payload_length() as usize;
    if end > data.len() {
        return Reference::Invalid(format!("payload length {}", ip.payload_length()));
    }
    let src = IpAddr::V6(ip.source_addr());
    let mut rest = &data[40..end];
    let mut next = ip.next_header().0;
    let mut count = 0;
    let mut fragmented = false;
    loop {
        let len = match next {
            0 if count > 0 => return Reference::Invalid("hop-by-hop not first".into()),
            0 | 43 | 60 => match Ipv6RawExtHeaderSlice::from_slice(rest) {
                Ok(h) => {
                    next = h.next_header().0;
                    h.slice().len()
                }
                Err(err) => return Reference::Invalid(e(err)),
            },
            44 => match Ipv6FragmentHeaderSlice::from_slice(rest) {
                Ok(h) if h.fragment_offset().value() != 0 => {
                    if count >= MAX_EXT {
                        return Reference::BeyondTheWalk("extension headers");
                    }
                    return Reference::Ip(View {
                        src,
                        l4: None,
                        nd: false,
                    });
                }
                Ok(h) => {
                    next = h.next_header().0;
                    fragmented |= h.more_fragments();
                    h.slice().len()
                }
                Err(err) => return Reference::Invalid(e(err)),
            },
            51 => match IpAuthHeaderSlice::from_slice(rest) {
                Ok(h) => {
                    next = h.next_header().0;
                    h.slice().len()
                }
                Err(err) => return Reference::Invalid(e(err)),
            },
            _ => break,
        };
        if count >= MAX_EXT {
            return Reference::BeyondTheWalk("extension headers");
        }
        count += 1;
        rest = &rest[len..];
    }
    let view = match next {
        59 => View {
            src,
            l4: None,
            nd: false,
        },
        58 => {
            // etherparse's ICMPv6 header is the 8 bytes every ND message has.
            let nd = !fragmented
                && ip.hop_limit() == 255
                && etherparse::Icmpv6Slice::from_slice(rest)
                    .is_ok_and(|m| (133..=137).contains(&m.type_u8()));
            View { src, l4: None, nd }
        }
        proto => match transport(proto, rest, fragmented) {
            Ok(l4) => View { src, l4, nd: false },
            Err(err) => return Reference::Invalid(err),
        },
    };
    Reference::Ip(view)
}

/// A random frame; `true` when it is well formed by construction, and the
/// TCP flags it carries.
struct Generated {
    frame: Vec<u8>,
    well_formed: bool,
    tcp_flags: Option<u8>,
}

fn port(rng: &mut StdRng) -> u16 {
    if rng.random_bool(0.5) {
        let g = rng.random_range(1..=GROUPS);
        *[tcp_port(g), udp_port(g)].choose(rng).unwrap()
    } else {
        rng.random()
    }
}

fn tcp_header(rng: &mut StdRng, flags: u8) -> Vec<u8> {
    let opts: Vec<u8> = (0..4 * rng.random_range(0..=10usize)).map(|_| 1).collect();
    let payload: Vec<u8> = (0..rng.random_range(0..20)).map(|_| rng.random()).collect();
    let mut h = tcp_full(port(rng), flags, &opts, &payload);
    h[..2].copy_from_slice(&rng.random::<u16>().to_be_bytes());
    h
}

fn l4(rng: &mut StdRng, proto: u8, tcp_flags: &mut Option<u8>) -> Vec<u8> {
    match proto {
        PROTO_TCP => {
            let flags = if rng.random_bool(0.7) {
                *[SYN, ACK, SYN | ACK, PSH | ACK, FIN | ACK, RST]
                    .choose(rng)
                    .unwrap()
            } else {
                rng.random()
            };
            *tcp_flags = Some(flags);
            tcp_header(rng, flags)
        }
        PROTO_UDP => {
            let payload: Vec<u8> = (0..rng.random_range(0..30)).map(|_| rng.random()).collect();
            udp_from(rng.random(), port(rng), &payload)
        }
        _ => (0..rng.random_range(8..40)).map(|_| rng.random()).collect(),
    }
}

fn generate(rng: &mut StdRng) -> Generated {
    let mut well_formed = true;
    let mut tcp_flags = None;
    let depth = match rng.random_range(0..10) {
        0..=4 => 0,
        5..=7 => rng.random_range(1..=MAX_TAGS),
        _ => rng.random_range(MAX_TAGS + 1..=MAX_TAGS + 4),
    };
    well_formed &= depth <= MAX_TAGS;
    let tags: Vec<(u16, u16)> = (0..depth)
        .map(|_| {
            (
                *[TPID_8021Q, TPID_8021AD].choose(rng).unwrap(),
                rng.random(),
            )
        })
        .collect();
    let kind = rng.random_range(0..100);
    let (ethertype, payload) = if kind < 45 {
        let proto = *[
            PROTO_TCP, PROTO_TCP, PROTO_UDP, PROTO_UDP, PROTO_ICMP, 47, 51,
        ]
        .choose(rng)
        .unwrap();
        let mut inner = l4(rng, proto, &mut tcp_flags);
        if proto == 51 {
            // AH (12 bytes) then TCP: the program does not look into it.
            let mut ah = vec![PROTO_TCP, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
            ah.extend(tcp_header(rng, ACK));
            inner = ah;
        }
        let frag = match rng.random_range(0..10) {
            0 => 0x2000,
            1 => rng.random_range(1..0x2000),
            _ => 0,
        };
        let options: Vec<u8> = (0..4 * rng.random_range(0..=10usize)).map(|_| 1).collect();
        let src: [u8; 4] = rng.random();
        (ETH_IPV4, ipv4_full(src, proto, &options, frag, &inner))
    } else if kind < 90 {
        let mut src: [u8; 16] = rng.random();
        match rng.random_range(0..10) {
            0 | 1 => src[..2].copy_from_slice(&[0xfe, 0x80]),
            2 => src = [0; 16],
            _ => {}
        }
        let last = *[
            PROTO_TCP,
            PROTO_TCP,
            PROTO_UDP,
            PROTO_UDP,
            PROTO_ICMPV6,
            PROTO_ICMPV6,
            59,
            50,
        ]
        .choose(rng)
        .unwrap();
        let mut hops = rng.random();
        let mut body = match last {
            PROTO_ICMPV6 => {
                if rng.random_bool(0.7) {
                    hops = 255;
                }
                icmpv6(rng.random_range(128..=140))
            }
            59 => Vec::new(),
            proto => l4(rng, proto, &mut tcp_flags),
        };
        let mut next = last;
        let chain = match rng.random_range(0..10) {
            0..=5 => 0,
            6..=8 => rng.random_range(1..=MAX_EXT),
            _ => rng.random_range(MAX_EXT + 1..=MAX_EXT + 3),
        };
        well_formed &= chain <= MAX_EXT;
        for i in (0..chain).rev() {
            let kind = if i == 0 && rng.random_bool(0.3) {
                0
            } else {
                *[43, 60, 60, 44, 51].choose(rng).unwrap()
            };
            body = match kind {
                44 => {
                    // A later fragment's data is opaque: it follows only the
                    // last header.
                    let later = i == chain - 1 && rng.random_bool(0.3);
                    let offset = if later { rng.random_range(1..8000) } else { 0 };
                    ipv6_frag(next, offset, rng.random_bool(0.5), &body)
                }
                51 => {
                    let mut ah = vec![next, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
                    ah.extend(&body);
                    ah
                }
                _ => ipv6_ext(next, rng.random_range(0..3), &body),
            };
            next = kind;
        }
        (ETH_IPV6, ipv6_hops(src, next, hops, &body))
    } else if kind < 95 {
        let t = *[0x0806, 0x88cc, 0x8809, 0x0100].choose(rng).unwrap();
        (t, (0..28).map(|_| rng.random()).collect())
    } else {
        well_formed = false;
        let t = *[0x8847, 0x8848, 0x8864, 0x88e5, 0x9100, 0x22f0]
            .choose(rng)
            .unwrap();
        (t, (0..40).map(|_| rng.random()).collect())
    };
    let mut frame = ether_tags(ethertype, &tags, &payload);
    match rng.random_range(0..10) {
        0 => {
            frame.truncate(rng.random_range(14..frame.len()));
            well_formed = false;
        }
        1 | 2 => {
            let at = rng.random_range(12..frame.len());
            frame[at] ^= 1 << rng.random_range(0..8);
            well_formed = false;
        }
        3 => frame.extend((0..rng.random_range(1..32)).map(|_| 0u8)),
        _ => {}
    }
    Generated {
        frame,
        well_formed,
        tcp_flags,
    }
}

/// Flags no conforming stack sends (the flag rule, stated independently).
fn bad_flags(f: u8) -> bool {
    let (fin, syn, rst, psh, ack, urg) = (
        f & 1 != 0,
        f & 2 != 0,
        f & 4 != 0,
        f & 8 != 0,
        f & 16 != 0,
        f & 32 != 0,
    );
    f & 0x3f == 0 || (syn && fin) || (syn && rst) || ((fin || psh || urg) && !ack)
}

#[test]
fn the_program_drops_a_frame_or_sees_it_as_etherparse_does() {
    let seed: u64 = std::env::var("EDGEGW_DIFF_SEED")
        .ok()
        .map_or(0x5eed_0fed_6e00, |s| {
            s.parse().expect("EDGEGW_DIFF_SEED: a number")
        });
    println!("seed {seed} (EDGEGW_DIFF_SEED replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let prog = TestProgram::load();
    let policy = Config::parse("diff.toml", &policy_text())
        .unwrap()
        .dos
        .unwrap();
    edgegw::datapath::apply_policy(&prog.pins, Some(&policy)).unwrap();
    let mut sources: HashMap<MapData, SourceKey, SourceState> = HashMap::try_from(
        aya::maps::Map::LruHashMap(MapData::from_pin(prog.pins.map(SOURCES_MAP)).unwrap()),
    )
    .unwrap();

    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for n in 0..FRAMES {
        let g = generate(&mut rng);
        let before: Vec<u64> = Reason::ALL.iter().map(|&r| prog.counter(r).0).collect();
        prog.run(&g.frame);
        let reason = Reason::ALL
            .iter()
            .enumerate()
            .find(|&(i, &r)| prog.counter(r).0 != before[i])
            .map(|(_, &r)| r)
            .expect("one counter moved");
        let seen: Vec<SourceKey> = sources.keys().map(Result::unwrap).collect();
        for key in &seen {
            sources.remove(key).unwrap();
        }
        let refview = reference(&g.frame);
        let at = || format!("frame {n} {:02x?}: reference {refview:?}", g.frame);
        *tally
            .entry(format!(
                "{} {}",
                reason.name(),
                match &refview {
                    Reference::BeyondTheWalk(w) => format!("beyond the walk ({w})"),
                    Reference::NotIp => "not IP".into(),
                    Reference::Ip(v) if v.l4.is_some() => "IP with ports".into(),
                    Reference::Ip(_) => "IP without ports".into(),
                    Reference::Invalid(_) => "invalid".into(),
                }
            ))
            .or_default() += 1;

        if !reason.is_pass() {
            assert!(seen.is_empty(), "{}: dropped yet charged {seen:?}", at());
            let flags_rule = reason == Reason::BadTcpFlags && g.tcp_flags.is_some_and(bad_flags);
            assert!(
                !g.well_formed || flags_rule,
                "{}: a well-formed frame dropped as {}",
                at(),
                reason.name()
            );
            continue;
        }
        match (&refview, seen.as_slice()) {
            (Reference::Ip(view), [key]) => {
                let src = match key.family {
                    4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&key.addr[..4]).unwrap())),
                    _ => IpAddr::V6(Ipv6Addr::from(key.addr)),
                };
                assert_eq!(src, view.src, "{}: source", at());
                assert_eq!(key.group, group_of(view.l4), "{}: port group", at());
                assert!(!view.nd, "{}: neighbour discovery was charged", at());
            }
            (Reference::Ip(view), []) if view.nd => {}
            (Reference::NotIp, []) => {}
            (_, seen) => panic!("{}: passed, charged {seen:?}", at()),
        }
    }
    println!("{tally:#?}");
    let count = |what: &str| -> usize {
        tally
            .iter()
            .filter(|(k, _)| k.contains(what))
            .map(|(_, v)| v)
            .sum()
    };
    // The generator reaches every outcome, so the check above is not vacuous.
    for what in [
        "passed IP with ports",
        "passed IP without ports",
        "passed not IP",
        "unparsed beyond the walk (VLAN tags)",
        "unparsed beyond the walk (extension headers)",
        "unparsed beyond the walk (ethertype)",
        "malformed invalid",
        "bad_tcp_flags",
    ] {
        assert!(count(what) > 0, "no frame ended as {what}: {tally:#?}");
    }
    assert!(count("passed") > FRAMES / 3, "{tally:#?}");
}
