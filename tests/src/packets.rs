//! Frame builders for XDP fixtures. Each returns the bytes of one header
//! followed by its payload; lengths and offsets are computed, checksums are
//! left zero (XDP does not verify them).

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;
pub const ETH_ARP: u16 = 0x0806;
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_ICMPV6: u8 = 58;
pub const ETH_MPLS: u16 = 0x8847;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

/// Ethernet header with the given VLAN tags (outermost first, all VLAN
/// 100), then payload.
pub fn ether(ethertype: u16, tags: &[u16], payload: &[u8]) -> Vec<u8> {
    let tags: Vec<(u16, u16)> = tags.iter().map(|&tpid| (tpid, 100)).collect();
    ether_tags(ethertype, &tags, payload)
}

/// Ethernet header with VLAN tags given as (TPID, TCI), outermost first:
/// a TCI of 0 is a priority tag (VLAN ID 0), which the kernel strips at
/// any depth.
pub fn ether_tags(ethertype: u16, tags: &[(u16, u16)], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header with `options` (padded to 4 bytes) and fragment field `frag`
/// (flags and offset as on the wire), then payload.
pub fn ipv4_full(src: [u8; 4], proto: u8, options: &[u8], frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut opts = options.to_vec();
    while !opts.len().is_multiple_of(4) {
        opts.push(0);
    }
    let ihl = 20 + opts.len();
    let total = (ihl + payload.len()) as u16;
    let mut h = vec![0x40 | (ihl / 4) as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 1]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[10, 0, 0, 1]);
    h.extend_from_slice(&opts);
    h.extend_from_slice(payload);
    h
}

pub fn ipv4(src: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_full(src, proto, &[], 0, payload)
}

/// IPv6 header (next header `next`, hop limit 64) then payload.
pub fn ipv6(src: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    ipv6_hops(src, next, 64, payload)
}

/// IPv6 header with the given hop limit (255 for neighbour discovery).
pub fn ipv6_hops(src: [u8; 16], next: u8, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, hop_limit]);
    h.extend_from_slice(&src);
    let mut dst = [0u8; 16];
    dst[0] = 0xfd;
    dst[15] = 1;
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// A generic IPv6 extension header (hop-by-hop 0, routing 43, destination
/// options 60) of `8 * (units + 1)` bytes.
pub fn ipv6_ext(next: u8, units: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![next, units];
    h.resize(8 * (units as usize + 1), 0);
    h.extend_from_slice(payload);
    h
}

/// IPv6 fragment header: `offset` in 8-byte units, `more` fragments flag.
pub fn ipv6_frag(next: u8, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let field = (offset << 3) | more as u16;
    let mut h = vec![next, 0];
    h.extend_from_slice(&field.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 7]);
    h.extend_from_slice(payload);
    h
}

/// TCP header with `options` (padded to 4 bytes) and flags.
pub fn tcp_full(dport: u16, flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut opts = options.to_vec();
    while !opts.len().is_multiple_of(4) {
        opts.push(1); // NOP
    }
    let doff = (20 + opts.len()) / 4;
    let mut h = Vec::new();
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    h.extend_from_slice(&[(doff as u8) << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h.extend_from_slice(&opts);
    h.extend_from_slice(payload);
    h
}

pub fn tcp(dport: u16, flags: u8) -> Vec<u8> {
    tcp_full(dport, flags, &[], &[])
}

/// UDP header (source port 5353) with a correct length, then payload.
pub fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    udp_from(5353, dport, payload)
}

/// UDP header from `sport` with a correct length, then payload.
pub fn udp_from(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    h
}

/// An ICMPv6 message of `kind` (133-137: neighbour discovery) with a
/// 20-byte body.
pub fn icmpv6(kind: u8) -> Vec<u8> {
    let mut h = vec![kind, 0, 0, 0];
    h.resize(24, 0);
    h
}

/// An IPv6 address with the given first and last 16-bit groups.
pub fn v6(first: u16, last: u16) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..2].copy_from_slice(&first.to_be_bytes());
    a[14..].copy_from_slice(&last.to_be_bytes());
    a
}
