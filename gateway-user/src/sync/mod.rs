//! Sync with the control plane (`docs/sync-protocol.md`), outbound only:
//!
//! - `client`: the HTTPS client (long-poll, heartbeat), deadlines and caps;
//! - `startup`: the first configuration, from the newest valid `backup` or,
//!   without one, from the control plane within `startup_timeout_secs`;
//! - `poll`: the configuration long-poll, applied through the daemon's one
//!   apply path (`Applier`), backed up, with `backoff` when unreachable;
//! - `heartbeat`: status, XDP totals and fleet quota usage every few
//!   seconds and after every applied or rejected bundle;
//! - `analytics`: the analytics outbox, sent oldest first, each batch
//!   deleted once the control plane accepted it;
//! - `state`: what `/readyz` and `edgegw status` show about all this.

pub mod analytics;
mod backoff;
pub mod backup;
pub mod client;
mod heartbeat;
mod poll;
mod startup;
pub mod state;

use std::{sync::Arc, time::Instant};

use tokio::sync::Notify;

pub use client::{CpClient, SyncError};
pub use startup::{Prepared, Startup, first_bundle, prepare};
pub use state::SyncState;

use crate::{config::ControlPlane, datapath::PinDir};

/// The daemon's apply path, as the sync client uses it.
pub trait Applier: Send + Sync {
    /// Validates the bundle `text` with the node's file and swaps it in
    /// whole; its version, or the one-line reason it was rejected.
    fn apply_bundle(&self, text: &str) -> Result<u64, String>;
    /// Applies a change of subscriptions (`config::BundleDelta`) to the
    /// bundle in force; the new version and the whole bundle's text (for
    /// the backup), or why not (then the whole bundle is asked for).
    fn apply_delta(&self, text: &str) -> Result<(u64, Arc<str>), String>;
    /// Version of the bundle in force.
    fn version(&self) -> Option<u64>;
}

/// File of the fleet quota state, next to the backups.
pub const QUOTA_STATE_FILE: &str = "quota-state.json";

/// Everything the background sync tasks share.
pub struct Syncer {
    pub cp: ControlPlane,
    pub client: Arc<CpClient>,
    pub state: Arc<SyncState>,
    pub fleet: Arc<crate::fleet::Fleet>,
    pub applier: Arc<dyn Applier>,
    /// Pins of the attached XDP program, for the heartbeat's counters.
    pub xdp: Option<PinDir>,
    pub started: Instant,
    /// Wakes the heartbeat at once (after an applied or rejected bundle).
    pub heartbeat_now: Notify,
    /// Ends the poll's backoff early (a heartbeat got through again).
    pub poll_now: Notify,
    /// The node's analytics, whose outbox this gateway sends.
    pub analytics: Option<Arc<crate::analytics::Analytics>>,
    /// The backend pools' state, reported with each heartbeat.
    pub pools: PoolViews,
}

/// The backend pools in service, as the heartbeat reports them (made by
/// the node: sync does not depend on the proxy).
pub type PoolViews = Box<dyn Fn() -> Vec<crate::status::PoolView> + Send + Sync>;

/// Spawns the long-poll and the heartbeat; they run until the process ends.
pub fn spawn(sync: Arc<Syncer>) {
    tokio::spawn(poll::run(sync.clone()));
    if let Some(a) = sync.analytics.clone() {
        tokio::spawn(analytics::run(sync.clone(), a));
    }
    tokio::spawn(heartbeat::run(sync));
}
