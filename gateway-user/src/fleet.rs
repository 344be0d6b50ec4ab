//! Fleet-wide quotas: `quota` and `quota-by-key` counted across every
//! gateway of the control plane.
//!
//! Windows align to the wall clock (`now - now % period`) so gateways agree
//! on them without talking to each other. A counter is named `<policy
//! place>|<rendered key>`, the same on every gateway. A call is admitted
//! while `fleet total + own unreported usage < calls`; the unreported usage
//! goes out with the next heartbeat and is dropped only once the control
//! plane answered 200, whose fleet totals then replace the known ones.
//! Between two heartbeats the other gateways' calls are unknown: that is
//! the overshoot documented in `docs/operator-guide.md`.
//!
//! Usage goes out in batches, each with a random id: a batch the control
//! plane did not acknowledge (unreachable, killed, a replica down) is sent
//! again as it was, with the same id, to the same or another replica, and
//! new usage waits for the next batch. The control plane keeps the last
//! batch id of each gateway with the usage it added, in one transaction,
//! and skips a batch it already counted: a delta is neither lost nor
//! counted twice.
//!
//! The state (unreported usage, the batch in flight, known fleet totals of
//! current windows) survives a restart through a small JSON file written
//! atomically.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde::{Deserialize, Serialize};

use crate::files::write_atomically;

/// Outcome of one call against a fleet quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetDecision {
    /// Admitted; `remaining` calls left as far as this gateway knows,
    /// `reset` seconds to the window's end.
    Allowed {
        remaining: u64,
        reset: u64,
    },
    Denied {
        retry_after: u64,
    },
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Entry {
    /// Window length; 0 for a fleet total of a counter not called here
    /// yet (the control plane does not say its period).
    period: u64,
    /// Fleet total at the last acknowledged heartbeat (this gateway's
    /// reported calls included).
    fleet: u64,
    /// Counted here, not yet sent.
    unreported: u64,
    /// Sent in a heartbeat that has not been answered yet.
    #[serde(default)]
    sending: u64,
}

/// One usage delta or fleet total, as the protocol names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub counter: String,
    pub window: u64,
    #[serde(default)]
    pub period: u64,
    pub calls: u64,
    #[serde(default)]
    pub kilobytes: u64,
}

/// A fleet total from a heartbeat answer.
#[derive(Clone, Debug, Deserialize)]
pub struct FleetTotal {
    pub counter: String,
    pub window: u64,
    pub calls: u64,
}

#[derive(Serialize, Deserialize)]
struct Persisted {
    counter: String,
    window: u64,
    #[serde(flatten)]
    entry: Entry,
}

/// The usage of one heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Set when there is usage: the id the control plane deduplicates by.
    pub id: Option<String>,
    pub usage: Vec<Usage>,
}

/// The state file: counters and the batch in flight.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StateFile {
    Batched {
        batch: Option<String>,
        counters: Vec<Persisted>,
    },
    /// Before batch ids: a bare list of counters.
    Plain(Vec<Persisted>),
}

pub struct Fleet {
    counters: Mutex<HashMap<(String, u64), Entry>>,
    /// Id of the batch sent and not acknowledged yet (its usage is the
    /// entries' `sending`). Locked after `counters`.
    in_flight: Mutex<Option<String>>,
    /// Where the state is kept across restarts.
    file: Option<PathBuf>,
}

impl Fleet {
    /// Empty counters, persisted to `file` if given.
    pub fn new(file: Option<PathBuf>) -> Fleet {
        Fleet {
            counters: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(None),
            file,
        }
    }

    /// Loads the state left by the previous run (expired windows dropped).
    /// The batch that was in flight is sent again as it was; usage being
    /// sent by an older edgegw, without a batch id, counts as unreported. A
    /// missing file is a first start; an unreadable one is logged and
    /// ignored.
    pub fn load(file: PathBuf, now: u64) -> Fleet {
        let fleet = Fleet::new(Some(file.clone()));
        let (batch, list) = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(StateFile::Batched { batch, counters }) => (batch, counters),
                Ok(StateFile::Plain(list)) => (None, list),
                Err(e) => {
                    tracing::error!(file = %file.display(), error = %e, "quota state file is corrupt; local quota usage starts from zero");
                    (None, Vec::new())
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, Vec::new()),
            Err(e) => {
                tracing::error!(file = %file.display(), error = %e, "cannot read the quota state file");
                (None, Vec::new())
            }
        };
        {
            let mut counters = fleet.lock();
            for p in list {
                if p.entry.period > 0 && p.window + p.entry.period > now {
                    let mut e = p.entry;
                    if batch.is_none() {
                        e.unreported += std::mem::take(&mut e.sending);
                    }
                    counters.insert((p.counter, p.window), e);
                }
            }
            let sending = counters.values().any(|e| e.sending > 0);
            *fleet.in_flight() = batch.filter(|_| sending);
        }
        fleet
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Entry>> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one call of `counter` against `calls` per `period` seconds.
    pub fn hit(&self, counter: &str, calls: u64, period: u64, now: u64) -> FleetDecision {
        self.decide(counter, calls, period, now, true)
    }

    /// Whether a call would be admitted, without counting it (`add`
    /// counts it once its response is known).
    pub fn peek(&self, counter: &str, calls: u64, period: u64, now: u64) -> FleetDecision {
        self.decide(counter, calls, period, now, false)
    }

    /// Counts one call admitted earlier by `peek`.
    pub fn add(&self, counter: &str, period: u64, now: u64) {
        let period = period.max(1);
        let window = now - now % period;
        let mut counters = self.lock();
        let entry = counters.entry((counter.to_string(), window)).or_default();
        entry.period = period;
        entry.unreported += 1;
    }

    fn decide(
        &self,
        counter: &str,
        calls: u64,
        period: u64,
        now: u64,
        counting: bool,
    ) -> FleetDecision {
        let period = period.max(1);
        let window = now - now % period;
        let reset = window + period - now;
        let mut counters = self.lock();
        let key = (counter.to_string(), window);
        let entry = counters.entry(key).or_default();
        entry.period = period;
        let used = entry.fleet + entry.unreported + entry.sending;
        if used >= calls {
            return FleetDecision::Denied { retry_after: reset };
        }
        if counting {
            entry.unreported += 1;
        }
        FleetDecision::Allowed {
            remaining: calls - used - 1,
            reset,
        }
    }

    /// The usage to send: the batch in flight again, as it was, or else
    /// the unreported usage as a new batch, moved to "sending" until
    /// `acknowledged`.
    pub fn take_deltas(&self) -> Batch {
        let mut counters = self.lock();
        let mut in_flight = self.in_flight();
        if in_flight.is_none() {
            for e in counters.values_mut() {
                e.sending += std::mem::take(&mut e.unreported);
            }
        }
        let usage: Vec<Usage> = counters
            .iter()
            .filter(|(_, e)| e.sending > 0)
            .map(|((counter, window), e)| Usage {
                counter: counter.clone(),
                window: *window,
                period: e.period,
                calls: e.sending,
                kilobytes: 0,
            })
            .collect();
        if usage.is_empty() {
            *in_flight = None;
        } else if in_flight.is_none() {
            *in_flight = Some(new_batch_id());
        }
        Batch {
            id: in_flight.clone(),
            usage,
        }
    }

    /// The control plane took the deltas: they are part of the fleet
    /// totals now, which replace the known ones. Expired windows go.
    pub fn acknowledged(&self, totals: &[FleetTotal], now: u64) {
        let mut counters = self.lock();
        // Totals of counters not called here are replaced whole.
        counters.retain(|_, e| e.period != 0);
        for e in counters.values_mut() {
            // Until the answer says otherwise the sent calls count as fleet usage.
            e.fleet += std::mem::take(&mut e.sending);
        }
        for t in totals {
            counters
                .entry((t.counter.clone(), t.window))
                .or_default()
                .fleet = t.calls;
        }
        counters
            .retain(|(_, window), e| e.period == 0 || window + e.period > now || e.unreported > 0);
        *self.in_flight() = None;
    }

    /// Writes the state file (atomically); a failure is logged.
    pub fn save(&self) {
        let Some(file) = &self.file else { return };
        let counters = self.lock();
        let state = StateFile::Batched {
            batch: self.in_flight().clone(),
            counters: counters
                .iter()
                .map(|((counter, window), entry)| Persisted {
                    counter: counter.clone(),
                    window: *window,
                    entry: *entry,
                })
                .collect(),
        };
        drop(counters);
        let text = serde_json::to_vec(&state).expect("quota state serialises");
        if let Err(e) = write_atomically(file, &text) {
            tracing::error!(file = %file.display(), error = %e, "cannot write the quota state file");
        }
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

/// 128 random bits, hex: unlike the previous batch's id, whatever
/// happened to the process meanwhile.
fn new_batch_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system RNG works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_while_fleet_plus_unreported_is_below_the_limit() {
        let f = Fleet::new(None);
        let now = 1_000_000;
        for left in (0..3).rev() {
            assert_eq!(
                f.hit("q|a", 3, 60, now),
                FleetDecision::Allowed {
                    remaining: left,
                    reset: 20
                }
            );
        }
        assert_eq!(
            f.hit("q|a", 3, 60, now),
            FleetDecision::Denied { retry_after: 20 }
        );
        // The next aligned window starts afresh.
        assert!(matches!(
            f.hit("q|a", 3, 60, now + 20),
            FleetDecision::Allowed { remaining: 2, .. }
        ));
    }

    #[test]
    fn deltas_leave_only_when_acknowledged_and_fleet_totals_count() {
        let f = Fleet::new(None);
        let now = 1_000_000;
        f.hit("q|a", 10, 60, now);
        f.hit("q|a", 10, 60, now);
        let sent = f.take_deltas();
        assert_eq!(sent.usage.len(), 1);
        assert_eq!(
            (
                sent.usage[0].calls,
                sent.usage[0].window,
                sent.usage[0].period
            ),
            (2, now - 40, 60)
        );
        assert!(sent.id.is_some());
        // Not acknowledged (a failed heartbeat, a replica killed): the same
        // batch again, same id; new calls wait for the next one.
        f.hit("q|a", 10, 60, now);
        assert_eq!(f.take_deltas(), sent);
        // Acknowledged; the fleet (another gateway took 6) is known now.
        f.acknowledged(
            &[FleetTotal {
                counter: "q|a".into(),
                window: now - 40,
                calls: 9,
            }],
            now,
        );
        let next = f.take_deltas();
        assert_eq!(next.usage[0].calls, 1, "the call made meanwhile");
        assert_ne!(next.id, sent.id);
        f.acknowledged(
            &[FleetTotal {
                counter: "q|a".into(),
                window: now - 40,
                calls: 9,
            }],
            now,
        );
        assert_eq!(f.take_deltas(), Batch::default());
        assert_eq!(
            f.hit("q|a", 10, 60, now),
            FleetDecision::Allowed {
                remaining: 0,
                reset: 20
            }
        );
        assert!(matches!(
            f.hit("q|a", 10, 60, now),
            FleetDecision::Denied { .. }
        ));
        // A counter only other gateways called yet: its total counts from
        // this gateway's first call on.
        let total = FleetTotal {
            counter: "q|b".into(),
            window: now - 40,
            calls: 10,
        };
        f.acknowledged(&[total], now);
        assert!(matches!(
            f.hit("q|b", 10, 60, now),
            FleetDecision::Denied { .. }
        ));
    }

    #[test]
    fn state_survives_a_restart_without_double_counting() {
        let dir = std::env::temp_dir().join(format!("edgegw-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("quota-state.json");
        let now = 1_000_000;
        let f = Fleet::new(Some(file.clone()));
        f.hit("q|a", 5, 60, now);
        let in_flight = f.take_deltas(); // when the process stops
        f.hit("q|a", 5, 60, now);
        f.hit("old|b", 5, 10, now - 30);
        f.save();
        // After a restart the batch in flight goes again, same id (the
        // control plane may have counted it), then the rest.
        let g = Fleet::load(file.clone(), now);
        assert_eq!(g.take_deltas(), in_flight);
        g.acknowledged(&[], now);
        let rest = g.take_deltas();
        assert_eq!(rest.usage.len(), 1, "{rest:?}");
        assert_eq!(rest.usage[0].calls, 1);
        // A file from before batch ids: what was being sent is unreported.
        std::fs::write(
            &file,
            format!(r#"[{{"counter":"q|a","window":{},"period":60,"fleet":0,"unreported":1,"sending":2}}]"#, now - 40),
        )
        .unwrap();
        assert_eq!(
            Fleet::load(file.clone(), now).take_deltas().usage[0].calls,
            3
        );
        std::fs::write(&file, b"{garbage").unwrap();
        assert!(Fleet::load(file, now).take_deltas().usage.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
