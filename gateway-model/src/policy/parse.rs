//! Policies of one scope from the catalog file:
//!
//! ```yaml
//! policies:
//!   inbound:
//!     - base
//!     - rate-limit: { calls: 100, renewal_period: 60 }
//!   outbound:
//!     - set-header: { name: X-Powered-By, exists_action: delete }
//! ```
//!
//! Every problem is collected with its place, none stops the others.

use std::sync::Arc;

use serde_yaml::Value;

use super::{PolicySpec, Section, choose::ChooseSpec};
use crate::catalog::NamedValues;

/// A policy with where it sits (`api orders/inbound/0`): the name of its
/// counters, fleet-wide and across reloads.
#[derive(Debug)]
pub struct Placed {
    pub place: String,
    pub spec: PolicySpec,
}

/// One entry of a section.
#[derive(Clone, Debug)]
pub enum Step {
    /// Where the enclosing scope's section runs.
    Base,
    Policy(Arc<Placed>),
}

/// The sections of one scope; `None` for a section the scope does not
/// declare (it behaves as `[base]`).
#[derive(Clone, Debug, Default)]
pub struct ScopePolicies {
    sections: [Option<Vec<Step>>; 4],
}

impl ScopePolicies {
    pub fn section(&self, section: Section) -> Option<&[Step]> {
        self.sections[section.index()].as_deref()
    }

    /// Sets a section's steps (the XML reader's way in).
    pub(crate) fn set_section(&mut self, section: Section, steps: Vec<Step>) {
        self.sections[section.index()] = Some(steps);
    }

    /// Every policy of the scope, `choose` branches not included.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<Placed>> {
        self.sections
            .iter()
            .flatten()
            .flatten()
            .filter_map(|s| match s {
                Step::Policy(p) => Some(p),
                Step::Base => None,
            })
    }
}

/// Parses the `policies` value of one scope; `at` is the place for
/// messages, e.g. `api "orders": operation "get-order"`.
pub fn parse_scope(
    value: Option<&Value>,
    at: &str,
    named: &NamedValues,
    problems: &mut Vec<String>,
) -> ScopePolicies {
    let mut out = ScopePolicies::default();
    let Some(value) = value else { return out };
    if let Value::String(text) = value
        && crate::apim::is_xml(text)
    {
        return crate::apim::parse_scope(text, at, named, problems);
    }
    let Value::Mapping(map) = value else {
        problems.push(format!(
            "{at}: policies must be a map of sections (inbound, backend, outbound, on-error) or a <policies> XML document"
        ));
        return out;
    };
    for (key, steps) in map {
        let key = key.as_str().unwrap_or_default();
        let Some(section) = Section::ALL.into_iter().find(|s| s.name() == key) else {
            problems.push(format!(
                "{at}: unknown policy section \"{key}\"; use inbound, backend, outbound or on-error"
            ));
            continue;
        };
        let at = format!("{at}: {key}");
        let list = match steps {
            Value::Sequence(list) => list.as_slice(),
            Value::Null => &[],
            _ => {
                problems.push(format!("{at}: must be a list of policies"));
                continue;
            }
        };
        let mut parsed = Vec::with_capacity(list.len());
        let mut bases = 0;
        // The place names fleet-wide quota counters: stable across gateways.
        let place = at.replace('"', "").replace(": ", "/");
        for (i, step) in list.iter().enumerate() {
            for step in steps_of(step, section, named, &at, format!("{place}/{i}"), problems) {
                if let Step::Base = step {
                    bases += 1;
                }
                parsed.push(step);
            }
        }
        if bases > 1 {
            problems.push(format!(
                "{at}: \"base\" appears {bases} times; use it at most once"
            ));
        }
        out.sections[section.index()] = Some(parsed);
    }
    out
}

/// The steps of one entry: the entry itself, or the policies of the
/// fragment an `include-fragment` entry names.
pub(super) fn steps_of(
    step: &Value,
    section: Section,
    named: &NamedValues,
    at: &str,
    place: String,
    problems: &mut Vec<String>,
) -> Vec<Step> {
    let Value::Mapping(m) = step else {
        return step_of(step, section, named, at, place, problems)
            .into_iter()
            .collect();
    };
    let Some(args) = m.get("include-fragment").filter(|_| m.len() == 1) else {
        return step_of(step, section, named, at, place, problems)
            .into_iter()
            .collect();
    };
    let id = match args {
        Value::String(id) => Some(id.as_str()),
        Value::Mapping(a) if a.len() == 1 => a.get("fragment-id").and_then(Value::as_str),
        _ => None,
    };
    let Some(id) = id else {
        problems.push(format!(
            "{at}: include-fragment takes the fragment's name: `include-fragment: {{fragment-id: NAME}}`"
        ));
        return Vec::new();
    };
    match expand_fragment(id, section, named, at, &place, problems) {
        Ok(list) => list.into_iter().map(Step::Policy).collect(),
        Err(m) => {
            problems.push(format!("{at}: include-fragment: {m}"));
            Vec::new()
        }
    }
}

/// The policies of fragment `id` included at `place` in `section`; `Err`
/// (for the caller to place) when it does not exist or includes itself.
/// Problems of its policies are reported under `fragment "id"`.
pub(crate) fn expand_fragment(
    id: &str,
    section: Section,
    named: &NamedValues,
    at: &str,
    place: &str,
    problems: &mut Vec<String>,
) -> Result<Vec<Arc<Placed>>, String> {
    let expansion = named.fragments.enter(id)?;
    let at = format!("{at}: fragment \"{id}\"");
    let place = format!("{place}/fragment {id}");
    let mut out = Vec::new();
    match expansion.body {
        Value::String(text) if crate::apim::is_xml(text) => {
            out = crate::apim::parse_fragment(text, &at, section, &place, named, problems);
        }
        Value::Sequence(list) => {
            for (i, step) in list.iter().enumerate() {
                for step in steps_of(step, section, named, &at, format!("{place}/{i}"), problems) {
                    match step {
                        Step::Policy(p) => out.push(p),
                        Step::Base => problems.push(format!(
                            "{at}: \"base\" cannot be in a fragment; put it in the scope that includes it"
                        )),
                    }
                }
            }
        }
        _ => problems.push(format!(
            "{at}: policies must be a <fragment> XML document or a list of policies"
        )),
    }
    Ok(out)
}

/// One entry of a section (or of a `choose` branch); problems go to
/// `problems` prefixed with `at`; `place` identifies the entry (e.g.
/// `api orders/inbound/2`).
pub(super) fn step_of(
    step: &Value,
    section: Section,
    named: &NamedValues,
    at: &str,
    place: String,
    problems: &mut Vec<String>,
) -> Option<Step> {
    let parsed = match step {
        Value::String(s) if s == "base" => return Some(Step::Base),
        Value::Mapping(m) if m.len() == 1 && m.contains_key("choose") => {
            let at = format!("{at}: choose");
            let choose = ChooseSpec::parse(&m["choose"], section, named, &at, &place, problems)?;
            Ok(PolicySpec::Choose(Box::new(choose)))
        }
        Value::String(name) => PolicySpec::parse(name, section, Value::Null),
        Value::Mapping(m) if m.len() == 1 => {
            let (name, args) = m.iter().next().expect("one entry");
            let name = name.as_str().unwrap_or_default();
            substitute_args(name, args, named)
                .map_err(|e| format!("policy \"{name}\": {e}"))
                .and_then(|args| PolicySpec::parse(name, section, args))
        }
        _ => Err("each entry is \"base\" or one `policy-name: {settings}`".into()),
    };
    parsed
        .map_err(|m| problems.push(format!("{at}: {m}")))
        .ok()
        .map(|spec| Step::Policy(Arc::new(Placed { place, spec })))
}

/// The settings with named values substituted; a Liquid `set-body`
/// keeps the `{{...}}` that are not named values (its own output tags).
fn substitute_args(name: &str, args: &Value, named: &NamedValues) -> Result<Value, String> {
    if name == "set-body"
        && args.get("template").and_then(Value::as_str) == Some("liquid")
        && let Some(Value::String(text)) = args.get("value")
    {
        let mut args = args.clone();
        args["value"] = Value::String(named.substitute_known(text));
        return Ok(args);
    }
    substitute(args.clone(), named)
}

/// Replaces `{{name}}` in every string of the settings.
fn substitute(value: Value, named: &NamedValues) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(named.substitute(&s)?),
        Value::Sequence(list) => Value::Sequence(
            list.into_iter()
                .map(|v| substitute(v, named))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| Ok((k, substitute(v, named)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (ScopePolicies, Vec<String>) {
        let mut named = NamedValues::default();
        named.insert("who", "edge", false).unwrap();
        let value: Value = serde_yaml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let scope = parse_scope(Some(&value), "api \"a\"", &named, &mut problems);
        (scope, problems)
    }

    #[test]
    fn parses_sections_base_and_named_values() {
        let (scope, problems) =
            parse("inbound: [base, {set-header: {name: x-who, value: '{{who}}'}}]\noutbound: []\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(scope.section(Section::Inbound).unwrap().len(), 2);
        assert!(scope.section(Section::Outbound).unwrap().is_empty());
        assert!(scope.section(Section::Backend).is_none());
        let Some(Step::Policy(p)) = scope.section(Section::Inbound).unwrap().get(1) else {
            panic!("a policy")
        };
        assert_eq!(p.place, "api a/inbound/1");
    }

    #[test]
    fn reports_every_problem_with_its_place() {
        let (_, problems) = parse(
            r#"
inbound:
  - rate-limt: {calls: 1}
  - set-status: {code: 200}
  - set-header: {name: x, value: "{{missing}}"}
  - base
  - base
inbond: []
backend:
  - rate-limit: {calls: 1, renewal_period: 1}
"#,
        );
        let want = [
            "api \"a\": inbound: unknown policy \"rate-limt\"",
            "api \"a\": inbound: policy \"set-status\" cannot run in the inbound section",
            "api \"a\": inbound: policy \"set-header\": unknown named value \"{{missing}}\"",
            "api \"a\": inbound: \"base\" appears 2 times",
            "api \"a\": unknown policy section \"inbond\"",
            "api \"a\": backend: policy \"rate-limit\" cannot run in the backend section",
        ];
        assert_eq!(problems.len(), want.len(), "{problems:#?}");
        for w in want {
            assert!(
                problems.iter().any(|p| p.starts_with(w)),
                "{w}: {problems:#?}"
            );
        }
    }

    #[test]
    fn every_known_policy_parses_or_explains() {
        for (name, sections, _) in super::super::KNOWN {
            // Empty settings: a clear error or a spec, never a panic.
            let _ = PolicySpec::parse(name, sections[0], Value::Null);
        }
    }
}
