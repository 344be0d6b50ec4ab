//! Test harness shared by the end-to-end tests.
//!
//! - `lan`: a bridge joining several namespaces on one segment.
//! - `netns`: uniquely named network namespaces and veth pairs, removed by
//!   name on drop (also when the test panics).
//! - `process`: the real `edgegw` binary, started as a process (optionally
//!   inside a namespace) and stopped by pid on drop.
//! - `packets`: frame builders for the BPF_PROG_TEST_RUN fixtures; `wire`:
//!   crafted frames sent and watched on a real interface (AF_PACKET);
//!   `flood`: the benches' XDP traffic generator on a veth end.
//! - `cp`: the real `edgegw-cp` control plane over HTTPS, driven with curl,
//!   on SQLite or on `postgres`: a private PostgreSQL server per test binary;
//!   `cp_client`: a keep-alive client of it for the benches.
//! - `bench_args`: the measuring binaries' options.
//! - `backends`, `certs`, `gateway`: real backends, test certificates and a
//!   configured daemon for the proxy tests; `scripted`: a backend answering
//!   with exact bytes (framings, odd closes, malformed heads).
//! - `podman`: the images of `cargo xtask image` run under podman (runc,
//!   host-sized rlimits), containers and volumes removed on drop.
//! - `redis`: a private redis-server (plain or TLS only) for cluster limits.
//! - `managed`: a gateway node managed by a control plane (config, token,
//!   backups) that survives restarts of its daemon.
#![deny(unsafe_code)]

pub mod apim;
pub mod backends;
pub mod bench_args;
pub mod browser;
pub mod certs;
pub mod cp;
pub mod cp_client;
pub mod flood;
pub mod gateway;
pub mod lan;
pub mod managed;
pub mod netns;
pub mod packets;
pub mod pins;
pub mod podman;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod scripted;
pub mod wire;
pub mod xdp;
