//! Bounds-checked parsing of Ethernet (with up to `MAX_VLAN_TAGS` 802.1Q /
//! 802.1ad tags, in any mix), IPv4 (any IHL), IPv6 (with up to
//! `MAX_IPV6_EXT_HEADERS` extension headers), TCP, UDP and the type of
//! ICMPv6 neighbour discovery.
//!
//! Every read goes through `ptr_at`, which checks the end of the frame, so the
//! verifier accepts each access and a truncated header is an error rather
//! than a read past the packet. What the parser does not see into is
//! `Frame::Unparsed`, never a guess: `verdict::unparsed` decides its fate.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;

/// Truncated or inconsistent headers.
pub struct Malformed;

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
/// The kernel strips any number of VLAN ID 0 (priority) tags and delivers
/// the packet: every tag up to this depth is walked, a deeper stack is
/// `Unparsed`.
pub const MAX_VLAN_TAGS: usize = 8;
const IPV6_HLEN: usize = 40;
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// The source of an IP packet, addresses in network byte order.
#[derive(Clone, Copy)]
pub enum Source {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Where an IP packet sits in a fragmented datagram.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    No,
    /// First fragment: carries the transport header.
    First,
    /// Later fragment: no transport header.
    Later,
}

/// The transport layer as far as the verdict needs it.
#[derive(Clone, Copy)]
pub enum L4 {
    /// No transport header in this packet (later fragment, no next header).
    None,
    Tcp {
        dst_port: u16,
        flags: u8,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMPv6 neighbour discovery (router/neighbour solicitation and
    /// advertisement, redirect: types 133-137) with hop limit 255, i.e.
    /// sent on this link (RFC 4861 section 6.1, 7.1.1); the kernel drops
    /// it with any other hop limit.
    NeighbourDiscovery,
    /// Another protocol (ICMP, GRE...), not parsed.
    Other,
}

/// What the verdict logic needs to know about one IP packet.
pub struct Packet {
    pub source: Source,
    pub fragment: Fragment,
    pub l4: L4,
}

/// One frame, classified.
pub enum Frame {
    /// IPv4 or IPv6, parsed down to the transport header.
    Ip(Packet),
    /// A protocol that carries no IP to the stack (`carries_no_ip`).
    NotIp,
    /// Well-formed as far as read, but beyond what the parser walks: more
    /// than `MAX_VLAN_TAGS` tags, an ethertype that may encapsulate IP
    /// (MPLS, PPPoE, MACsec...), more than `MAX_IPV6_EXT_HEADERS`
    /// extension headers. Its source is unknown.
    Unparsed,
}

#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*const T, Malformed> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + size_of::<T>() > end {
        return Err(Malformed);
    }
    Ok((start + offset) as *const T)
}

#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, offset: usize) -> Result<T, Malformed> {
    // SAFETY: ptr_at checked that size_of::<T>() bytes at offset are inside
    // the frame; the header types below are byte arrays (alignment 1).
    Ok(unsafe { *ptr_at::<T>(ctx, offset)? })
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Ethertypes the kernel hands to no IP layer: 802.3 length fields (LLC:
/// STP, CDP...), ARP, MAC control, LACP/slow protocols, 802.1X, LLDP, PTP,
/// CFM. Every other ethertype that is not IP is `Unparsed`.
#[inline(always)]
const fn carries_no_ip(ethertype: u16) -> bool {
    ethertype < 0x0600
        || matches!(
            ethertype,
            0x0806 | 0x8808 | 0x8809 | 0x888e | 0x88cc | 0x88f7 | 0x8902
        )
}

/// Parses one frame.
#[inline(always)]
pub fn frame(ctx: &XdpContext) -> Result<Frame, Malformed> {
    let frame_len = ctx.data_end() - ctx.data();
    let mut ethertype = be16(read::<[u8; 2]>(ctx, 12)?);
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        // The tag is TCI (2 bytes) then the inner ethertype (2 bytes).
        ethertype = be16(read::<[u8; 2]>(ctx, off + 2)?);
        off += VLAN_HLEN;
    }
    match ethertype {
        ETH_P_IPV4 => ipv4(ctx, off, frame_len),
        ETH_P_IPV6 => ipv6(ctx, off, frame_len),
        t if carries_no_ip(t) => Ok(Frame::NotIp),
        // Including a VLAN tag still left after MAX_VLAN_TAGS.
        _ => Ok(Frame::Unparsed),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, off: usize, frame_len: usize) -> Result<Frame, Malformed> {
    let hdr = read::<[u8; 20]>(ctx, off)?;
    if hdr[0] >> 4 != 4 {
        return Err(Malformed);
    }
    let ihl = ((hdr[0] & 0x0f) as usize) * 4;
    let total_len = be16([hdr[2], hdr[3]]) as usize;
    // Options must fit the frame and the header must fit the datagram; the
    // frame may be longer than the datagram (Ethernet padding), never shorter.
    if ihl < 20 || total_len < ihl || off + total_len > frame_len {
        return Err(Malformed);
    }
    let frag = be16([hdr[6], hdr[7]]);
    let frag_offset = frag & 0x1fff;
    let more_fragments = frag & 0x2000 != 0;
    let source = Source::V4([hdr[12], hdr[13], hdr[14], hdr[15]]);
    if frag_offset != 0 {
        return Ok(Frame::Ip(Packet {
            source,
            fragment: Fragment::Later,
            l4: L4::None,
        }));
    }
    let fragment = if more_fragments {
        Fragment::First
    } else {
        Fragment::No
    };
    let l4 = transport(ctx, hdr[9], off + ihl, total_len - ihl, fragment)?;
    Ok(Frame::Ip(Packet {
        source,
        fragment,
        l4,
    }))
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, off: usize, frame_len: usize) -> Result<Frame, Malformed> {
    let hdr = read::<[u8; IPV6_HLEN]>(ctx, off)?;
    if hdr[0] >> 4 != 6 {
        return Err(Malformed);
    }
    let payload_len = be16([hdr[4], hdr[5]]) as usize;
    if off + IPV6_HLEN + payload_len > frame_len {
        return Err(Malformed);
    }
    let hop_limit = hdr[7];
    let mut src = [0u8; 16];
    src.copy_from_slice(&hdr[8..24]);
    let source = Source::V6(src);

    let mut next = hdr[6];
    let mut ext_off = off + IPV6_HLEN;
    let end = off + IPV6_HLEN + payload_len;
    let mut fragment = Fragment::No;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            // Hop-by-hop is only valid first (RFC 8200 4.1); the kernel
            // drops it anywhere else.
            0 if ext_off != off + IPV6_HLEN => return Err(Malformed),
            // Hop-by-hop, routing, destination options: length in 8-octet
            // units, not counting the first 8.
            0 | 43 | 60 => {
                let ext = read::<[u8; 2]>(ctx, ext_off)?;
                next = ext[0];
                ext_off += (ext[1] as usize + 1) * 8;
            }
            // Authentication header: length in 4-octet units minus 2, at
            // least 12 bytes (RFC 4302).
            51 => {
                let ext = read::<[u8; 2]>(ctx, ext_off)?;
                if ext[1] == 0 {
                    return Err(Malformed);
                }
                next = ext[0];
                ext_off += (ext[1] as usize + 2) * 4;
            }
            // Fragment header: fixed 8 bytes.
            44 => {
                let ext = read::<[u8; 8]>(ctx, ext_off)?;
                next = ext[0];
                ext_off += 8;
                let frag = be16([ext[2], ext[3]]);
                if frag >> 3 != 0 {
                    return Ok(Frame::Ip(Packet {
                        source,
                        fragment: Fragment::Later,
                        l4: L4::None,
                    }));
                }
                // More fragments: a first fragment, whatever a later
                // fragment header in the chain says.
                if frag & 1 != 0 {
                    fragment = Fragment::First;
                }
            }
            _ => break,
        }
        if ext_off > end {
            return Err(Malformed);
        }
    }
    if matches!(next, 0 | 43 | 60 | 51 | 44) {
        // More extension headers than we follow: the transport header and
        // its ports are out of sight.
        return Ok(Frame::Unparsed);
    }
    if next == 59 {
        // No next header.
        return Ok(Frame::Ip(Packet {
            source,
            fragment,
            l4: L4::None,
        }));
    }
    let l4 = if next == IPPROTO_ICMPV6 {
        icmpv6(ctx, ext_off, end - ext_off, hop_limit, fragment)
    } else {
        transport(ctx, next, ext_off, end - ext_off, fragment)?
    };
    Ok(Frame::Ip(Packet {
        source,
        fragment,
        l4,
    }))
}

/// Neighbour discovery or another ICMPv6 message (a truncated one is left
/// to the kernel, which drops it); `avail` is what the IP header says
/// follows.
#[inline(always)]
fn icmpv6(ctx: &XdpContext, off: usize, avail: usize, hop_limit: u8, fragment: Fragment) -> L4 {
    if avail < 8 {
        return L4::Other;
    }
    // Every neighbour discovery message has at least 8 bytes (type, code,
    // checksum, 4 more); reading them whole also keeps the bounds check in
    // a form the verifier follows (a one-byte read does not).
    match read::<[u8; 8]>(ctx, off) {
        Ok([133..=137, ..]) if hop_limit == 255 && fragment == Fragment::No => {
            L4::NeighbourDiscovery
        }
        _ => L4::Other,
    }
}

/// Parses TCP or UDP at `off`; `avail` is what the IP header says follows.
#[inline(always)]
fn transport(
    ctx: &XdpContext,
    proto: u8,
    off: usize,
    avail: usize,
    fragment: Fragment,
) -> Result<L4, Malformed> {
    match proto {
        IPPROTO_TCP => {
            let tcp = read::<[u8; 20]>(ctx, off)?;
            let doff = ((tcp[12] >> 4) as usize) * 4;
            if doff < 20 || doff > avail {
                return Err(Malformed);
            }
            // The options must be in the frame too.
            if doff > 20 {
                ptr_at::<u8>(ctx, off + doff - 1)?;
            }
            Ok(L4::Tcp {
                dst_port: be16([tcp[2], tcp[3]]),
                flags: tcp[13],
            })
        }
        IPPROTO_UDP => {
            let udp = read::<[u8; 8]>(ctx, off)?;
            let len = be16([udp[4], udp[5]]) as usize;
            // A first fragment carries only part of the datagram the UDP
            // length describes.
            if avail < 8 || len < 8 || (fragment == Fragment::No && len > avail) {
                return Err(Malformed);
            }
            Ok(L4::Udp {
                src_port: be16([udp[0], udp[1]]),
                dst_port: be16([udp[2], udp[3]]),
            })
        }
        _ => Ok(L4::Other),
    }
}
