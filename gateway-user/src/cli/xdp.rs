//! The daemon's side of XDP: attach (or adopt what is pinned) and write the
//! DoS policy; on reload (driven by `run`), write the new `[dos]` section to
//! the pinned maps in place (no program reload, no window without limits);
//! on exit, leave everything pinned or detach.

use anyhow::Context;

use crate::{
    config::{Config, DosPolicy},
    datapath::{self, Attachment, PinDir, XdpMode},
};

/// Attaches XDP to the configured interface (adopting a pinned program and
/// its maps) and writes the configured DoS policy.
pub fn attach(config: &Config, mode: XdpMode) -> anyhow::Result<Attachment> {
    let max_sources = config
        .dos
        .as_ref()
        .map_or(gateway_common::DEFAULT_SOURCES, |d| d.max_sources);
    let attachment = datapath::attach(&config.iface, mode, max_sources)?;
    if attachment.adopted {
        tracing::info!(iface = %config.iface, "adopted the pinned XDP program and maps; program replaced in place");
    }
    let applied = datapath::apply_policy(attachment.pin_dir(), config.dos.as_ref());
    if let Err(e) = applied {
        // CONFIG is written last, so a partial write leaves the previous
        // policy (or fail open) in force: keep an adopted program, remove a
        // fresh one.
        if attachment.adopted {
            attachment.release();
        } else {
            let _ = attachment.detach();
        }
        return Err(anyhow::Error::new(e).context("writing the DoS policy to the XDP maps"));
    }
    tracing::info!(
        dos = if config.dos.is_some() {
            "enforcing"
        } else {
            "off (counting, fail open)"
        },
        "XDP policy written"
    );
    Ok(attachment)
}

/// Leaves the program pinned and enforcing (the default), or detaches it.
pub fn exit(attachment: Attachment, detach: bool) -> anyhow::Result<()> {
    let iface = attachment.iface().to_string();
    if detach {
        attachment
            .detach()
            .with_context(|| format!("detaching XDP from {iface}"))?;
        tracing::info!(%iface, "XDP detached");
    } else {
        attachment.release();
        tracing::info!(%iface, "XDP left attached and pinned; `edgegw detach --iface {iface}` removes it");
    }
    Ok(())
}

/// Writes a reloaded DoS policy into the pinned maps in place (no window
/// without limits) and makes it `current`; an unchanged policy is left alone.
/// A failed write is the reload's failure: `current` stays, and the previous
/// policy is written back over whatever part of the new one got in (CONFIG
/// is written last, so the program never ran a half-written policy).
pub fn apply_dos(
    dir: &PinDir,
    current: &mut Option<DosPolicy>,
    new: Option<DosPolicy>,
) -> anyhow::Result<()> {
    if new == *current {
        tracing::info!("DoS policy unchanged");
        return Ok(());
    }
    let old_size = current.as_ref().map(|d| d.max_sources);
    if let Some(size) = new.as_ref().map(|d| d.max_sources)
        && old_size.is_some_and(|old| old != size)
    {
        tracing::warn!(
            "dos.max_sources changes only when the maps are recreated (`edgegw detach`, then run)"
        );
    }
    if let Err(e) = datapath::apply_policy(dir, new.as_ref()) {
        if let Err(back) = datapath::apply_policy(dir, current.as_ref()) {
            tracing::error!(error = %back, "restoring the previous DoS policy failed too");
        }
        return Err(anyhow::Error::new(e).context(format!(
            "writing the DoS policy to the XDP maps of \"{}\" (`edgegw status` shows whether XDP is still attached; restart edgegw to attach again)",
            dir.iface
        )));
    }
    tracing::info!(
        dos = if new.is_some() {
            "enforcing"
        } else {
            "off (fail open)"
        },
        "DoS policy reloaded"
    );
    *current = new;
    Ok(())
}
