//! The JSON access log: one line per request, written by a thread of its
//! own so that the request path never blocks on the disk.

use std::{
    io::Write,
    sync::mpsc::{Sender, channel},
};

use crate::config::AccessLogTarget;

/// A handle to the log writer; the thread ends when the last handle drops.
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<Sender<Vec<u8>>>,
}

impl AccessLog {
    pub fn open(target: &AccessLogTarget) -> std::io::Result<AccessLog> {
        let mut out: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok(AccessLog { tx: None }),
            AccessLogTarget::Stdout => Box::new(std::io::stdout()),
            AccessLogTarget::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(64 * 1024);
                while let Ok(line) = rx.recv() {
                    buf.extend_from_slice(&line);
                    // Batch whatever else is queued into one write.
                    while let Ok(line) = rx.try_recv() {
                        buf.extend_from_slice(&line);
                    }
                    if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
                        eprintln!("edgegw: access log write failed: {e}");
                    }
                    buf.clear();
                }
            })?;
        Ok(AccessLog { tx: Some(tx) })
    }

    /// False when the log is off: callers skip building the entry.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues `entry` as one JSON line, serialized straight into the
    /// line's buffer (no intermediate `serde_json::Value`).
    pub fn write(&self, entry: &impl serde::Serialize) {
        if let Some(tx) = &self.tx {
            let mut line = Vec::with_capacity(320);
            if serde_json::to_writer(&mut line, entry).is_ok() {
                line.push(b'\n');
                let _ = tx.send(line);
            }
        }
    }
}
