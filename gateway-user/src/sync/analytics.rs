//! Sends the analytics outbox to the control plane
//! (`POST /v1/gateway/analytics`, the gateway's token), oldest batch
//! first. A batch leaves the outbox only when the control plane accepted
//! it (2xx: counted, or already counted) or refused it for good (a 4xx
//! other than 401/404/408/429: counted as refused, not sent again). While
//! the control plane is unreachable the batches wait on disk and are sent
//! again after a backoff; the control plane counts each batch id once.

use std::sync::{Arc, atomic::Ordering};

use bytes::Bytes;

use super::{Syncer, backoff::Backoff, client::Delivery};
use crate::analytics::Analytics;

pub async fn run(sync: Arc<Syncer>, analytics: Arc<Analytics>) {
    let Some(outbox) = &analytics.outbox else {
        return;
    };
    let mut backoff = Backoff::new();
    loop {
        let next = match outbox.oldest() {
            Ok(next) => next,
            Err(e) => {
                analytics.set_error(format!(
                    "reading the analytics outbox {}: {e}; check the directory's permissions",
                    outbox.dir().display()
                ));
                tokio::time::sleep(analytics.period).await;
                continue;
            }
        };
        let Some((path, body)) = next else {
            tokio::select! {
                _ = analytics.written.notified() => {}
                _ = tokio::time::sleep(analytics.period) => {}
            }
            continue;
        };
        match sync.client.analytics(Bytes::from(body)).await {
            Ok(delivery) => {
                backoff.reset();
                if let Err(e) = outbox.remove(&path) {
                    analytics.set_error(format!(
                        "deleting the sent analytics batch {}: {e}; check the directory's permissions",
                        path.display()
                    ));
                    tokio::time::sleep(analytics.period).await;
                    continue;
                }
                match delivery {
                    Delivery::Accepted { duplicate } => {
                        analytics.sent.fetch_add(1, Ordering::Relaxed);
                        if duplicate {
                            analytics.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        analytics.clear_error();
                        analytics.publish();
                    }
                    Delivery::Refused(message) => {
                        analytics.refused.fetch_add(1, Ordering::Relaxed);
                        analytics.set_error(format!(
                            "the control plane refused analytics batch {}: {message}; dropped and counted in refused_batches",
                            path.file_name().unwrap_or_default().to_string_lossy()
                        ));
                    }
                }
            }
            Err(e) => {
                analytics.set_error(format!(
                    "sending analytics: {e}; the batches stay in the outbox and are sent again"
                ));
                let wait = backoff
                    .next_wait()
                    .min(analytics.period.max(std::time::Duration::from_secs(1)));
                tokio::time::sleep(wait).await;
            }
        }
    }
}
