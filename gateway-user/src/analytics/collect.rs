//! The per-request recorder: each thread aggregates into its own map
//! (its lock is taken by that thread on every request and by the roller
//! once a period, so it is practically never contended), keyed by one
//! string built in a reused thread-local buffer: recording allocates only
//! the first time a key is seen in a period.

use std::{
    collections::HashMap,
    fmt::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use gateway_model::analytics::{BUCKETS, Histogram, Row, status_class};
use thread_local::ThreadLocal;

/// Separates the parts of a key; never in a name from the configuration.
const SEP: char = '\u{1f}';

/// One finished request, as the proxy describes it.
pub struct Finished<'a> {
    pub api: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub product: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency: Duration,
}

#[derive(Clone)]
struct Cell {
    requests: u64,
    errors: u64,
    bytes_in: u64,
    bytes_out: u64,
    latency: [u64; BUCKETS],
}

type Shard = HashMap<String, Cell, foldhash::fast::RandomState>;

/// Aggregates finished requests until the roller takes them.
#[derive(Default)]
pub struct Collector {
    shards: ThreadLocal<Arc<Mutex<Shard>>>,
}

/// The calling thread's shard, kept by a request from the thread it
/// arrived on (as `admin::Recorder` is).
#[derive(Clone)]
pub struct ShardHandle(Arc<Mutex<Shard>>);

thread_local! {
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl Collector {
    pub fn shard(&self) -> ShardHandle {
        ShardHandle(self.shards.get_or_default().clone())
    }

    /// Everything recorded since the last `take`, as rows; the maps are
    /// left empty.
    pub fn take(&self) -> Vec<Row> {
        self.rows(std::mem::take)
    }

    /// Everything recorded since the last `take`, left in place.
    pub fn peek(&self) -> Vec<Row> {
        self.rows(|shard| shard.clone())
    }

    fn rows(&self, mut f: impl FnMut(&mut Shard) -> Shard) -> Vec<Row> {
        let mut merged: HashMap<String, Cell> = HashMap::new();
        for shard in self.shards.iter() {
            let cells = f(&mut shard.lock().unwrap_or_else(|e| e.into_inner()));
            for (key, cell) in cells {
                match merged.get_mut(&key) {
                    Some(m) => {
                        m.requests += cell.requests;
                        m.errors += cell.errors;
                        m.bytes_in += cell.bytes_in;
                        m.bytes_out += cell.bytes_out;
                        for (a, b) in m.latency.iter_mut().zip(cell.latency) {
                            *a += b;
                        }
                    }
                    None => {
                        merged.insert(key, cell);
                    }
                }
            }
        }
        let mut rows: Vec<Row> = merged
            .into_iter()
            .map(|(key, c)| {
                let mut parts = key.split(SEP);
                let mut next = || parts.next().unwrap_or_default().to_string();
                Row {
                    api: next(),
                    operation: next(),
                    product: next(),
                    subscription: next(),
                    status_class: next().parse().unwrap_or(5),
                    requests: c.requests,
                    errors: c.errors,
                    bytes_in: c.bytes_in,
                    bytes_out: c.bytes_out,
                    latency: Histogram(c.latency.to_vec()),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            (
                &a.api,
                &a.operation,
                &a.product,
                &a.subscription,
                a.status_class,
            )
                .cmp(&(
                    &b.api,
                    &b.operation,
                    &b.product,
                    &b.subscription,
                    b.status_class,
                ))
        });
        rows
    }
}

impl ShardHandle {
    /// Records one finished request.
    pub fn record(&self, f: &Finished) {
        let class = status_class(f.status);
        KEY.with_borrow_mut(|key| {
            key.clear();
            for part in [f.api, f.operation, f.product, f.subscription] {
                key.push_str(part.unwrap_or_default());
                key.push(SEP);
            }
            let _ = write!(key, "{class}");
            let mut shard = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let cell = match shard.get_mut(key.as_str()) {
                Some(cell) => cell,
                None => shard.entry(key.clone()).or_insert(Cell {
                    requests: 0,
                    errors: 0,
                    bytes_in: 0,
                    bytes_out: 0,
                    latency: [0; BUCKETS],
                }),
            };
            cell.requests += 1;
            cell.errors += u64::from(class == 5);
            cell.bytes_in += f.bytes_in;
            cell.bytes_out += f.bytes_out;
            let micros = u64::try_from(f.latency.as_micros()).unwrap_or(u64::MAX);
            cell.latency[Histogram::bucket(micros)] += 1;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(api: &str, status: u16, ms: u64) -> Finished<'_> {
        Finished {
            api: Some(api),
            operation: Some("get"),
            product: None,
            subscription: Some("sub-1"),
            status,
            bytes_in: 10,
            bytes_out: 100,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn requests_of_every_thread_merge_into_rows_and_take_empties_them() {
        let c = Arc::new(Collector::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let shard = c.shard();
                    for i in 0..100 {
                        shard.record(&finished("orders", if i % 10 == 0 { 503 } else { 200 }, 3));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        c.shard().record(&finished("pets", 404, 700));
        assert_eq!(c.peek().len(), 3, "peek leaves the rows");
        let rows = c.take();
        let ok = &rows[0];
        assert_eq!((ok.api.as_str(), ok.status_class), ("orders", 2));
        assert_eq!((ok.requests, ok.errors), (360, 0));
        assert_eq!((ok.bytes_in, ok.bytes_out), (3600, 36_000));
        assert_eq!(ok.latency.quantile_ms(0.99), Some(5));
        let failed = &rows[1];
        assert_eq!(
            (failed.status_class, failed.requests, failed.errors),
            (5, 40, 40)
        );
        assert_eq!((rows[2].api.as_str(), rows[2].status_class), ("pets", 4));
        assert_eq!(rows[2].subscription, "sub-1");
        assert_eq!(rows[2].product, "");
        assert!(c.take().is_empty());
    }
}
