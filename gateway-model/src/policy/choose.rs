//! `choose`: the first `when` whose condition holds runs its policies,
//! else `otherwise` (optional) does.
//!
//! ```yaml
//! - choose:
//!     - when: "{header:x-tier} == 'gold'"
//!       policies:
//!         - set-header: { name: x-tier-seen, value: gold }
//!     - otherwise:
//!         - rate-limit-by-key: { calls: 10, renewal_period: 60, counter_key: "{client_ip}" }
//! ```
//!
//! Inner policies are checked for the section the `choose` is in, as if
//! they were written there; `base` cannot be inside a `choose`.

use std::sync::Arc;

use serde_yaml::Value;

use super::{Placed, Section, condition::Condition, parse};
use crate::catalog::NamedValues;

#[derive(Debug)]
pub struct ChooseSpec {
    pub whens: Vec<(Condition, Vec<Arc<Placed>>)>,
    pub otherwise: Vec<Arc<Placed>>,
}

impl ChooseSpec {
    /// Parses the list under `choose:`; every problem goes to `problems`
    /// with its place (`at` ends with `choose`); `place` identifies this
    /// choose for its policies' counters. `None` when any was found.
    pub fn parse(
        value: &Value,
        section: Section,
        named: &NamedValues,
        at: &str,
        place: &str,
        problems: &mut Vec<String>,
    ) -> Option<ChooseSpec> {
        let before = problems.len();
        let Value::Sequence(entries) = value else {
            problems.push(format!(
                "{at}: must be a list of `when: CONDITION` + `policies: [...]` entries and an optional `otherwise: [...]`"
            ));
            return None;
        };
        let mut choose = ChooseSpec {
            whens: Vec::new(),
            otherwise: Vec::new(),
        };
        let mut otherwise_seen = false;
        let mut n = 0;
        for entry in entries {
            let Value::Mapping(map) = entry else {
                problems.push(format!(
                    "{at}: each entry is `when: CONDITION` with `policies: [...]`, or `otherwise: [...]`"
                ));
                continue;
            };
            if otherwise_seen {
                problems.push(format!(
                    "{at}: \"otherwise\" must be the last entry; move it after every when"
                ));
                continue;
            }
            if let Some(list) = map.get("otherwise") {
                otherwise_seen = true;
                if map.len() != 1 {
                    problems.push(format!(
                        "{at}: otherwise: takes only a list of policies, nothing beside it"
                    ));
                }
                let at = format!("{at}: otherwise");
                let place = format!("{place}/otherwise");
                choose.otherwise = policies(list, section, named, &at, &place, problems);
                continue;
            }
            n += 1;
            let branch = format!("{place}/when {n}");
            let place = format!("{at}: when {n}");
            let condition = match map.get("when") {
                Some(Value::String(text)) => {
                    match named.substitute(text).and_then(|t| Condition::parse(&t)) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            problems.push(format!("{place}: condition \"{text}\": {e}"));
                            None
                        }
                    }
                }
                _ => {
                    problems.push(format!(
                        "{place}: needs `when: CONDITION` (quoted text), e.g. when: \"{{header:x-tier}} == 'gold'\""
                    ));
                    None
                }
            };
            for key in map.keys() {
                let key = key.as_str().unwrap_or_default();
                if key != "when" && key != "policies" {
                    problems.push(format!(
                        "{place}: unknown setting \"{key}\"; use when and policies"
                    ));
                }
            }
            let list = map.get("policies").unwrap_or(&Value::Null);
            let inner = policies(list, section, named, &place, &branch, problems);
            if let Some(c) = condition {
                choose.whens.push((c, inner));
            }
        }
        if choose.whens.is_empty() && problems.len() == before {
            problems.push(format!(
                "{at}: needs at least one `when`; without conditions write the policies in the section itself"
            ));
        }
        (problems.len() == before).then_some(choose)
    }
}

fn policies(
    list: &Value,
    section: Section,
    named: &NamedValues,
    at: &str,
    place: &str,
    problems: &mut Vec<String>,
) -> Vec<Arc<Placed>> {
    let list = match list {
        Value::Sequence(list) => list.as_slice(),
        Value::Null => &[],
        _ => {
            problems.push(format!("{at}: policies must be a list"));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, step) in list.iter().enumerate() {
        for step in parse::steps_of(step, section, named, at, format!("{place}/{i}"), problems) {
            match step {
                parse::Step::Policy(p) => out.push(p),
                parse::Step::Base => problems.push(format!(
                    "{at}: \"base\" cannot be inside choose; put it in the section itself"
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, section: Section) -> (Option<ChooseSpec>, Vec<String>) {
        let value: Value = serde_yaml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let c = ChooseSpec::parse(
            &value,
            section,
            &NamedValues::default(),
            "api \"a\": inbound: choose",
            "api a/inbound/0",
            &mut problems,
        );
        (c, problems)
    }

    #[test]
    fn reports_problems_with_their_place() {
        let (c, problems) = parse(
            r#"
- when: "{header:x} = 'a'"
  policies: []
- when: "'a' == 'a'"
  policies: [base, {set-status: {code: 200}}]
  then: []
- otherwise: []
- when: "'b' == 'b'"
"#,
            Section::Inbound,
        );
        assert!(c.is_none());
        let want = [
            "api \"a\": inbound: choose: when 1: condition \"{header:x} = 'a'\": unknown operator \"=\" at column 12",
            "api \"a\": inbound: choose: when 2: \"base\" cannot be inside choose",
            "api \"a\": inbound: choose: when 2: policy \"set-status\" cannot run in the inbound section",
            "api \"a\": inbound: choose: when 2: unknown setting \"then\"",
            "api \"a\": inbound: choose: \"otherwise\" must be the last entry",
        ];
        assert_eq!(problems.len(), want.len(), "{problems:#?}");
        for w in want {
            assert!(
                problems.iter().any(|p| p.starts_with(w)),
                "{w}: {problems:#?}"
            );
        }
        let (_, problems) = parse("[{otherwise: []}]", Section::Inbound);
        assert!(
            problems[0].contains("needs at least one `when`"),
            "{problems:?}"
        );
        let (_, problems) = parse("{when: x}", Section::Inbound);
        assert!(problems[0].contains("must be a list"), "{problems:?}");
    }
}
