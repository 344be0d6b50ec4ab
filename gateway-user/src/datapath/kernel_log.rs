//! The XDP program's own log (its rare fail-open events, see
//! `gateway-ebpf/src/events.rs`), read from aya-log's `AYA_LOGS` ring buffer
//! into the daemon's tracing log under the target `edgegw::xdp`. The reader
//! starts when the program is attached and stops with its `Attachment`.
//!
//! The ring buffer belongs to the program that was loaded: a daemon that
//! exits leaving the program pinned leaves nobody to read it (the kernel
//! drops records once it is full), and the next daemon replaces the
//! program, and so the buffer, with its own.

use aya::Ebpf;
use aya_log::EbpfLogger;
use tokio::{io::unix::AsyncFd, sync::oneshot};

/// The tracing target of every line the program logs.
pub const TARGET: &str = "edgegw::xdp";

/// Hands aya-log's records to tracing, with the program's module as a field.
pub struct ToTracing;

impl log::Log for ToTracing {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let message = record.args();
        let module = record.module_path().unwrap_or_default();
        match record.level() {
            log::Level::Error => tracing::error!(target: TARGET, module, "{message}"),
            log::Level::Warn => tracing::warn!(target: TARGET, module, "{message}"),
            log::Level::Info => tracing::info!(target: TARGET, module, "{message}"),
            log::Level::Debug => tracing::debug!(target: TARGET, module, "{message}"),
            log::Level::Trace => tracing::trace!(target: TARGET, module, "{message}"),
        }
    }

    fn flush(&self) {}
}

/// The running reader; dropping it stops the reader after a last read.
pub struct KernelLog {
    _stop: oneshot::Sender<()>,
}

impl KernelLog {
    /// Takes the program's log buffer out of `ebpf` and reads it on the
    /// current tokio runtime until the returned value is dropped.
    pub fn start(ebpf: &mut Ebpf) -> Result<KernelLog, String> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("no tokio runtime to read it on".into());
        }
        let logger = EbpfLogger::init_with_logger(ebpf, ToTracing).map_err(|e| e.to_string())?;
        // SAFETY: the logger owns the ring buffer's descriptor and neither
        // closes nor replaces it while the AsyncFd owns the logger.
        let fd = unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) }
            .map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(forward(fd, stopped));
        Ok(KernelLog { _stop: stop })
    }
}

async fn forward(mut fd: AsyncFd<EbpfLogger<ToTracing>>, mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            ready = fd.readable_mut() => match ready {
                Ok(mut guard) => {
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                Err(error) => {
                    tracing::warn!(target: TARGET, %error, "reading the XDP program's log failed; its events are no longer logged");
                    return;
                }
            },
            // The sender is dropped with the attachment.
            _ = &mut stopped => {
                fd.get_mut().flush();
                return;
            }
        }
    }
}
