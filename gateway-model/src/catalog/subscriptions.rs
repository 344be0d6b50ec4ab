//! Subscriptions and their keys. Only SHA-256 hashes of keys are stored:
//! a request's key is hashed and the hash is looked up. An exact match of
//! the full digest is the whole check: the lookup's timing depends on the
//! hash of the presented key only, which a caller cannot steer toward a
//! stored hash, so nothing is compared after it.

use std::collections::{HashMap, HashSet};

use crate::keys::{KeyHash, hash_key};

/// What a subscription grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every API of a product.
    Product(String),
    /// One API.
    Api(String),
    /// Every API.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Suspended,
    Expired,
}

#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: String,
    pub scope: Scope,
    pub state: State,
}

/// Subscriptions indexed by key hash.
#[derive(Debug, Default)]
pub struct Subscriptions {
    list: Vec<Subscription>,
    /// foldhash too: ids are the operator's, and this set is built for
    /// every subscription at every load.
    ids: HashSet<String, foldhash::fast::RandomState>,
    /// Hashed again with foldhash, not SipHash: its keys are SHA-256
    /// digests, which a caller cannot choose to collide, and the lookup is
    /// on every call.
    by_hash: HashMap<KeyHash, usize, foldhash::fast::RandomState>,
}

impl Subscriptions {
    pub fn insert(&mut self, sub: Subscription, keys: &[KeyHash]) -> Result<(), String> {
        if self.ids.contains(&sub.id) {
            return Err("id is used twice; give each subscription a unique id".into());
        }
        for key in keys {
            if let Some(&other) = self.by_hash.get(key) {
                return Err(format!(
                    "a key is also a key of subscription \"{}\"; keys must be unique",
                    self.list[other].id
                ));
            }
        }
        for key in keys {
            self.by_hash.insert(*key, self.list.len());
        }
        self.ids.insert(sub.id.clone());
        self.list.push(sub);
        Ok(())
    }

    /// The subscription whose primary or secondary key is `key`.
    pub fn find(&self, key: &str) -> Option<&Subscription> {
        let index = *self.by_hash.get(&hash_key(key))?;
        Some(&self.list[index])
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_either_key_and_rejects_others() {
        let mut subs = Subscriptions::default();
        let sub = Subscription {
            id: "alice".into(),
            scope: Scope::All,
            state: State::Active,
        };
        subs.insert(sub.clone(), &[hash_key("k1"), hash_key("k2")])
            .unwrap();
        assert_eq!(subs.find("k1").unwrap().id, "alice");
        assert_eq!(subs.find("k2").unwrap().id, "alice");
        assert!(subs.find("k3").is_none());
        let dup = Subscription {
            id: "bob".into(),
            ..sub
        };
        assert!(
            subs.insert(dup, &[hash_key("k2")])
                .unwrap_err()
                .contains("alice")
        );
    }
}
