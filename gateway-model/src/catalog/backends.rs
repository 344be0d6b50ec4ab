//! `set-backend-service backend-id` must name one of the gateway's named
//! backends (`[[backends]]`, or those the control plane serves).

use crate::{
    config::NamedBackend,
    policy::{Placed, PolicySpec, set_backend::Target},
};

pub(super) fn check_references(
    placed: &[&Placed],
    named: &[NamedBackend],
    problems: &mut Vec<String>,
) {
    for p in placed {
        if let PolicySpec::SetBackend(s) = &p.spec
            && let Target::Named(id) = &s.target
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
}
