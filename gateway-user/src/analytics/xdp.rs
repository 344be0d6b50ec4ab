//! XDP drops per period: the pinned per-reason counters and per-source
//! state are totals since the maps were created (they outlive restarts),
//! so each period reports the difference from the previous reading.

use std::collections::HashMap;

use gateway_common::Reason;
use gateway_model::analytics::{DroppedSource, Drops as ReasonDrops, MAX_SOURCES};

use crate::datapath::{self, PinDir};

/// Sources reported per period.
const TOP: usize = 10;

pub struct Drops {
    dir: Option<PinDir>,
    reasons: Option<HashMap<&'static str, u64>>,
    sources: Option<HashMap<String, u64>>,
}

impl Drops {
    pub fn new(dir: Option<PinDir>) -> Drops {
        // Counters already pinned (a restart that adopts the program)
        // are the baseline; maps created later, by this process's attach,
        // start at zero.
        let pinned = dir
            .as_ref()
            .is_some_and(|d| datapath::read_counters(d).is_ok());
        let mut d = Drops {
            dir,
            reasons: (!pinned).then(HashMap::new),
            sources: (!pinned).then(HashMap::new),
        };
        if pinned {
            let _ = d.since_last();
        }
        d
    }

    /// Packets dropped per reason, and the sources dropped most, since the
    /// last call.
    pub fn since_last(&mut self) -> (Vec<ReasonDrops>, Vec<DroppedSource>) {
        let Some(dir) = &self.dir else {
            return Default::default();
        };
        let mut drops = Vec::new();
        if let Ok(counters) = datapath::read_counters(dir) {
            let now: HashMap<&'static str, u64> = counters
                .iter()
                .filter(|(r, _)| *r != Reason::Passed)
                .map(|(r, t)| (r.name(), t.packets))
                .collect();
            if let Some(before) = &self.reasons {
                for reason in Reason::ALL.map(Reason::name) {
                    let (Some(n), b) = (now.get(reason), before.get(reason)) else {
                        continue;
                    };
                    // A counter lower than before: the maps were recreated.
                    let diff = b.map_or(*n, |b| if n >= b { n - b } else { *n });
                    if diff > 0 {
                        drops.push(ReasonDrops {
                            reason: reason.into(),
                            packets: diff,
                        });
                    }
                }
            }
            self.reasons = Some(now);
        }
        let mut top = Vec::new();
        if let Ok(sources) = datapath::top(dir, usize::MAX) {
            let now: HashMap<String, u64> =
                sources.into_iter().map(|s| (s.source, s.dropped)).collect();
            if let Some(before) = &self.sources {
                top = now
                    .iter()
                    .filter_map(|(source, n)| {
                        let diff = before.get(source).map_or(*n, |b| n.saturating_sub(*b));
                        (diff > 0).then(|| DroppedSource {
                            source: source.clone(),
                            packets: diff,
                        })
                    })
                    .collect();
                top.sort_by(|a, b| {
                    b.packets
                        .cmp(&a.packets)
                        .then_with(|| a.source.cmp(&b.source))
                });
                top.truncate(TOP.min(MAX_SOURCES));
            }
            self.sources = Some(now);
        }
        (drops, top)
    }
}
