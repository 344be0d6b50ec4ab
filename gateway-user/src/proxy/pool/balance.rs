//! Choosing a member: the first priority group with an available member,
//! then smooth weighted round robin (nginx's: over any run of requests each
//! member's share follows its weight, interleaved rather than in bursts)
//! or the fewest requests awaiting their answer relative to weight.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use super::member::Member;
use crate::config::pool::Balance;

/// The balancer's own state: current weights of round robin, and where
/// least-requests starts looking (so that ties rotate).
pub struct Balancer {
    mode: Balance,
    current: Mutex<Vec<i64>>,
    start: AtomicUsize,
}

impl Balancer {
    pub fn new(mode: Balance, members: usize) -> Balancer {
        Balancer {
            mode,
            current: Mutex::new(vec![0; members]),
            start: AtomicUsize::new(0),
        }
    }

    /// The member for the next request, skipping `exclude` (a member that
    /// just failed it); `None` when no member is available.
    pub fn pick(&self, members: &[Arc<Member>], now: u64, exclude: Option<usize>) -> Option<usize> {
        let usable = |i: usize| Some(i) != exclude && members[i].available(now);
        // Members are sorted by priority: walk the groups in order.
        let mut from = 0;
        while from < members.len() {
            let priority = members[from].priority;
            let to = from
                + members[from..]
                    .iter()
                    .take_while(|m| m.priority == priority)
                    .count();
            if (from..to).any(usable) {
                return Some(match self.mode {
                    Balance::RoundRobin => self.round_robin(members, from..to, usable),
                    Balance::LeastRequests => self.least_requests(members, from..to, usable),
                });
            }
            from = to;
        }
        None
    }

    fn round_robin(
        &self,
        members: &[Arc<Member>],
        group: std::ops::Range<usize>,
        usable: impl Fn(usize) -> bool,
    ) -> usize {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let (mut total, mut best) = (0i64, None::<usize>);
        for i in group.filter(|&i| usable(i)) {
            current[i] += i64::from(members[i].weight);
            total += i64::from(members[i].weight);
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let best = best.expect("the group has a usable member");
        current[best] -= total;
        best
    }

    fn least_requests(
        &self,
        members: &[Arc<Member>],
        group: std::ops::Range<usize>,
        usable: impl Fn(usize) -> bool,
    ) -> usize {
        let n = group.len();
        let start = self.start.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(usize, u64, u64)> = None;
        for k in 0..n {
            let i = group.start + (start + k) % n;
            if !usable(i) {
                continue;
            }
            let load = u64::from(members[i].outstanding.load(Ordering::Relaxed));
            let weight = u64::from(members[i].weight);
            // load/weight smaller than the best's, without division.
            if best.is_none_or(|(_, l, w)| load * w < l * weight) {
                best = Some((i, load, weight));
            }
        }
        best.expect("the group has a usable member").0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::proxy::pool::member::tests::member;

    fn members(spec: &[(u32, u32)]) -> Vec<Arc<Member>> {
        spec.iter()
            .map(|&(weight, priority)| {
                let mut m = member();
                m.weight = weight;
                m.priority = priority;
                Arc::new(m)
            })
            .collect()
    }

    #[test]
    fn smooth_weighted_round_robin_follows_weights_and_interleaves() {
        let ms = members(&[(5, 1), (3, 1), (2, 1)]);
        let b = Balancer::new(Balance::RoundRobin, ms.len());
        let picks: Vec<usize> = (0..10).map(|_| b.pick(&ms, 0, None).unwrap()).collect();
        let count = |i| picks.iter().filter(|&&p| p == i).count();
        assert_eq!((count(0), count(1), count(2)), (5, 3, 2));
        assert!(
            picks.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])),
            "{picks:?}"
        );
    }

    #[test]
    fn next_group_only_when_none_of_the_first_is_available() {
        let ms = members(&[(1, 1), (1, 1), (1, 2)]);
        let b = Balancer::new(Balance::RoundRobin, ms.len());
        assert!((0..4).all(|_| b.pick(&ms, 0, None).unwrap() < 2));
        ms[0].healthy.store(false, Ordering::Relaxed);
        assert_eq!(b.pick(&ms, 0, None), Some(1));
        assert_eq!(b.pick(&ms, 0, Some(1)), Some(2), "excluded: the next group");
        ms[1].healthy.store(false, Ordering::Relaxed);
        assert_eq!(b.pick(&ms, 0, None), Some(2));
        ms[2].healthy.store(false, Ordering::Relaxed);
        assert_eq!(b.pick(&ms, 0, None), None);
    }

    #[test]
    fn least_requests_prefers_the_least_loaded_by_weight() {
        let ms = members(&[(1, 1), (2, 1)]);
        let b = Balancer::new(Balance::LeastRequests, ms.len());
        ms[0].outstanding.store(2, Ordering::Relaxed);
        ms[1].outstanding.store(3, Ordering::Relaxed);
        assert_eq!(b.pick(&ms, 0, None), Some(1), "3/2 < 2/1");
        ms[1].outstanding.store(5, Ordering::Relaxed);
        assert_eq!(b.pick(&ms, 0, None), Some(0));
    }
}
