//! Cache-miss coalescing: while one request that missed a key is on its
//! way to the backend (the leader; its miss holds a `Flight`), the others
//! that miss the same key wait for its answer to be stored, then look the
//! key up once more. The flight ends when the leader's response is stored,
//! is found not storable, or the request ends otherwise: waiters then find
//! the entry or go to the backend themselves, without waiting again (an
//! answer that is never stored, `no-store` say, must not queue requests
//! one behind another). Nobody waits longer than `WAIT`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::watch;

/// The longest a request waits on another's miss (nginx's
/// `proxy_cache_lock_timeout` default) before it goes to the backend.
pub const WAIT: Duration = Duration::from_secs(5);

/// The keys whose leader is on its way, each with the receiver its
/// waiters clone.
#[derive(Default)]
pub struct Flights(Mutex<HashMap<String, watch::Receiver<()>>>);

pub enum Joined {
    /// The first to miss: fetch, and hold the flight until stored.
    Leader(Flight),
    /// Another is fetching: wait for the receiver to close.
    Follower(watch::Receiver<()>),
}

/// A leader's miss; dropping it (entry stored, or not to be) wakes the
/// waiters.
pub struct Flight {
    flights: Arc<Flights>,
    key: String,
    /// Dropped after the key left the map: the waiters' `changed` ends.
    _done: watch::Sender<()>,
}

impl Flights {
    pub fn join(self: &Arc<Self>, key: &str) -> Joined {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(waiting) = map.get(key) {
            return Joined::Follower(waiting.clone());
        }
        let (done, waiting) = watch::channel(());
        map.insert(key.to_string(), waiting);
        Joined::Leader(Flight {
            flights: self.clone(),
            key: key.to_string(),
            _done: done,
        })
    }

    /// Keys with a leader on its way.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        // Only this flight put the key in (it was absent), and only it
        // takes it out.
        let mut map = self.flights.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&self.key);
    }
}

/// Waits for the leader's flight to end, `WAIT` at most.
pub async fn wait(mut waiting: watch::Receiver<()>) {
    // Nothing is ever sent: `changed` ends when the sender is dropped.
    let _ = tokio::time::timeout(WAIT, waiting.changed()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_per_key_and_its_end_wakes_the_waiters() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join("k") else {
            panic!("the first is the leader")
        };
        let Joined::Follower(waiting) = flights.join("k") else {
            panic!("the second waits")
        };
        assert!(matches!(flights.join("other"), Joined::Leader(_)));
        let waiter = tokio::spawn(wait(waiting));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "waits while the leader is out");
        drop(leader);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken when the leader's flight ends")
            .unwrap();
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join("k"), Joined::Leader(_)));
    }
}
