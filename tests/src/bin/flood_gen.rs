//! `flood_gen --netns PATH --iface NAME --secs N`: floods out of a veth
//! end (see `edgegw_tests::flood`) for at most N seconds (1 to 600), then
//! prints "sent FRAMES frames in SECS s by GENERATOR" (see
//! `edgegw_tests::flood`). Started by `cargo xtask bench
//! proxy --only flood` beside the legitimate client.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut netns, mut iface, mut secs) = (None, None, None);
    for pair in args.chunks(2) {
        match pair {
            [k, v] if k == "--netns" => netns = Some(v.clone()),
            [k, v] if k == "--iface" => iface = Some(v.clone()),
            [k, v] if k == "--secs" => secs = v.parse::<u64>().ok(),
            _ => {}
        }
    }
    let (Some(netns), Some(iface), Some(secs)) = (netns, iface, secs) else {
        eprintln!("usage: flood_gen --netns PATH --iface NAME --secs N");
        std::process::exit(2);
    };
    let start = Instant::now();
    let flood = edgegw_tests::flood::flood(&netns, &iface, Duration::from_secs(secs.clamp(1, 600)));
    println!(
        "sent {} frames in {:.3} s by {}",
        flood.sent,
        start.elapsed().as_secs_f64(),
        flood.generator
    );
}
