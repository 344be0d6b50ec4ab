//! The benches' traffic generator: `edgegw_flood` run with
//! BPF_PROG_TEST_RUN live frames out of a veth end, each a 64-byte UDP
//! frame with a random IPv4 source in 10.0.0.0/8, as fast as one CPU sends
//! them (about 3 Mpps here). Used by `xdp_bench` (drop rates) and
//! `flood_gen` (the flood of `cargo xtask bench proxy --only flood`).
//! Where the kernel refuses live frames (EPERM), the same frames go out of
//! an AF_PACKET socket instead, which is slower: the caller is told which.

use std::time::{Duration, Instant};

use aya::{
    Ebpf,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

use crate::packets::{ETH_IPV4, PROTO_UDP, ether, ipv4, udp};

/// Frames per BPF_PROG_TEST_RUN call: the flood stops at most one call
/// after `secs`.
const PER_CALL: u32 = 1_000_000;

/// Frames sent, and how.
pub struct Flood {
    pub sent: u64,
    /// "xdp-live-frames" or "af-packet".
    pub generator: &'static str,
}

/// Floods out of `iface` in the namespace at `ns_path` for `secs`.
pub fn flood(ns_path: &str, iface: &str, secs: Duration) -> Flood {
    let start = Instant::now();
    match live_frames(ns_path, iface, secs) {
        Some(sent) => Flood {
            sent,
            generator: "xdp-live-frames",
        },
        None => {
            eprintln!(
                "flood: the kernel refuses BPF_PROG_TEST_RUN live frames (EPERM); sending from an AF_PACKET socket instead"
            );
            Flood {
                sent: packet_socket(ns_path, iface, secs.saturating_sub(start.elapsed())),
                generator: "af-packet",
            }
        }
    }
}

/// The same frames from an AF_PACKET socket, a new random source in
/// 10.0.0.0/8 for each (xorshift: cheap and good enough for spreading).
fn packet_socket(ns_path: &str, iface: &str, secs: Duration) -> u64 {
    let socket = crate::wire::RawSocket::open_at(ns_path, iface);
    let mut frame = ether(
        ETH_IPV4,
        &[],
        &ipv4([10, 0, 0, 1], PROTO_UDP, &udp(9, &[0; 18])),
    );
    const IPV4_SRC: usize = 14 + 12;
    let (start, mut sent, mut x) = (Instant::now(), 0u64, 0x9e37_79b9u32);
    while start.elapsed() < secs {
        for _ in 0..1024 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let r = x.to_be_bytes();
            frame[IPV4_SRC..IPV4_SRC + 4].copy_from_slice(&[10, r[0], r[1], r[2]]);
            sent += socket.try_send(&frame) as u64;
        }
    }
    sent
}

/// `edgegw_flood` with live frames; None if the kernel refuses them.
fn live_frames(ns_path: &str, iface: &str, secs: Duration) -> Option<u64> {
    let path = ns_path.to_string();
    let iface = iface.to_string();
    std::thread::spawn(move || {
        let netns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let ifindex = nix::net::if_::if_nametoindex(iface.as_str()).expect("if_nametoindex");
        let mut ebpf = Ebpf::load(edgegw::EBPF_OBJECT).unwrap();
        let prog: &mut Xdp = ebpf
            .program_mut("edgegw_flood")
            .unwrap()
            .try_into()
            .unwrap();
        edgegw::datapath::load_program(prog).expect("loading edgegw_flood");
        let frame = ether(
            ETH_IPV4,
            &[],
            &ipv4([10, 0, 0, 1], PROTO_UDP, &udp(9, &[0; 18])),
        );
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let md: [u32; 6] = [0, frame.len() as u32, 0, ifindex, 0, 0];
        let ctx: Vec<u8> = md.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let (start, mut sent) = (Instant::now(), 0u64);
        while start.elapsed() < secs {
            use aya::programs::ProgramError;
            let opts = TestRunOptions {
                data_in: Some(&frame),
                ctx_in: Some(&ctx),
                repeat: PER_CALL,
                attrs: TestRunAttrs::new().xdp_live_frames(256),
                ..Default::default()
            };
            match prog.test_run(opts) {
                Ok(_) => sent += PER_CALL as u64,
                Err(ProgramError::SyscallError(e))
                    if sent == 0 && e.io_error.raw_os_error() == Some(libc::EPERM) =>
                {
                    return None;
                }
                Err(e) => panic!("BPF_PROG_TEST_RUN with live frames: {e}"),
            }
        }
        Some(sent)
    })
    .join()
    .unwrap()
}
