//! Exponential backoff with full jitter: the n-th retry waits a random
//! time in [0, min(cap, base * 2^n)], so a fleet of gateways that lost the
//! control plane together does not come back in lockstep.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

const BASE: Duration = Duration::from_millis(200);
const CAP: Duration = Duration::from_secs(30);

pub struct Backoff {
    attempt: u32,
    random: SystemRandom,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            attempt: 0,
            random: SystemRandom::new(),
        }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The upper bound of the next wait.
    fn ceiling(&self) -> Duration {
        BASE.saturating_mul(1 << self.attempt.min(16)).min(CAP)
    }

    /// The next wait; every call doubles the ceiling up to the cap.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let mut bytes = [0u8; 8];
        let _ = self.random.fill(&mut bytes);
        let fraction = u64::from_le_bytes(bytes) as f64 / u64::MAX as f64;
        ceiling.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_below_the_ceiling() {
        let mut b = Backoff::new();
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            let ceiling = b.ceiling();
            ceilings.push(ceiling.as_millis());
            assert!(b.next_wait() <= ceiling);
        }
        assert_eq!(&ceilings[..4], [200, 400, 800, 1600]);
        assert_eq!(*ceilings.last().unwrap(), 30_000);
        b.reset();
        assert_eq!(b.ceiling().as_millis(), 200);
    }
}
