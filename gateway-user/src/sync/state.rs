//! What the sync client knows about itself, shared by the poller, the
//! heartbeat, `/readyz` and the status file (`edgegw status`).

use std::sync::{Arc, Mutex, OnceLock};

use crate::status::{StatusFile, SyncView};

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
