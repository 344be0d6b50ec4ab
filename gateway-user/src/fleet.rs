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
//! The state (unreported usage, known fleet totals of current windows)
//! survives a restart through a small JSON file written atomically.

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

pub struct Fleet {
    counters: Mutex<HashMap<(String, u64), Entry>>,
    /// Where the state is kept across restarts.
    file: Option<PathBuf>,
}

impl Fleet {
    /// Empty counters, persisted to `file` if given.
    pub fn new(file: Option<PathBuf>) -> Fleet {
        Fleet {
            counters: Mutex::new(HashMap::new()),
            file,
        }
    }

    /// Loads the state left by the previous run (expired windows dropped;
    /// usage that was being sent counts as unreported). A missing file is
    /// a first start; an unreadable one is logged and ignored.
    pub fn load(file: PathBuf, now: u64) -> Fleet {
        let fleet = Fleet::new(Some(file.clone()));
        let list: Vec<Persisted> = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(list) => list,
                Err(e) => {
                    tracing::error!(file = %file.display(), error = %e, "quota state file is corrupt; local quota usage starts from zero");
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::error!(file = %file.display(), error = %e, "cannot read the quota state file");
                Vec::new()
            }
        };
        {
            let mut counters = fleet.lock();
            for p in list {
                if p.entry.period > 0 && p.window + p.entry.period > now {
                    let mut e = p.entry;
                    e.unreported += std::mem::take(&mut e.sending);
                    counters.insert((p.counter, p.window), e);
                }
            }
        }
        fleet
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Entry>> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one call of `counter` against `calls` per `period` seconds.
    pub fn hit(&self, counter: &str, calls: u64, period: u64, now: u64) -> FleetDecision {
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
        entry.unreported += 1;
        FleetDecision::Allowed {
            remaining: calls - used - 1,
            reset,
        }
    }

    /// The unreported usage, moved to "sending" until `acknowledged` or
    /// `failed` is called.
    pub fn take_deltas(&self) -> Vec<Usage> {
        let mut counters = self.lock();
        let mut out = Vec::new();
        for ((counter, window), e) in counters.iter_mut() {
            if e.unreported > 0 {
                e.sending += std::mem::take(&mut e.unreported);
                out.push(Usage {
                    counter: counter.clone(),
                    window: *window,
                    period: e.period,
                    calls: e.sending,
                    kilobytes: 0,
                });
            }
        }
        out
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
    }

    /// The heartbeat failed: what was being sent is unreported again.
    pub fn failed(&self) {
        for e in self.lock().values_mut() {
            e.unreported += std::mem::take(&mut e.sending);
        }
    }

    /// Writes the state file (atomically); a failure is logged.
    pub fn save(&self) {
        let Some(file) = &self.file else { return };
        let list: Vec<Persisted> = self
            .lock()
            .iter()
            .map(|((counter, window), entry)| Persisted {
                counter: counter.clone(),
                window: *window,
                entry: *entry,
            })
            .collect();
        let text = serde_json::to_vec(&list).expect("quota state serialises");
        if let Err(e) = write_atomically(file, &text) {
            tracing::error!(file = %file.display(), error = %e, "cannot write the quota state file");
        }
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
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
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].calls, sent[0].window, sent[0].period),
            (2, now - 40, 60)
        );
        // A failed heartbeat: the same calls are sent again, plus new ones.
        f.failed();
        f.hit("q|a", 10, 60, now);
        assert_eq!(f.take_deltas()[0].calls, 3);
        // Acknowledged; the fleet (another gateway took 6) is known now.
        f.acknowledged(
            &[FleetTotal {
                counter: "q|a".into(),
                window: now - 40,
                calls: 9,
            }],
            now,
        );
        assert!(f.take_deltas().is_empty());
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
        f.take_deltas(); // in flight when the process stops
        f.hit("q|a", 5, 60, now);
        f.hit("old|b", 5, 10, now - 30);
        f.save();
        let g = Fleet::load(file.clone(), now);
        let sent = g.take_deltas();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].calls, 2);
        std::fs::write(&file, b"{garbage").unwrap();
        assert!(Fleet::load(file, now).take_deltas().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
