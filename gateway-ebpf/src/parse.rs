//! Bounds-checked parsing of Ethernet (with up to two 802.1Q/802.1ad tags),
//! IPv4 (any IHL), IPv6 (with extension headers), TCP and UDP.
//!
//! Every read goes through `ptr_at`, which checks the end of the frame, so the
//! verifier accepts each access and a truncated header is an error rather
//! than a read past the packet.

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
const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const MAX_VLAN_TAGS: usize = 2;
const IPV6_HLEN: usize = 40;
const MAX_IPV6_EXT_HEADERS: usize = 8;

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
        dst_port: u16,
    },
    /// Another protocol (ICMP, GRE...), not parsed.
    Other,
}

/// What the verdict logic needs to know about one frame.
pub struct Packet {
    /// `None` for frames that are not IP (ARP, LLDP...).
    pub source: Option<Source>,
    pub fragment: Fragment,
    pub l4: L4,
}

impl Packet {
    const NOT_IP: Packet = Packet {
        source: None,
        fragment: Fragment::No,
        l4: L4::None,
    };
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

/// Parses one frame.
#[inline(always)]
pub fn packet(ctx: &XdpContext) -> Result<Packet, Malformed> {
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
        // A third VLAN tag is unusual but not malformed: pass it unparsed.
        _ => Ok(Packet::NOT_IP),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, off: usize, frame_len: usize) -> Result<Packet, Malformed> {
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
    let source = Some(Source::V4([hdr[12], hdr[13], hdr[14], hdr[15]]));
    if frag_offset != 0 {
        return Ok(Packet {
            source,
            fragment: Fragment::Later,
            l4: L4::None,
        });
    }
    let fragment = if more_fragments {
        Fragment::First
    } else {
        Fragment::No
    };
    let l4 = transport(ctx, hdr[9], off + ihl, total_len - ihl, fragment)?;
    Ok(Packet {
        source,
        fragment,
        l4,
    })
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, off: usize, frame_len: usize) -> Result<Packet, Malformed> {
    let hdr = read::<[u8; IPV6_HLEN]>(ctx, off)?;
    if hdr[0] >> 4 != 6 {
        return Err(Malformed);
    }
    let payload_len = be16([hdr[4], hdr[5]]) as usize;
    if off + IPV6_HLEN + payload_len > frame_len {
        return Err(Malformed);
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&hdr[8..24]);
    let source = Some(Source::V6(src));

    let mut next = hdr[6];
    let mut ext_off = off + IPV6_HLEN;
    let end = off + IPV6_HLEN + payload_len;
    let mut fragment = Fragment::No;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-octet
            // units, not counting the first 8.
            0 | 43 | 60 => {
                let ext = read::<[u8; 2]>(ctx, ext_off)?;
                next = ext[0];
                ext_off += (ext[1] as usize + 1) * 8;
            }
            // Authentication header: length in 4-octet units minus 2.
            51 => {
                let ext = read::<[u8; 2]>(ctx, ext_off)?;
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
                    return Ok(Packet {
                        source,
                        fragment: Fragment::Later,
                        l4: L4::None,
                    });
                }
                fragment = if frag & 1 != 0 {
                    Fragment::First
                } else {
                    Fragment::No
                };
            }
            _ => break,
        }
        if ext_off > end {
            return Err(Malformed);
        }
    }
    if matches!(next, 0 | 43 | 60 | 51 | 44) {
        // More extension headers than we follow: refuse to guess.
        return Err(Malformed);
    }
    if next == 59 {
        // No next header.
        return Ok(Packet {
            source,
            fragment,
            l4: L4::None,
        });
    }
    let l4 = transport(ctx, next, ext_off, end - ext_off, fragment)?;
    Ok(Packet {
        source,
        fragment,
        l4,
    })
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
                dst_port: be16([udp[2], udp[3]]),
            })
        }
        _ => Ok(L4::Other),
    }
}
