//! `set-backend-service backend-id` must name one of the gateway's named
//! backends (`[[backends]]`, or those the control plane serves).

use std::sync::Arc;

use crate::{
    config::NamedBackend,
    policy::{Placed, PolicySpec, ScopePolicies, set_backend::Target},
};

pub(super) fn check_references<'a>(
    scopes: impl Iterator<Item = &'a ScopePolicies>,
    named: &[NamedBackend],
    problems: &mut Vec<String>,
) {
    fn walk(p: &Arc<Placed>, named: &[NamedBackend], problems: &mut Vec<String>) {
        match &p.spec {
            PolicySpec::SetBackend(s) => {
                if let Target::Named(id) = &s.target
                    && !named.iter().any(|(n, _)| n == id)
                {
                    let known: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
                    problems.push(format!(
                        "{}: set-backend-service: backend-id \"{id}\" is not a named backend of this gateway (known: {}); add a [[backends]] entry named \"{id}\" or fix the id",
                        p.place,
                        if known.is_empty() { "none".into() } else { known.join(", ") }
                    ));
                }
            }
            PolicySpec::Choose(c) => c
                .whens
                .iter()
                .flat_map(|(_, ps)| ps)
                .chain(&c.otherwise)
                .for_each(|p| walk(p, named, problems)),
            _ => {}
        }
    }
    for scope in scopes {
        for p in scope.policies() {
            walk(p, named, problems);
        }
    }
}
