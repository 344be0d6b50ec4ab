//! What the sync client knows about itself, shared by the poller, the
//! heartbeat, `/readyz` and the status file (`edgegw status`).

use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::status::StatusFile;

/// The sync view `edgegw status` and `/readyz` show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    /// Control plane base URL.
    pub url: String,
    /// Version of the bundle in force.
    pub version: Option<u64>,
    /// Where it came from: "control-plane" or "backup".
    pub source: String,
    /// Unix seconds of the last successful exchange with the control plane.
    pub last_sync_at: Option<u64>,
    /// The last failure to fetch or apply a bundle; None once one applied.
    pub last_sync_error: Option<String>,
    /// The control plane refuses this gateway's token (its message).
    pub token_error: Option<String>,
    /// Unix seconds of the last acknowledged heartbeat.
    pub last_heartbeat_at: Option<u64>,
    pub last_heartbeat_error: Option<String>,
}

impl SyncView {
    /// One line for `/readyz`.
    pub fn summary(&self) -> String {
        let version = self.version.map_or("none".to_string(), |v| v.to_string());
        match (&self.token_error, &self.last_sync_error) {
            (Some(token), _) => {
                format!("sync: token rejected: {token} (serving version {version})")
            }
            (None, Some(err)) => format!("sync: error: {err} (serving version {version})"),
            (None, None) => format!("sync: ok, version {version} from {}", self.source),
        }
    }
}

/// The shared, mutable sync state.
#[derive(Default)]
pub struct SyncState {
    view: Mutex<SyncView>,
    /// The status file, once published: every change is written there.
    status: OnceLock<Arc<StatusFile>>,
}

impl SyncState {
    pub fn new(url: &str) -> SyncState {
        SyncState {
            view: Mutex::new(SyncView {
                url: url.into(),
                ..SyncView::default()
            }),
            status: OnceLock::new(),
        }
    }

    pub fn view(&self) -> SyncView {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies `change`; returns the new view.
    pub fn update(&self, change: impl FnOnce(&mut SyncView)) -> SyncView {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        let before = view.clone();
        change(&mut view);
        if *view != before
            && let Some(status) = self.status.get()
        {
            let published = view.clone();
            status.update(|s| s.control_plane = Some(published));
        }
        view.clone()
    }

    /// From now on, changes are written to `status` (`edgegw status`).
    pub fn publish_to(&self, status: Arc<StatusFile>) {
        let view = self.view();
        status.update(|s| s.control_plane = Some(view));
        let _ = self.status.set(status);
    }
}
