//! The first configuration of a managed gateway: the newest backup that
//! verifies (checksum and the gateway's own validation), served at once
//! while the sync catches up in the background; without one, the control
//! plane within `startup_timeout_secs`, else a clear startup error.

use std::time::{Duration, Instant};

use super::{
    backoff::Backoff,
    backup,
    client::{CpClient, Fetched, SyncError},
};
use crate::config::{Bundle, Config, ControlPlane};

/// The configuration a managed gateway starts with.
pub struct Startup {
    pub version: u64,
    /// The bundle as served.
    pub text: String,
    /// The file with the bundle on top, validated.
    pub config: Config,
    /// "backup" or "control-plane".
    pub source: &'static str,
}

fn accept(file: &Config, text: &str) -> Result<(u64, Config), String> {
    let bundle = Bundle::parse(text).map_err(|e| e.to_string())?;
    let config = file.with_bundle(&bundle).map_err(|e| e.to_string())?;
    Ok((bundle.version, config))
}

pub async fn first_bundle(
    cp: &ControlPlane,
    file: &Config,
    client: &CpClient,
) -> anyhow::Result<Startup> {
    let found = backup::newest_valid(&cp.backup_dir, |text| {
        accept(file, text).map(|(_, config)| (text.to_string(), config))
    });
    if let Some((version, path, (text, config))) = found {
        tracing::info!(
            backup = %path.display(),
            version,
            "serving the configuration from the backup; syncing with the control plane in the background"
        );
        return Ok(Startup {
            version,
            text,
            config,
            source: "backup",
        });
    }
    let deadline = Instant::now() + cp.startup_timeout;
    let mut backoff = Backoff::new();
    let mut last = String::from("no attempt made");
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, client.config(None, Duration::from_secs(1))).await {
            Ok(Ok(Fetched::Changed(text))) => match accept(file, &text) {
                Ok((version, config)) => {
                    if let Err(e) =
                        backup::store(&cp.backup_dir, version, &text, cp.backup_generations)
                    {
                        tracing::error!("{e}");
                    }
                    tracing::info!(version, "configuration received from the control plane");
                    return Ok(Startup {
                        version,
                        text,
                        config,
                        source: "control-plane",
                    });
                }
                Err(e) => last = format!("its configuration was rejected: {e}"),
            },
            Ok(Ok(Fetched::Unchanged)) => last = "it answered 304 to a first request".into(),
            Ok(Ok(Fetched::Delta(_))) => {
                last = "it answered a change of subscriptions to a first request".into()
            }
            Ok(Err(SyncError::Unreachable { message, .. })) => last = message,
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => {
                last = format!("no answer within {}s", cp.startup_timeout.as_secs());
                break;
            }
        }
        tracing::warn!("waiting for the control plane: {last}");
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(backoff.next_wait().min(left)).await;
    }
    anyhow::bail!(
        "no configuration: control plane {} unreachable ({last}) and no valid backup in {}; start or fix the control plane (URL, token_file, ca_file), or restore a backup there",
        cp.urls.join(", "),
        cp.backup_dir.display()
    )
}

/// A managed gateway before it serves: its client, shared sync state,
/// fleet counters (handed to the quota policies by the state registry)
/// and first bundle.
pub struct Prepared {
    pub client: std::sync::Arc<CpClient>,
    pub state: std::sync::Arc<super::SyncState>,
    pub fleet: std::sync::Arc<crate::fleet::Fleet>,
    pub startup: Startup,
}

pub async fn prepare(cp: &ControlPlane, file: &Config) -> anyhow::Result<Prepared> {
    use std::sync::Arc;
    backup::check_writable(&cp.backup_dir)?;
    let client = Arc::new(CpClient::new(cp).map_err(|e| anyhow::anyhow!("control_plane: {e}"))?);
    let fleet = Arc::new(crate::fleet::Fleet::load(
        cp.backup_dir.join(super::QUOTA_STATE_FILE),
        crate::clock::now_secs(),
    ));
    let startup = first_bundle(cp, file, &client).await?;
    let state = Arc::new(super::SyncState::new(&cp.url));
    state.update(|v| {
        v.version = Some(startup.version);
        v.source = startup.source.into();
        if startup.source == "control-plane" {
            v.last_sync_at = Some(crate::clock::now_secs());
        }
    });
    Ok(Prepared {
        client,
        state,
        fleet,
        startup,
    })
}
