//! `choose`: the first `when` whose condition holds runs its policies,
//! else `otherwise` (optional) does. Validated in the model
//! (`gateway_model::policy::choose`).

use std::sync::Arc;

use gateway_model::policy::{Placed, choose::ChooseSpec, condition::Condition};

use super::{
    Answer, Policy,
    condition::Holds,
    context::Ctx,
    expr::{self, Facts, Later},
};
use crate::state_registry::Staging;

#[derive(Debug)]
pub struct Choose {
    whens: Vec<(Condition, Vec<Arc<Policy>>)>,
    otherwise: Vec<Arc<Policy>>,
}

impl Choose {
    pub fn new(spec: &ChooseSpec, staging: &mut Staging) -> Choose {
        let mut build = |list: &[Arc<Placed>]| -> Vec<Arc<Policy>> {
            list.iter()
                .map(|p| Arc::new(Policy::build(p, staging)))
                .collect()
        };
        Choose {
            whens: spec
                .whens
                .iter()
                .map(|(c, list)| (c.clone(), build(list)))
                .collect(),
            otherwise: build(&spec.otherwise),
        }
    }

    /// The policies of the branch that runs for this request; the
    /// failure answer when a condition's expression failed.
    pub fn pick(&self, ctx: &Ctx) -> Result<&[Arc<Policy>], Box<Answer>> {
        for (c, policies) in &self.whens {
            let holds = match c {
                Condition::Expression(e) => {
                    expr::holds(e, ctx).map_err(|err| Box::new(expr::failure("choose", e, &err)))?
                }
                c => c.holds(ctx),
            };
            if holds {
                return Ok(policies);
            }
        }
        Ok(&self.otherwise)
    }

    /// Whether a condition or a branch's policy is a policy expression.
    pub fn uses_expressions(&self) -> bool {
        self.whens.iter().any(|(c, list)| {
            matches!(c, Condition::Expression(_)) || list.iter().any(|p| p.uses_expressions())
        }) || self.otherwise.iter().any(|p| p.uses_expressions())
    }

    /// `pick` in outbound and on-error, where conditions see the response
    /// and `context.LastError` (`env`). Native conditions were decided on
    /// the request already (`Pipeline::for_request`): such a `choose` is
    /// not run here.
    pub fn pick_later(&self, env: Option<(&Facts, Later)>) -> Result<&[Arc<Policy>], Box<Answer>> {
        for (c, policies) in &self.whens {
            let Condition::Expression(e) = c else {
                continue;
            };
            let failed = |err| Box::new(expr::failure("choose", e, &err));
            let (facts, later) =
                env.ok_or_else(|| failed(expr::message(e, "no request to read")))?;
            if expr::holds_with(e, facts, Some(later)).map_err(failed)? {
                return Ok(policies);
            }
        }
        Ok(&self.otherwise)
    }

    /// The policies of every branch.
    pub fn branches(&self) -> impl Iterator<Item = &[Arc<Policy>]> {
        self.whens
            .iter()
            .map(|(_, p)| p.as_slice())
            .chain(std::iter::once(self.otherwise.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Choose {
        let value: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let spec = ChooseSpec::parse(
            &value,
            gateway_model::policy::Section::Inbound,
            &Default::default(),
            "api \"a\": inbound: choose",
            "api a/inbound/0",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        Choose::new(&spec.unwrap(), &mut Staging::fresh())
    }

    #[test]
    fn picks_the_first_holding_branch_else_otherwise() {
        let c = parse(
            r#"
- when: "{header:x-tier} == 'gold'"
  policies: [{set-header: {name: x-b, value: "1"}}]
- when: "{header:x-tier} exists"
  policies: [{set-header: {name: x-b, value: "2"}}, {set-header: {name: x-c, value: "2"}}]
- otherwise: []
"#,
        );
        let method = hyper::Method::GET;
        let mut headers = hyper::HeaderMap::new();
        assert!(
            c.pick(&Ctx::test(&method, &mut headers))
                .unwrap()
                .is_empty()
        );
        headers.insert("x-tier", "silver".parse().unwrap());
        assert_eq!(c.pick(&Ctx::test(&method, &mut headers)).unwrap().len(), 2);
        headers.insert("x-tier", "gold".parse().unwrap());
        assert_eq!(c.pick(&Ctx::test(&method, &mut headers)).unwrap().len(), 1);
        assert_eq!(c.branches().count(), 3);
    }
}
