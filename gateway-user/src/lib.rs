//! edgegw: the gateway daemon and its operator CLI.
//!
//! - `admin`: the admin listener (/healthz, /readyz, /metrics) and metrics.
//! - `config`: the daemon's configuration file, validated into domain types.
//! - `catalog`: the API-management catalog (products, subscriptions, policies).
//! - `policy`: the policy pipeline (scopes, sections, each policy).
//! - `datapath`: loads, attaches and pins the XDP program; reads its maps.
//! - `proxy`: the HTTP reverse proxy (listener, router, forwarder).
//! - `sync`: the control plane client (config long-poll, backups, heartbeats,
//!   fleet-wide quotas).
//! - `cli`: one module per `edgegw` subcommand.
//! - `lifecycle`: what operators and systemd see: `logging`, the `status`
//!   file, sd_`notify` readiness and the `watchdog`.

pub mod admin;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod datapath;
pub mod lifecycle;
pub mod logging;
pub mod memory;
pub mod notify;
pub mod policy;
pub mod proxy;
pub mod status;
pub mod sync;
pub mod watchdog;

/// The XDP object built by `cargo xtask build-ebpf`, embedded at build time.
/// Aligned because the ELF parser reads it in place.
pub static EBPF_OBJECT: &[u8] = {
    #[repr(C, align(8))]
    struct Aligned<B: ?Sized>(B);
    static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("EDGEGW_EBPF_OBJECT")));
    &ALIGNED.0
};
