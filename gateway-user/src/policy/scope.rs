//! The policies of one scope, built from their specs, and the composition
//! of scopes: the innermost scope's section runs, and its `base` expands
//! to the next enclosing scope's section, and so on. A scope that does not
//! declare a section behaves as `[base]`; one that declares it without
//! `base` hides the enclosing scopes' policies.

use std::sync::Arc;

use gateway_model::policy as model;

use super::{Policy, Section};
use crate::state_registry::Staging;

/// One entry of a section.
#[derive(Clone, Debug)]
pub enum Step {
    /// Where the enclosing scope's section runs.
    Base,
    Policy(Arc<Policy>),
}

/// The sections of one scope; `None` for a section the scope does not
/// declare (it behaves as `[base]`).
#[derive(Clone, Debug, Default)]
pub struct ScopePolicies {
    sections: [Option<Vec<Step>>; 4],
}

impl ScopePolicies {
    /// Builds each policy of the scope once: every pipeline composed from
    /// the scope shares it (and its counters).
    pub fn build(spec: &model::ScopePolicies, staging: &mut Staging) -> ScopePolicies {
        let mut out = ScopePolicies::default();
        for section in Section::ALL {
            out.sections[section.index()] = spec.section(section).map(|steps| {
                steps
                    .iter()
                    .map(|step| match step {
                        model::Step::Base => Step::Base,
                        model::Step::Policy(p) => Step::Policy(Arc::new(Policy::build(p, staging))),
                    })
                    .collect()
            });
        }
        out
    }

    pub fn section(&self, section: Section) -> Option<&[Step]> {
        self.sections[section.index()].as_deref()
    }
}

/// The policies of `section` in run order; `scopes` go from the outermost
/// (global) to the innermost (operation).
pub fn compose(scopes: &[&ScopePolicies], section: Section) -> Vec<Arc<Policy>> {
    let Some((inner, outer)) = scopes.split_last() else {
        return Vec::new();
    };
    match inner.section(section) {
        None => compose(outer, section),
        Some(steps) => {
            let mut out = Vec::new();
            for step in steps {
                match step {
                    Step::Base => out.extend(compose(outer, section)),
                    Step::Policy(p) => out.push(p.clone()),
                }
            }
            out
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn scope(text: &str) -> ScopePolicies {
        let mut problems = Vec::new();
        let v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let named = gateway_model::catalog::NamedValues::default();
        let s = model::parse_scope(Some(&v), "t", &named, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        ScopePolicies::build(&s, &mut Staging::fresh())
    }

    fn names(policies: &[Arc<Policy>]) -> Vec<String> {
        policies
            .iter()
            .map(|p| match &**p {
                Policy::SetHeader(h) => format!("{h:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn header(name: &str) -> String {
        format!("{{set-header: {{name: {name}, value: v}}}}")
    }

    #[test]
    fn base_places_the_enclosing_scope() {
        let global = scope(&format!("inbound: [{}]", header("g")));
        let product = scope(&format!("inbound: [{}, base]", header("p")));
        let api = ScopePolicies::default();
        let op = scope(&format!("inbound: [base, {}]", header("o")));
        let got = names(&compose(&[&global, &product, &api, &op], Section::Inbound));
        assert_eq!(
            got,
            [
                "SetHeader(p, Override)",
                "SetHeader(g, Override)",
                "SetHeader(o, Override)"
            ]
        );
    }

    #[test]
    fn a_section_without_base_hides_the_enclosing_ones() {
        let global = scope(&format!("inbound: [{}]", header("g")));
        let api = scope(&format!("inbound: [{}]", header("a")));
        let got = names(&compose(&[&global, &api], Section::Inbound));
        assert_eq!(got, ["SetHeader(a, Override)"]);
        assert!(compose(&[&global, &api], Section::Outbound).is_empty());
    }
}
