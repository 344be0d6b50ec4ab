//! The configuration long-poll: ask with the version seen last, apply what
//! changes, back off with jitter while the control plane is unreachable.
//!
//! A rejected bundle is remembered as "seen" so the control plane holds the
//! next request until a newer version exists, rather than serving the same
//! bad bundle in a loop; the last good configuration keeps running.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    Syncer,
    backoff::Backoff,
    backup,
    client::{Fetched, SyncError},
};
use crate::clock::now_secs;

/// How often a refused token is logged (it is retried far more often).
const TOKEN_LOG_EVERY: Duration = Duration::from_secs(60);

pub async fn run(sync: Arc<Syncer>) {
    let mut seen = sync.applier.version();
    let mut backoff = Backoff::new();
    let mut token_logged: Option<Instant> = None;
    loop {
        let fetched = sync.client.config(seen, sync.cp.poll_wait).await;
        let error = match fetched {
            Ok(Fetched::Changed(text)) => {
                sync.heartbeat_now.notify_one();
                match apply(&sync, &text) {
                    Some(version) => {
                        seen = Some(version);
                        backoff.reset();
                    }
                    // Not even a version: asking again would get the same.
                    None => tokio::time::sleep(backoff.next_wait()).await,
                }
                continue;
            }
            Ok(Fetched::Delta(text)) => {
                sync.heartbeat_now.notify_one();
                match sync.applier.apply_delta(&text) {
                    Ok((version, whole)) => {
                        applied(&sync, version, &whole);
                        seen = Some(version);
                        backoff.reset();
                    }
                    // The whole bundle is asked for instead, and judged.
                    Err(reason) => {
                        tracing::warn!(
                            "a change of subscriptions from the control plane was not applied ({reason}); asking for the whole configuration"
                        );
                        seen = None;
                    }
                }
                continue;
            }
            Ok(Fetched::Unchanged) => {
                backoff.reset();
                sync.state.update(|v| {
                    v.url = sync.client.url().to_string();
                    v.last_sync_at = Some(now_secs());
                    v.token_error = None;
                    if v.last_sync_error.as_deref().is_some_and(is_fetch_error) {
                        v.last_sync_error = None;
                    }
                });
                token_logged = None;
                continue;
            }
            Err(e) => e,
        };
        let message = error.to_string();
        match error {
            SyncError::TokenRejected(_) => {
                if token_logged.is_none_or(|t| t.elapsed() >= TOKEN_LOG_EVERY) {
                    tracing::error!(
                        "{message}; still serving configuration version {}; write a new token to {} (re-read on every attempt)",
                        version_text(sync.applier.version()),
                        sync.cp.token_file.display()
                    );
                    token_logged = Some(Instant::now());
                }
                sync.state.update(|v| v.token_error = Some(message.clone()));
            }
            _ => {
                tracing::warn!("configuration sync failed, retrying: {message}");
                sync.state
                    .update(|v| v.last_sync_error = Some(format!("{FETCH}{message}")));
            }
        }
        // A heartbeat that gets through again (e.g. with a new token)
        // ends the wait early.
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_wait()) => {}
            _ = sync.poll_now.notified() => backoff.reset(),
        }
    }
}

/// Prefix of fetch errors (cleared by the next good exchange; a rejected
/// bundle's error stays until a bundle applies).
const FETCH: &str = "fetch: ";

fn is_fetch_error(e: &str) -> bool {
    e.starts_with(FETCH)
}

/// Applies a served bundle; returns its version when it parsed (applied or
/// rejected), so it is not asked for again.
fn apply(sync: &Syncer, text: &str) -> Option<u64> {
    let served = crate::config::Bundle::parse(text).ok().map(|b| b.version);
    match sync.applier.apply_bundle(text) {
        Ok(version) => {
            applied(sync, version, text);
            Some(version)
        }
        Err(reason) => {
            tracing::error!(
                "configuration version {} from the control plane rejected, version {} keeps running: {reason}",
                version_text(served),
                version_text(sync.applier.version())
            );
            sync.state.update(|v| {
                v.last_sync_at = Some(now_secs());
                v.last_sync_error = Some(format!(
                    "version {} rejected: {reason}",
                    version_text(served)
                ));
                v.token_error = None;
            });
            served
        }
    }
}

/// Backs up the bundle `text` now in force and records it in the state.
fn applied(sync: &Syncer, version: u64, text: &str) {
    let cp = &sync.cp;
    if let Err(e) = backup::store(&cp.backup_dir, version, text, cp.backup_generations) {
        tracing::error!("{e}");
    }
    sync.state.update(|v| {
        v.url = sync.client.url().to_string();
        v.version = Some(version);
        v.source = "control-plane".into();
        v.last_sync_at = Some(now_secs());
        v.last_sync_error = None;
        v.token_error = None;
    });
}

fn version_text(v: Option<u64>) -> String {
    v.map_or("none".into(), |v| v.to_string())
}
