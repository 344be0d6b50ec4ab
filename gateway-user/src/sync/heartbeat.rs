//! Heartbeats (`POST /v1/gateway/heartbeat`): configuration version,
//! uptime, health, last sync error, XDP per-reason totals, the state of
//! each backend pool member and the fleet
//! quota deltas; every `heartbeat_secs` and right after each applied or
//! rejected bundle. The fleet totals of the answer replace the known ones;
//! an unanswered batch is sent again with its id (`fleet`); the quota
//! state file is rewritten after each attempt.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{Syncer, client::SyncError};
use crate::{clock::now_secs, datapath};

pub async fn run(sync: Arc<Syncer>) {
    loop {
        send(&sync).await;
        tokio::select! {
            _ = tokio::time::sleep(sync.cp.heartbeat) => {}
            _ = sync.heartbeat_now.notified() => {}
        }
    }
}

async fn send(sync: &Syncer) {
    let view = sync.state.view();
    let batch = sync.fleet.take_deltas();
    let body = json!({
        "version": sync.applier.version(),
        "uptime_secs": sync.started.elapsed().as_secs(),
        "healthy": view.last_sync_error.is_none() && view.token_error.is_none(),
        "last_sync_error": view.token_error.or(view.last_sync_error),
        "xdp": sync.xdp.as_ref().and_then(xdp_totals),
        "pools": (sync.pools)(),
        "usage": batch.usage,
        "batch": batch.id,
    });
    match sync.client.heartbeat(&body).await {
        Ok(totals) => {
            sync.fleet.acknowledged(&totals, now_secs());
            let before = sync.state.view();
            sync.state.update(|v| {
                v.url = sync.client.url().to_string();
                v.last_heartbeat_at = Some(now_secs());
                v.last_heartbeat_error = None;
                v.token_error = None;
            });
            // The control plane answers (again): the poll need not wait.
            if before.token_error.is_some() || before.last_heartbeat_error.is_some() {
                sync.poll_now.notify_one();
            }
        }
        Err(e) => {
            // The batch stays in flight: sent again, same id, next time.
            let message = e.to_string();
            tracing::debug!("heartbeat failed: {message}");
            sync.state.update(|v| {
                if matches!(e, SyncError::TokenRejected(_)) {
                    v.token_error = Some(message.clone());
                }
                v.last_heartbeat_error = Some(message);
            });
        }
    }
    sync.fleet.save();
}

/// Packets per verdict reason, by the names `edgegw drops` shows.
fn xdp_totals(dir: &datapath::PinDir) -> Option<Value> {
    let counters = datapath::read_counters(dir)
        .inspect_err(|e| tracing::warn!(error = %e, "reading XDP counters for the heartbeat"))
        .ok()?;
    let map: Map<String, Value> = counters
        .iter()
        .map(|(reason, totals)| (reason.name().to_string(), json!(totals.packets)))
        .collect();
    Some(Value::Object(map))
}
