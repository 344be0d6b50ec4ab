//! Policy fragments: named lists of policies (an APIM `<fragment>`
//! document or the native YAML list) that `include-fragment` expands in
//! place, at load, in whichever scope and section includes them.
//!
//! A fragment is parsed at each place that includes it (its policies must
//! suit that section, and each inclusion counts on its own); the chain of
//! fragments being expanded is kept so that a fragment including itself,
//! directly or through others, is refused instead of recursing forever.

use std::{collections::HashMap, sync::Mutex};

use serde_yaml::Value;

/// The fragments of a catalog, with the chain being expanded.
#[derive(Default)]
pub struct Fragments {
    bodies: HashMap<String, Value>,
    /// Names of the fragments whose expansion is under way, outermost first.
    chain: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Fragments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.bodies.keys().collect();
        names.sort();
        f.debug_list().entries(names).finish()
    }
}

/// An expansion under way; dropping it takes the fragment off the chain.
pub struct Expansion<'f> {
    fragments: &'f Fragments,
    /// The fragment's policies: a `<fragment>` XML string or a YAML list.
    pub body: &'f Value,
}

impl Drop for Expansion<'_> {
    fn drop(&mut self) {
        self.fragments.lock().pop();
    }
}

impl Fragments {
    pub fn insert(&mut self, name: &str, body: Value) -> Result<(), String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "fragment \"{name}\": use letters, digits, '-', '_' or '.'"
            ));
        }
        if self.bodies.insert(name.into(), body).is_some() {
            return Err(format!("fragment \"{name}\" is defined twice"));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // The chain is plain data: a panic elsewhere leaves it usable.
        self.chain.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts expanding `name`; refused, naming the chain, when it does
    /// not exist or is already being expanded (it includes itself).
    pub fn enter(&self, name: &str) -> Result<Expansion<'_>, String> {
        let mut chain = self.lock();
        let shown = |chain: &[String]| {
            chain
                .iter()
                .map(String::as_str)
                .chain([name])
                .collect::<Vec<_>>()
                .join(" -> ")
        };
        if chain.iter().any(|c| c == name) {
            return Err(format!(
                "fragment \"{name}\" includes itself (chain {}); remove one of these include-fragment",
                shown(&chain)
            ));
        }
        let Some(body) = self.bodies.get(name) else {
            let via = if chain.is_empty() {
                String::new()
            } else {
                format!(" (chain {})", shown(&chain))
            };
            return Err(format!(
                "fragment \"{name}\" does not exist{via}; define it under fragments or fix fragment-id"
            ));
        };
        chain.push(name.into());
        Ok(Expansion {
            fragments: self,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_cycles_and_missing_names_with_the_chain() {
        let mut f = Fragments::default();
        f.insert("a", Value::Null).unwrap();
        f.insert("b", Value::Null).unwrap();
        assert!(f.insert("a", Value::Null).unwrap_err().contains("twice"));
        let a = f.enter("a").unwrap();
        let b = f.enter("b").unwrap();
        let e = f.enter("a").err().unwrap();
        assert!(e.contains("chain a -> b -> a"), "{e}");
        let e = f.enter("c").err().unwrap();
        assert!(
            e.contains("\"c\" does not exist (chain a -> b -> c)"),
            "{e}"
        );
        drop(b);
        drop(a);
        // Once expanded, a fragment can be included again elsewhere.
        assert!(f.enter("a").is_ok());
        assert!(!f.enter("zz").err().unwrap().contains("chain"));
    }
}
