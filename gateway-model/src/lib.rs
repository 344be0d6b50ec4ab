//! edgegw's model: what the node file, the catalog and the control plane's
//! bundles say, validated. Shared by the gateway (which builds its runtime
//! from it) and the control plane (which checks every write with it), so
//! what the control plane accepts the gateway runs. Data crates only: no
//! eBPF, async runtime or HTTP stack.

#![forbid(unsafe_code)]

pub mod analytics;
pub mod apim;
pub mod catalog;
pub mod cert;
pub mod cidr;
pub mod clock;
pub mod config;
pub mod keys;
pub mod notify;
pub mod policy;
pub mod pool_status;
