//! Crafted frames on a real interface: an AF_PACKET socket opened inside a
//! namespace sends exact bytes (VLAN stacks the stack would never build)
//! and collects what comes back, so a test sees what a peer on the link
//! sees. Frames are built with `etherparse` (checksums included: the
//! receiving kernel checks them).

use std::{
    net::Ipv4Addr,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket},
};

use crate::netns::NetNs;

const ETH_P_ALL: u16 = 0x0003;

/// The MAC address of `iface` inside `ns`.
pub fn mac(ns: &NetNs, iface: &str) -> [u8; 6] {
    let out = ns.exec(&["ip", "-j", "link", "show", "dev", iface]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j link");
    let text = v[0]["address"].as_str().expect("link address");
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// A TCP SYN from `src` to `dst` (IPv4, valid checksums) behind `tags`
/// (TPID, TCI), outermost first.
pub fn tagged_syn(
    macs: ([u8; 6], [u8; 6]),
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    tags: &[(u16, u16)],
) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp(src.1, dst.1, 1000, 64240)
        .syn();
    let mut frame = Vec::with_capacity(builder.size(0));
    builder.write(&mut frame, &[]).unwrap();
    let stack: Vec<u8> = tags
        .iter()
        .flat_map(|(tpid, tci)| [tpid.to_be_bytes(), tci.to_be_bytes()].concat())
        .collect();
    frame.splice(12..12, stack);
    frame
}

/// True if `frame` is an untagged IPv4 TCP segment from `from` to `to`
/// with SYN and ACK set (a connection accepted).
pub fn is_syn_ack(frame: &[u8], from: (Ipv4Addr, u16), to: (Ipv4Addr, u16)) -> bool {
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        return false;
    };
    let (Some(etherparse::NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(tcp))) =
        (&p.net, &p.transport)
    else {
        return false;
    };
    ip.header().source_addr() == from.0
        && ip.header().destination_addr() == to.0
        && tcp.source_port() == from.1
        && tcp.destination_port() == to.1
        && tcp.syn()
        && tcp.ack()
}

/// An AF_PACKET socket bound to one interface of one namespace (the
/// namespace is fixed when the socket is created; the descriptor is then
/// usable from any thread).
pub struct RawSocket {
    fd: OwnedFd,
}

/// Binds a packet socket to one interface and protocol (network order).
/// libc: nix's `LinkAddr` (sockaddr_ll) can only be read back from the
/// kernel, not built from an ifindex, so this one call stays raw.
#[expect(
    unsafe_code,
    reason = "bind(2) with a sockaddr_ll that nix cannot build"
)]
fn bind_to(fd: &OwnedFd, ifindex: u32, proto: u16) {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid start.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: addr is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
}

impl RawSocket {
    pub fn open(ns: &NetNs, iface: &str) -> RawSocket {
        RawSocket::open_at(&ns.path(), iface)
    }

    /// The same for the namespace at `ns_path` (/run/netns/NAME).
    pub fn open_at(ns_path: &str, iface: &str) -> RawSocket {
        let (path, iface) = (ns_path.to_string(), iface.to_string());
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            let ifindex = nix::net::if_::if_nametoindex(iface.as_str())
                .unwrap_or_else(|e| panic!("interface {iface}: {e}"));
            let fd = socket(
                AddressFamily::Packet,
                SockType::Raw,
                SockFlag::empty(),
                SockProtocol::EthAll,
            )
            .expect("AF_PACKET socket");
            bind_to(&fd, ifindex, ETH_P_ALL.to_be());
            RawSocket { fd }
        })
        .join()
        .expect("thread in namespace panicked")
    }

    /// Sends `frame` unless the interface's queue is full (ENOBUFS):
    /// whether it went out. For floods, which outrun the queue.
    pub fn try_send(&self, frame: &[u8]) -> bool {
        match send(self.fd.as_raw_fd(), frame, MsgFlags::empty()) {
            Ok(n) => n == frame.len(),
            Err(nix::errno::Errno::ENOBUFS | nix::errno::Errno::EAGAIN) => false,
            Err(e) => panic!("send: {e}"),
        }
    }

    pub fn send(&self, frame: &[u8]) {
        let n = send(self.fd.as_raw_fd(), frame, MsgFlags::empty()).expect("send");
        assert_eq!(n, frame.len(), "send: a short write");
    }

    /// Every frame seen on the interface for `window` for which `keep`
    /// holds (frames this socket sent are seen too).
    pub fn collect(&self, window: Duration, keep: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            let mut pfd = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(left.max(Duration::from_millis(1)))
                .unwrap_or(PollTimeout::MAX);
            if !matches!(poll(&mut pfd, timeout), Ok(ready) if ready > 0) {
                continue;
            }
            if let Ok(n) = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
                && n > 0
                && keep(&buf[..n])
            {
                out.push(buf[..n].to_vec());
            }
        }
    }
}
