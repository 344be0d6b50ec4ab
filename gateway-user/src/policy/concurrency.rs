//! `limit-concurrency`: at most `max_count` requests of this scope at once
//! (from inbound until the backend's response headers); more get 429.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use hyper::{Response, StatusCode, header::HeaderValue};
use serde::Deserialize;
use serde_yaml::Value;

use super::respond::json_error;
use crate::proxy::ProxyBody;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Requests allowed at once.
    max_count: usize,
}

#[derive(Debug)]
pub struct LimitConcurrency {
    max: usize,
    active: Arc<AtomicUsize>,
}

/// One admitted request; releases its slot when dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LimitConcurrency {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        if f.max_count == 0 {
            return Err("max_count must be at least 1".into());
        }
        Ok(LimitConcurrency {
            max: f.max_count,
            active: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn acquire(&self) -> Result<Slot, Response<ProxyBody>> {
        let taken = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(Slot(self.active.clone())),
            Err(_) => {
                let mut r = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many concurrent requests. Try again shortly.",
                );
                r.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
                Err(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_released() {
        let l = LimitConcurrency::parse(serde_yaml::from_str("{max_count: 2}").unwrap()).unwrap();
        let a = l.acquire().unwrap();
        let _b = l.acquire().unwrap();
        assert_eq!(l.acquire().err().unwrap().status(), 429);
        drop(a);
        assert!(l.acquire().is_ok());
        assert!(LimitConcurrency::parse(serde_yaml::from_str("{max_count: 0}").unwrap()).is_err());
    }
}
