//! Subscriptions and their keys. Only SHA-256 hashes of keys are stored:
//! a request's key is hashed and the hash is looked up. An exact match of
//! the full digest is the whole check: the lookup's timing depends on the
//! hash of the presented key only, which a caller cannot steer toward a
//! stored hash, so nothing is compared after it.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

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
    /// Shared with each call's record rather than copied into it.
    pub id: Arc<str>,
    pub scope: Scope,
    pub state: State,
}

/// A subscription with the hashes of its keys, as validated.
pub type Keyed = (Subscription, Vec<KeyHash>);

/// Subscriptions indexed by key hash.
#[derive(Clone, Debug, Default)]
pub struct Subscriptions {
    list: Vec<Keyed>,
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
        if self.ids.contains(&*sub.id) {
            return Err("id is used twice; give each subscription a unique id".into());
        }
        for key in keys {
            if let Some(&other) = self.by_hash.get(key) {
                return Err(format!(
                    "a key is also a key of subscription \"{}\"; keys must be unique",
                    self.list[other].0.id
                ));
            }
        }
        for key in keys {
            self.by_hash.insert(*key, self.list.len());
        }
        self.ids.insert(sub.id.to_string());
        self.list.push((sub, keys.to_vec()));
        Ok(())
    }

    /// A copy with the subscriptions of `upserts` added or replaced (by id)
    /// and those of `deleted` removed; the first conflict (a key of another
    /// subscription, an id twice) refuses the whole change.
    pub fn patched(
        &self,
        upserts: Vec<Keyed>,
        deleted: &[String],
    ) -> Result<Subscriptions, String> {
        let replaced: HashSet<&str> = upserts
            .iter()
            .map(|(s, _)| &*s.id)
            .chain(deleted.iter().map(String::as_str))
            .collect();
        let mut out = Subscriptions {
            list: Vec::with_capacity(self.list.len() + upserts.len()),
            ..Subscriptions::default()
        };
        out.ids.reserve(self.list.len() + upserts.len());
        out.by_hash.reserve(self.by_hash.len() + 2 * upserts.len());
        for (sub, keys) in self.list.iter().filter(|(s, _)| !replaced.contains(&*s.id)) {
            out.insert(sub.clone(), keys)
                .expect("kept subscriptions were consistent");
        }
        for (sub, keys) in upserts {
            let id = sub.id.clone();
            out.insert(sub, &keys)
                .map_err(|m| format!("subscription \"{id}\": {m}"))?;
        }
        Ok(out)
    }

    /// The subscription whose primary or secondary key is `key`.
    pub fn find(&self, key: &str) -> Option<&Subscription> {
        let index = *self.by_hash.get(&hash_key(key))?;
        Some(&self.list[index].0)
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

    fn sub(id: &str) -> Subscription {
        Subscription {
            id: id.into(),
            scope: Scope::All,
            state: State::Active,
        }
    }

    #[test]
    fn finds_by_either_key_and_rejects_others() {
        let mut subs = Subscriptions::default();
        subs.insert(sub("alice"), &[hash_key("k1"), hash_key("k2")])
            .unwrap();
        assert_eq!(&*subs.find("k1").unwrap().id, "alice");
        assert_eq!(&*subs.find("k2").unwrap().id, "alice");
        assert!(subs.find("k3").is_none());
        assert!(
            subs.insert(sub("bob"), &[hash_key("k2")])
                .unwrap_err()
                .contains("alice")
        );
    }

    /// Each row: subscriptions before (id, key), the change, and what each
    /// key finds afterwards (or the refusal's text).
    #[test]
    fn patched_adds_replaces_and_removes_or_refuses_whole() {
        type Row = (
            &'static [(&'static str, &'static str)],
            &'static [(&'static str, &'static str)],
            &'static [&'static str],
            Result<&'static [(&'static str, Option<&'static str>)], &'static str>,
        );
        let rows: &[Row] = &[
            // Added.
            (
                &[("a", "k1")],
                &[("b", "k2")],
                &[],
                Ok(&[("k1", Some("a")), ("k2", Some("b"))]),
            ),
            // A new key replaces the old one.
            (
                &[("a", "k1")],
                &[("a", "k9")],
                &[],
                Ok(&[("k1", None), ("k9", Some("a"))]),
            ),
            // Removed.
            (
                &[("a", "k1"), ("b", "k2")],
                &[],
                &["a"],
                Ok(&[("k1", None), ("k2", Some("b"))]),
            ),
            // A key of another subscription.
            (
                &[("a", "k1")],
                &[("b", "k1")],
                &[],
                Err("subscription \"b\": a key is also a key of subscription \"a\""),
            ),
            // The same id twice in one change.
            (
                &[],
                &[("c", "k1"), ("c", "k2")],
                &[],
                Err("subscription \"c\": id is used twice"),
            ),
        ];
        for (before, upserts, deleted, expected) in rows {
            let mut subs = Subscriptions::default();
            for (id, key) in *before {
                subs.insert(sub(id), &[hash_key(key)]).unwrap();
            }
            let upserts = upserts
                .iter()
                .map(|(id, key)| (sub(id), vec![hash_key(key)]))
                .collect();
            let deleted: Vec<String> = deleted.iter().map(|d| d.to_string()).collect();
            match (subs.patched(upserts, &deleted), expected) {
                (Ok(out), Ok(finds)) => {
                    for (key, id) in *finds {
                        assert_eq!(out.find(key).map(|s| &*s.id), *id, "{key}");
                    }
                }
                (Err(e), Err(text)) => assert!(e.contains(text), "{e}"),
                (got, want) => panic!("{before:?} {deleted:?}: {got:?}, expected {want:?}"),
            }
            // The original is unchanged either way.
            for (id, key) in *before {
                assert_eq!(&*subs.find(key).unwrap().id, *id);
            }
        }
    }
}
