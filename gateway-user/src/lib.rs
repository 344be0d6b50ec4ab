//! edgegw: the gateway daemon and its operator CLI.
//!
//! - `admin`: the admin listener (/healthz, /readyz, /metrics) and metrics.
//! - `config`: the daemon's configuration file, validated into domain types.
//! - `catalog`: the API-management catalog (products, subscriptions, policies).
//! - `policy`: the policy pipeline (scopes, sections, each policy);
//!   policies answer with plain data (`policy::Answer`) that the proxy
//!   renders.
//! - `fleet`: fleet-wide quota counters, handed to the quota policies and
//!   reported by `sync`.
//! - `datapath`: loads, attaches and pins the XDP program; reads its maps.
//! - `proxy`: the HTTP reverse proxy (listener, router, forwarder).
//! - `sync`: the control plane client (config long-poll, backups, heartbeats
//!   reporting fleet-wide quota usage).
//! - `redis_link`: the node's Redis, where cluster-scoped rate limits
//!   lease their budget; handed to the policies through the `Staging`.
//! - `state_registry`: runtime state (counters, pools, JWKS caches,
//!   escalation) that reloads carry over, keyed by identity; a `Staging`
//!   is handed to every build.
//! - `telemetry`: OTLP export of spans and request metrics
//!   (`[telemetry.otlp]`, through the `edgegw_otlp` crate) and the process
//!   metrics and build info of `/metrics`.
//! - `files`: files written atomically (backups, quota state, status).
//! - `tls`: rustls configurations: the HTTPS listener's, and the client's
//!   for backends, JWKS URLs and the control plane.
//! - `cli`: one module per `edgegw` subcommand.
//! - `lifecycle`: what operators and systemd see: `logging`, the `status`
//!   file, sd_`notify` readiness and the `watchdog`.
//!
//! Unsafe code is denied here and allowed, with a reason, only on the
//! modules that call what no safe crate wraps.
#![deny(unsafe_code)]

pub mod admin;
pub mod analytics;
pub mod catalog;
pub mod cli;
pub mod client_cert;
pub mod clock;
pub mod config;
// Unsafe only in `datapath::sys` (bpf(2)) and `datapath::kernel_log`.
pub mod datapath;
pub mod files;
pub mod fleet;
pub mod lifecycle;
pub mod logging;
pub mod memory;
pub use gateway_model::notify;
pub mod policy;
// Narrow this to `h1_client`'s `mod body;`, or drop it if that becomes
// safe code.
#[expect(
    unsafe_code,
    reason = "proxy/h1_client/body.rs reads into spare Vec capacity"
)]
pub mod proxy;
pub mod redis_link;
pub mod state_registry;
pub mod status;
pub mod sync;

/// The error of a body stream, the proxy's and the policies'.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub mod telemetry;
pub mod tls;
pub mod watchdog;

/// The XDP object built by `cargo xtask build-ebpf`, embedded at build time.
/// Aligned because the ELF parser reads it in place.
pub static EBPF_OBJECT: &[u8] = {
    #[repr(C, align(8))]
    struct Aligned<B: ?Sized>(B);
    static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("EDGEGW_EBPF_OBJECT")));
    &ALIGNED.0
};
