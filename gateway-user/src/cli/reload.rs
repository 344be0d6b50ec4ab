//! SIGHUP: re-read the config file and write its `[dos]` section to the
//! pinned maps in place (no program reload, no window without limits). An
//! invalid file is rejected whole and the last good policy stays.

use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};

use crate::{
    config::{Config, DosPolicy},
    datapath::{self, PinDir},
};

pub async fn reload_dos_on_sighup(path: PathBuf, dir: PinDir, mut current: Option<DosPolicy>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install a SIGHUP handler; DoS policy reload is off");
        return;
    };
    while hup.recv().await.is_some() {
        let new = match Config::load(&path) {
            Ok(config) => config.dos,
            Err(e) => {
                tracing::error!(error = %e, "config reload rejected; the last good DoS policy stays");
                continue;
            }
        };
        if new == current {
            tracing::info!("config reloaded; DoS policy unchanged");
            continue;
        }
        let old_size = current.as_ref().map(|d| d.max_sources);
        if let Some(size) = new.as_ref().map(|d| d.max_sources)
            && old_size.is_some_and(|old| old != size)
        {
            tracing::warn!(
                "dos.max_sources changes only when the maps are recreated (`edgegw detach`, then run)"
            );
        }
        match datapath::apply_policy(&dir, new.as_ref()) {
            Ok(()) => {
                tracing::info!(
                    dos = if new.is_some() {
                        "enforcing"
                    } else {
                        "off (fail open)"
                    },
                    "DoS policy reloaded"
                );
                current = new;
            }
            Err(e) => tracing::error!(error = %e, "writing the reloaded DoS policy failed"),
        }
    }
}
