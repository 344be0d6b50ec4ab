//! The one path by which a configuration takes effect, for SIGHUP and for
//! the control plane's bundles alike: (file config + current bundle) →
//! `Config::with_bundle` → `Gateway::build` (in the state registry, which
//! carries counters, pools, JWKS caches and escalation over) → DoS policy
//! written to the XDP maps → swapped into the `ArcSwap` → registry commit →
//! status file and metrics. Anything invalid is rejected whole before the
//! swap: the last good configuration and its runtime state keep running.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use super::xdp;
use crate::{
    admin::Metrics,
    config::{Bundle, BundleDelta, Config, DosPolicy},
    datapath::PinDir,
    proxy::{Gateway, SharedGateway},
    state_registry::StateRegistry,
    status::StatusFile,
    sync::Applier,
};

/// The bundle in force, kept as served so SIGHUP can apply it again.
struct CurrentBundle {
    version: u64,
    text: Arc<str>,
}

struct Inputs {
    /// The node's own file, validated.
    file: Config,
    bundle: Option<CurrentBundle>,
    /// The DoS policy the maps hold now.
    dos: Option<DosPolicy>,
}

pub struct Live {
    pub gateway: SharedGateway,
    /// The runtime state of `gateway`, which the next build starts from.
    registry: Arc<StateRegistry>,
    metrics: Arc<Metrics>,
    /// Pin directory of the attached program, whose maps take the DoS policy.
    xdp: Option<PinDir>,
    status: Option<Arc<StatusFile>>,
    config_path: PathBuf,
    inputs: Mutex<Inputs>,
}

impl Live {
    /// `gateway` was built from `file` with `bundle` (version, text) on top,
    /// in `registry`.
    #[expect(
        clippy::too_many_arguments,
        reason = "each is one part of the running daemon"
    )]
    pub fn new(
        gateway: SharedGateway,
        registry: Arc<StateRegistry>,
        metrics: Arc<Metrics>,
        xdp: Option<PinDir>,
        status: Option<Arc<StatusFile>>,
        config_path: PathBuf,
        file: Config,
        bundle: Option<(u64, String)>,
    ) -> Live {
        let dos = gateway.load().config.dos.clone();
        Live {
            gateway,
            registry,
            metrics,
            xdp,
            status,
            config_path,
            inputs: Mutex::new(Inputs {
                file,
                bundle: bundle.map(|(version, text)| CurrentBundle {
                    version,
                    text: text.into(),
                }),
                dos,
            }),
        }
    }

    /// SIGHUP: the re-read file, with the current bundle on top.
    /// Applies a reloaded file or refuses it whole; true if applied.
    pub fn reload_file(&self, file: anyhow::Result<Config>) -> bool {
        let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        let started = std::time::Instant::now();
        let result = file.and_then(|file| {
            let bundle = match &inputs.bundle {
                Some(b) => Some(Bundle::parse(&b.text)?),
                None => None,
            };
            self.apply(&mut inputs, &file, bundle.as_ref())?;
            inputs.file = file;
            Ok(())
        });
        match result {
            Ok(()) => {
                if let Some(status) = &self.status {
                    let text = std::fs::read(&self.config_path).map_err(|e| e.to_string());
                    status.record_reload("file", text.as_deref().map_err(Clone::clone));
                }
                tracing::info!(
                    config = %self.config_path.display(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "configuration reloaded"
                );
                true
            }
            Err(err) => {
                self.rejected("file", &format!("{err:#}"));
                tracing::error!(
                    "configuration reload rejected, the previous configuration stays: {err:#}"
                );
                false
            }
        }
    }

    /// Builds and swaps in `file` + `bundle`, or changes nothing.
    fn apply(
        &self,
        inputs: &mut Inputs,
        file: &Config,
        bundle: Option<&Bundle>,
    ) -> anyhow::Result<()> {
        let config = match bundle {
            Some(bundle) => file.with_bundle(bundle)?,
            None => file.clone(),
        };
        let (gateway, state) = self.registry.build(|s| Gateway::build(&config, s))?;
        let old = self.gateway.load();
        for (what, before, after) in [
            (
                "gateway.listen",
                Some(old.config.listen),
                Some(config.listen),
            ),
            (
                "tls.listen",
                old.config.tls.as_ref().map(|t| t.listen),
                config.tls.as_ref().map(|t| t.listen),
            ),
            ("admin.listen", old.config.admin, config.admin),
        ] {
            if before != after {
                tracing::warn!(
                    "{what} changed from {before:?} to {after:?}: listeners change only on restart"
                );
            }
        }
        // The DoS policy first: the one step that can still fail, and then
        // nothing has been swapped.
        if let Some(dir) = &self.xdp {
            xdp::apply_dos(dir, &mut inputs.dos, config.dos.clone())?;
        }
        self.gateway.store(Arc::new(gateway));
        self.registry.commit(state);
        self.metrics.reloaded(true);
        drop(old);
        crate::memory::release_freed();
        Ok(())
    }

    fn rejected(&self, source: &str, message: &str) {
        self.metrics.reloaded(false);
        if let Some(status) = &self.status {
            status.record_reload(source, Err(message.to_string()));
        }
    }
}

impl Applier for Live {
    fn apply_bundle(&self, text: &str) -> Result<u64, String> {
        let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        let bundle = match Bundle::parse(text) {
            Ok(bundle) => bundle,
            Err(err) => {
                self.rejected("control-plane", &err.to_string());
                return Err(err.to_string());
            }
        };
        let file = inputs.file.clone();
        let started = std::time::Instant::now();
        let version = bundle.version;
        match self.apply(&mut inputs, &file, Some(&bundle)) {
            Ok(()) => {
                inputs.bundle = Some(CurrentBundle {
                    version,
                    text: text.into(),
                });
                if let Some(status) = &self.status {
                    status.record_reload("control-plane", Ok(text.as_bytes()));
                }
                let apis = self.gateway.load().config.apis.len();
                tracing::info!(
                    version,
                    apis,
                    took_ms = started.elapsed().as_millis() as u64,
                    "configuration from the control plane applied"
                );
                Ok(version)
            }
            Err(err) => {
                let message = format!("{err:#}");
                self.rejected("control-plane", &message);
                Err(message)
            }
        }
    }

    fn apply_delta(&self, text: &str) -> Result<(u64, Arc<str>), String> {
        let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        let started = std::time::Instant::now();
        let delta = BundleDelta::parse(text).map_err(|e| e.to_string())?;
        let current = inputs
            .bundle
            .as_ref()
            .ok_or("no configuration from the control plane is in force")?;
        if current.version != delta.from {
            return Err(format!(
                "it applies to version {}, and version {} is in force",
                delta.from, current.version
            ));
        }
        let gateway = self.gateway.load();
        let catalog = gateway
            .catalog
            .as_ref()
            .ok_or("the configuration in force has no catalog")?;
        // Validated before the swap, so that a refusal changes nothing.
        catalog.swap_subscriptions(catalog.patched_subscriptions(&delta)?);
        let took = started.elapsed();
        // After the swap (it is not needed to serve): the whole bundle, for
        // the backup and for SIGHUP. The version matched, so it cannot fail
        // short of a bug; if it does, the whole bundle is asked for.
        let whole: Arc<str> = delta
            .apply_to_text(&current.text)
            .map_err(|e| e.to_string())?
            .into();
        inputs.bundle = Some(CurrentBundle {
            version: delta.version,
            text: whole.clone(),
        });
        self.metrics.reloaded(true);
        if let Some(status) = &self.status {
            status.record_reload("control-plane", Ok(whole.as_bytes()));
        }
        tracing::info!(
            version = delta.version,
            upserted = delta.upsert.len(),
            deleted = delta.delete.len(),
            took_ms = took.as_millis() as u64,
            "subscriptions from the control plane applied"
        );
        Ok((delta.version, whole))
    }

    fn version(&self) -> Option<u64> {
        let inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        inputs.bundle.as_ref().map(|b| b.version)
    }
}
