//! Thread per core: connections are accepted on the main runtime and handed
//! round-robin to one worker thread per CPU, each running a current-thread
//! runtime (like nginx's worker processes). A connection, its requests and
//! its backend connections (see `backend`: one pool per thread) then stay
//! on one thread: no work stealing, no cross-thread wake-ups on the
//! request path.

use std::{future::Future, io, pin::Pin, thread};

use tokio::sync::mpsc;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Workers {
    queues: Vec<mpsc::UnboundedSender<Job>>,
    next: usize,
}

impl Workers {
    /// One worker per available CPU; if threads cannot be started (logged),
    /// connections are served on the calling runtime.
    pub fn start() -> Workers {
        let n = thread::available_parallelism().map_or(1, |n| n.get());
        let queues = (0..n)
            .map(worker)
            .collect::<io::Result<Vec<_>>>()
            .unwrap_or_else(|err| {
                tracing::error!(error = %err, "cannot start the proxy worker threads; serving on one runtime");
                Vec::new()
            });
        Workers { queues, next: 0 }
    }

    /// Runs `job` on the next worker.
    pub fn spawn(&mut self, job: impl Future<Output = ()> + Send + 'static) {
        if self.queues.is_empty() {
            tokio::spawn(job);
            return;
        }
        let i = self.next % self.queues.len();
        self.next = self.next.wrapping_add(1);
        if let Err(mpsc::error::SendError(job)) = self.queues[i].send(Box::pin(job)) {
            // A worker thread only ends if it panicked: serve here instead.
            tracing::error!(
                worker = i,
                "proxy worker is gone; serving on the main runtime"
            );
            tokio::spawn(job);
        }
    }
}

fn worker(i: usize) -> io::Result<mpsc::UnboundedSender<Job>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    thread::Builder::new()
        .name(format!("edgegw-worker-{i}"))
        .spawn(move || {
            // Runs until `Workers` is dropped; dropping the runtime then
            // closes the connections still open on it.
            runtime.block_on(async {
                while let Some(job) = rx.recv().await {
                    tokio::spawn(job);
                }
            });
        })?;
    Ok(tx)
}
