//! Keys fetched from a JWKS URL (or an OpenID configuration's `jwks_uri`),
//! cached per URL for the whole process, fetched so that requests cannot
//! multiply outbound fetches:
//!
//! - single flight: at most one fetch per URL is in flight; requests that
//!   need it wait for it, bounded by `wait` counted from the fetch's start
//!   (a hanging endpoint delays one burst of requests by `wait`, not each
//!   request by the fetch timeout);
//! - negative cache: after a failed fetch no new fetch starts before an
//!   exponential backoff has passed (the previous keys keep serving);
//! - an unknown key id (the issuer may have rotated its keys) refetches at
//!   most once per `guard` interval, whatever the outcome;
//! - stale keys (older than the policy's `keys_refresh`) keep serving while
//!   a background fetch replaces them.
//!
//! The fetch runs in its own task: a client that disconnects does not
//! cancel it for the others.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::watch;

use super::keys::{self, Key};
use crate::{
    policy::fetch,
    state_registry::{Kind as StateKind, Staging},
};

/// The timings of fetching; `TIMING` in the gateway, shorter in tests.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Least time between two fetches started for unknown key ids.
    pub guard: Duration,
    /// How long after a fetch started requests still wait for it.
    pub wait: Duration,
    /// Bound on one fetch (both documents of an OpenID configuration).
    pub fetch_timeout: Duration,
    /// Backoff after the first failure; it doubles with each failure in a
    /// row, up to `backoff_max`.
    pub backoff_first: Duration,
    pub backoff_max: Duration,
}

pub const TIMING: Timing = Timing {
    guard: Duration::from_secs(30),
    wait: Duration::from_secs(2),
    fetch_timeout: Duration::from_secs(5),
    backoff_first: Duration::from_secs(1),
    backoff_max: Duration::from_secs(60),
};

/// Where the keys come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    pub url: String,
    /// `url` is an OpenID configuration whose `jwks_uri` names the JWKS.
    pub openid: bool,
}

/// One successful fetch.
pub struct KeySet {
    pub fetched: Instant,
    pub keys: Vec<Key>,
}

pub struct Jwks {
    source: Source,
    timing: Timing,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// When the last fetch started.
    last_start: Option<Instant>,
    /// Failed fetches in a row, and no fetch before `retry_at`.
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    in_flight: Option<Flight>,
}

/// A fetch in flight: `done` changes (its sender is dropped) when it ends.
#[derive(Clone)]
struct Flight {
    started: Instant,
    done: watch::Receiver<()>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// No keys yet, or stale ones.
    Load,
    /// No cached key verified a token.
    UnknownKey,
}

impl Jwks {
    /// The cache for `source`: one per URL in a gateway, carried over by
    /// reloads (`state_registry`).
    pub fn shared(source: Source, staging: &mut Staging) -> Arc<Jwks> {
        staging.take(
            StateKind::Jwks,
            format!("{} openid={}", source.url, source.openid),
            || Jwks::new(source.clone(), TIMING),
        )
    }

    pub fn new(source: Source, timing: Timing) -> Jwks {
        Jwks {
            source,
            timing,
            state: Mutex::default(),
        }
    }

    #[cfg(test)]
    pub fn fetch_started(&self) -> bool {
        self.lock().last_start.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys to verify a token with. Cached keys are returned at once
    /// (older than `max_age`, a background fetch replaces them); with none
    /// yet, waits briefly for a fetch.
    pub async fn current(self: &Arc<Self>, max_age: Duration) -> Result<Arc<KeySet>, String> {
        let flight = {
            let mut s = self.lock();
            if let Some(keys) = s.keys.clone() {
                if keys.fetched.elapsed() >= max_age {
                    self.start(&mut s, Why::Load);
                }
                return Ok(keys);
            }
            self.start(&mut s, Why::Load)
        };
        self.wait(flight).await;
        let s = self.lock();
        s.keys.clone().ok_or_else(|| match &s.last_error {
            Some(e) => format!("no signing keys from {}: {e}", self.source.url),
            None => format!("no signing keys from {} yet", self.source.url),
        })
    }

    /// After no key of `seen` verified a token: keys newer than `seen`, from
    /// the fetch in flight, or from a new one if the guard interval since
    /// the last fetch has passed; None if there are none.
    pub async fn newer(self: &Arc<Self>, seen: &Arc<KeySet>) -> Option<Arc<KeySet>> {
        let flight = {
            let mut s = self.lock();
            match &s.keys {
                Some(keys) if !Arc::ptr_eq(keys, seen) => return Some(keys.clone()),
                _ => self.start(&mut s, Why::UnknownKey),
            }
        };
        self.wait(flight).await;
        self.lock()
            .keys
            .clone()
            .filter(|keys| !Arc::ptr_eq(keys, seen))
    }

    /// The fetch in flight, or a new one if the backoff (and, for an
    /// unknown key, the guard interval) allows it.
    fn start(self: &Arc<Self>, s: &mut State, why: Why) -> Option<Flight> {
        if let Some(flight) = &s.in_flight {
            return Some(flight.clone());
        }
        let now = Instant::now();
        if s.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        if why == Why::UnknownKey
            && s.last_start
                .is_some_and(|t| now.duration_since(t) < self.timing.guard)
        {
            return None;
        }
        let (tx, done) = watch::channel(());
        let flight = Flight { started: now, done };
        s.last_start = Some(now);
        s.in_flight = Some(flight.clone());
        let landing = Landing {
            jwks: self.clone(),
            result: None,
            _done: tx,
        };
        tokio::spawn(landing.run());
        Some(flight)
    }

    /// Waits for `flight` to end, at most until `wait` after it started.
    async fn wait(&self, flight: Option<Flight>) {
        if let Some(Flight { started, mut done }) = flight {
            let deadline = started + self.timing.wait;
            let _ = tokio::time::timeout_at(deadline.into(), done.changed()).await;
        }
    }

    fn finish(&self, result: Result<Vec<Key>, String>) {
        let mut s = self.lock();
        s.in_flight = None;
        match result {
            Ok(keys) => {
                s.keys = Some(Arc::new(KeySet {
                    fetched: Instant::now(),
                    keys,
                }));
                s.failures = 0;
                s.retry_at = None;
                s.last_error = None;
            }
            Err(e) => {
                s.failures = s.failures.saturating_add(1);
                let backoff = backoff(&self.timing, s.failures);
                s.retry_at = Some(Instant::now() + backoff);
                tracing::warn!(
                    url = %self.source.url, error = %e, failures = s.failures,
                    retry_in = ?backoff, "cannot fetch JWT signing keys"
                );
                s.last_error = Some(e);
            }
        }
    }
}

/// The backoff after `failures` failed fetches in a row.
fn backoff(t: &Timing, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    (t.backoff_first * 2u32.pow(doublings)).min(t.backoff_max)
}

/// One fetch's task; its result lands in the cache even if the task is
/// dropped (the runtime shutting down), so no flight stays in flight.
struct Landing {
    jwks: Arc<Jwks>,
    result: Option<Result<Vec<Key>, String>>,
    /// Dropped last: waiters wake after the result has landed.
    _done: watch::Sender<()>,
}

impl Landing {
    async fn run(mut self) {
        let source = &self.jwks.source;
        let fetched = tokio::time::timeout(self.jwks.timing.fetch_timeout, fetch_keys(source))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "{}: no keys within {:?}",
                    source.url, self.jwks.timing.fetch_timeout
                ))
            });
        self.result = Some(fetched);
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        let result = self
            .result
            .take()
            .unwrap_or_else(|| Err("the fetch was cancelled".into()));
        self.jwks.finish(result);
    }
}

async fn fetch_keys(source: &Source) -> Result<Vec<Key>, String> {
    let jwks_url = if source.openid {
        let config: serde_json::Value = fetch::get_json(&source.url).await?;
        config["jwks_uri"]
            .as_str()
            .ok_or("OpenID configuration has no jwks_uri")?
            .to_string()
    } else {
        source.url.clone()
    };
    let set: JwkSet = fetch::get_json(&jwks_url).await?;
    Ok(keys::from_jwks(&set))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// How the test JWKS server answers.
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Keys,
        Fail,
        Hang,
    }

    /// A JWKS server on loopback counting the requests it receives.
    struct Server {
        url: String,
        hits: Arc<AtomicUsize>,
        mode: Arc<Mutex<Mode>>,
    }

    impl Server {
        async fn start(mode: Mode) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/jwks", listener.local_addr().unwrap());
            let hits = Arc::new(AtomicUsize::new(0));
            let mode = Arc::new(Mutex::new(mode));
            let (h, m) = (hits.clone(), mode.clone());
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let (h, m) = (h.clone(), m.clone());
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        let _ = stream.read(&mut buf).await;
                        h.fetch_add(1, Ordering::SeqCst);
                        let mode = *m.lock().unwrap();
                        let (status, body) = match mode {
                            Mode::Hang => return std::future::pending().await,
                            Mode::Fail => ("500 Internal Server Error", String::new()),
                            Mode::Keys => (
                                "200 OK",
                                r#"{"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}"#
                                    .to_string(),
                            ),
                        };
                        let _ = stream
                            .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes())
                            .await;
                    });
                }
            });
            Server { url, hits, mode }
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        fn set(&self, mode: Mode) {
            *self.mode.lock().unwrap() = mode;
        }

        fn jwks(&self, timing: Timing) -> Arc<Jwks> {
            let source = Source {
                url: self.url.clone(),
                openid: false,
            };
            Arc::new(Jwks::new(source, timing))
        }
    }

    const LONG: Duration = Duration::from_secs(600);
    const SLOW: Timing = Timing {
        guard: LONG,
        wait: LONG,
        fetch_timeout: LONG,
        backoff_first: LONG,
        backoff_max: LONG,
    };

    /// Runs `n` concurrent `current` calls; returns how many found keys.
    async fn burst(jwks: &Arc<Jwks>, n: usize) -> usize {
        let calls = (0..n).map(|_| {
            let jwks = jwks.clone();
            tokio::spawn(async move { jwks.current(LONG).await.is_ok() })
        });
        let mut found = 0;
        for call in calls.collect::<Vec<_>>() {
            found += usize::from(call.await.unwrap());
        }
        found
    }

    #[tokio::test]
    async fn failing_endpoint_is_fetched_once_then_backs_off() {
        let server = Server::start(Mode::Fail).await;
        let jwks = server.jwks(SLOW);
        assert_eq!(burst(&jwks, 100).await, 0);
        assert_eq!(server.hits(), 1, "single flight, then the negative cache");
        let err = jwks.current(LONG).await.err().unwrap();
        assert!(err.contains("status 500"), "{err}");
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn hanging_endpoint_delays_requests_by_wait_not_by_the_fetch_timeout() {
        let server = Server::start(Mode::Hang).await;
        let jwks = server.jwks(Timing {
            wait: Duration::from_millis(200),
            ..SLOW
        });
        // The fetch itself would wait 600 s: the 100 calls end anyway.
        let calls = tokio::time::timeout(Duration::from_secs(60), burst(&jwks, 100));
        assert_eq!(calls.await.expect("calls bounded by `wait`"), 0);
        assert_eq!(server.hits(), 1);
        // Past `wait`, callers no longer wait on the hanging fetch.
        let one = tokio::time::timeout(Duration::from_secs(60), jwks.current(LONG));
        assert!(one.await.unwrap().is_err());
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn fetch_timeout_counts_as_a_failure() {
        let server = Server::start(Mode::Hang).await;
        let jwks = server.jwks(Timing {
            fetch_timeout: Duration::from_millis(100),
            ..SLOW
        });
        let err = jwks.current(LONG).await.err().unwrap();
        assert!(err.contains("no keys within"), "{err}");
        assert!(jwks.lock().retry_at.is_some());
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn unknown_key_refetches_once_per_guard_interval_whatever_the_outcome() {
        let server = Server::start(Mode::Keys).await;
        let guard = Duration::from_millis(300);
        let jwks = server.jwks(Timing {
            guard,
            backoff_first: Duration::ZERO,
            ..SLOW
        });
        let first = jwks.current(LONG).await.unwrap();
        assert_eq!((first.keys.len(), server.hits()), (1, 1));
        // Within the guard interval of the first fetch: nothing newer.
        for _ in 0..50 {
            assert!(jwks.newer(&first).await.is_none());
        }
        assert_eq!(server.hits(), 1);
        // Past it: one fetch for all unknown keys.
        tokio::time::sleep(guard).await;
        let newer = jwks.newer(&first).await.expect("a second fetch");
        assert_eq!(server.hits(), 2);
        assert!(
            jwks.newer(&first)
                .await
                .is_some_and(|k| Arc::ptr_eq(&k, &newer))
        );
        assert!(jwks.newer(&newer).await.is_none());
        assert_eq!(server.hits(), 2);
        // A failed refetch (no backoff here) also counts for the guard,
        // and the previous keys keep serving.
        server.set(Mode::Fail);
        tokio::time::sleep(guard).await;
        assert!(jwks.newer(&newer).await.is_none());
        assert_eq!(server.hits(), 3);
        for _ in 0..50 {
            assert!(jwks.newer(&newer).await.is_none());
        }
        assert_eq!(server.hits(), 3);
        assert!(Arc::ptr_eq(&jwks.current(LONG).await.unwrap(), &newer));
    }

    #[tokio::test]
    async fn stale_keys_serve_while_one_background_fetch_replaces_them() {
        let server = Server::start(Mode::Keys).await;
        let jwks = server.jwks(SLOW);
        let first = jwks.current(LONG).await.unwrap();
        for _ in 0..20 {
            let keys = jwks.current(Duration::ZERO).await.unwrap();
            assert!(Arc::ptr_eq(&keys, &first) || server.hits() == 2);
        }
        // The background fetch ends; its keys replace the stale ones.
        for _ in 0..100 {
            if jwks.lock().in_flight.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(server.hits(), 2);
        assert!(!Arc::ptr_eq(&jwks.current(LONG).await.unwrap(), &first));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let t = Timing {
            backoff_first: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            ..SLOW
        };
        let got: Vec<u64> = (1..=9).map(|n| backoff(&t, n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(&t, u32::MAX).as_secs(), 60);
    }

    #[test]
    fn policies_naming_one_url_share_one_cache() {
        let source = |url: &str, openid| Source {
            url: url.into(),
            openid,
        };
        let registry = crate::state_registry::StateRegistry::default();
        let ((a, b, c), _) = registry
            .build(|s| {
                Ok::<_, ()>((
                    Jwks::shared(source("http://127.0.0.1:9/shared", false), s),
                    Jwks::shared(source("http://127.0.0.1:9/shared", false), s),
                    Jwks::shared(source("http://127.0.0.1:9/shared", true), s),
                ))
            })
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
