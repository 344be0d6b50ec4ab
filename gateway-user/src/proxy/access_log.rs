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
    tx: Option<Sender<String>>,
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
        let (tx, rx) = channel::<String>();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(64 * 1024);
                while let Ok(line) = rx.recv() {
                    buf.extend_from_slice(line.as_bytes());
                    // Batch whatever else is queued into one write.
                    while let Ok(line) = rx.try_recv() {
                        buf.extend_from_slice(line.as_bytes());
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

    pub fn write(&self, entry: &serde_json::Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(format!("{entry}\n"));
        }
    }
}
