//! `GET /v1/gateway/config`: answers at once when the gateway's bundle
//! version differs from its `If-None-Match`, otherwise holds the request
//! until a committed write changes that version (the revision watch wakes
//! every waiter; each compares its own version) or `wait` runs out (304).

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    error::ApiError,
    state::{Lane, State, blocking},
    store::gateways,
};

/// What the long-poll answers.
pub enum Answer {
    /// 200 with the bundle and its version as ETag.
    Bundle { version: u64, body: String },
    /// 200 with the change of subscriptions from the gateway's version
    /// (`BundleDelta`, served as `DELTA_CONTENT_TYPE`).
    Delta { version: u64, body: String },
    /// 304: unchanged during `wait`.
    NotModified { version: u64 },
}

/// The `wait` query parameter: 1 to 60 seconds, default 30.
pub fn parse_wait(value: Option<&str>) -> Result<Duration, ApiError> {
    let secs = match value {
        None => 30,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=60).contains(s))
            .ok_or_else(|| {
                ApiError::bad_request(format!("wait={v} is not a number of seconds from 1 to 60"))
            })?,
    };
    Ok(Duration::from_secs(secs))
}

/// `"17"`, `W/"17"` or `17`; anything else matches no version.
pub fn parse_etag(value: &str) -> Option<u64> {
    value
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// `accepts_delta`: the gateway takes a change of subscriptions in place
/// of the whole bundle (it said so in `Accept`).
pub async fn config(
    state: &Arc<State>,
    gateway: String,
    known: Option<u64>,
    accepts_delta: bool,
    wait: Duration,
) -> Result<Answer, ApiError> {
    // Subscribed before the first read: a write committed in between still
    // marks the watch as changed.
    let mut changes = state.revision.subscribe();
    let deadline = Instant::now() + wait;
    loop {
        let name = gateway.clone();
        let version = blocking(state, Lane::Gateway, move |s| {
            s.store
                .read(|c| gateways::version(c, &name))?
                .ok_or_else(|| {
                    ApiError::unauthorized(format!(
                        "gateway \"{name}\" is not registered (it was deleted)"
                    ))
                })
        })
        .await?;
        if known != Some(version) {
            if let (true, Some(known)) = (accepts_delta, known)
                && let Some(answer) = delta_from(state, &gateway, known).await?
            {
                return Ok(answer);
            }
            let name = gateway.clone();
            let (version, body) = blocking(state, Lane::Gateway, move |s| {
                s.store
                    .read(|c| gateways::bundle(c, &name))?
                    .ok_or_else(|| {
                        ApiError::unauthorized(format!("gateway \"{name}\" is not registered"))
                    })
            })
            .await?;
            return Ok(Answer::Bundle { version, body });
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return Ok(Answer::NotModified { version });
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Ok(Answer::NotModified { version }),
        }
    }
}

/// The gateway's stored delta, if it leads from `known` to its version.
async fn delta_from(
    state: &Arc<State>,
    gateway: &str,
    known: u64,
) -> Result<Option<Answer>, ApiError> {
    let name = gateway.to_string();
    let delta = blocking(state, Lane::Gateway, move |s| {
        Ok(s.store.read(|c| gateways::delta(c, &name))?)
    })
    .await?;
    #[derive(serde::Deserialize)]
    struct Versions {
        from: u64,
        version: u64,
    }
    Ok(delta.and_then(|body| {
        let v: Versions = serde_json::from_str(&body).ok()?;
        (v.from == known).then_some(Answer::Delta {
            version: v.version,
            body,
        })
    }))
}
