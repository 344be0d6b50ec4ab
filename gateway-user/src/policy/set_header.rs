//! `set-header`: sets, appends, skips or deletes a request header
//! (inbound) or response header (outbound, on-error).

use hyper::{
    HeaderMap,
    header::{HeaderName, HeaderValue},
};

use std::sync::Arc;

use edgegw_policy_expr::Expression;
use gateway_model::policy::set_header::{Action, SetHeaderSpec};

use super::{
    context::Ctx,
    expr::{self, Facts, Later},
    per_thread::PerThread,
    respond::Answer,
};

pub struct SetHeader {
    name: PerThread<HeaderName>,
    value: Option<PerThread<HeaderValue>>,
    /// The value, computed per request (inbound only).
    expression: Option<Arc<Expression>>,
    action: Action,
}

// The value may come from a secret named value: never shown.
impl std::fmt::Debug for SetHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetHeader({}, {:?})", *self.name, self.action)
    }
}

impl SetHeader {
    pub fn new(spec: &SetHeaderSpec) -> Self {
        SetHeader {
            name: PerThread::new(spec.name.clone()),
            value: spec.value.clone().map(PerThread::new),
            expression: spec.expression.clone(),
            action: spec.action,
        }
    }

    /// In the inbound section: a value computed by an expression is
    /// evaluated first; its failure is the answer.
    pub fn run(&self, ctx: &mut Ctx) -> Option<Answer> {
        let Some(e) = &self.expression else {
            self.apply(ctx.headers);
            return None;
        };
        let failed = |err| Some(expr::failure("set-header", e, &err));
        let value = match expr::text(e, ctx) {
            Ok(text) => match HeaderValue::try_from(text) {
                Ok(v) => v,
                Err(_) => return failed(expr::message(e, "the value is not valid in a header")),
            },
            Err(err) => return failed(err),
        };
        self.set(ctx.headers, Some(&value));
        None
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        self.set(headers, self.value.as_ref().map(|v| v.get()));
    }

    /// Whether its value is computed by an expression.
    pub fn uses_expressions(&self) -> bool {
        self.expression.is_some()
    }

    /// In outbound and on-error: the value to set, an expression's
    /// evaluated against the request and the response (`env`).
    pub fn value_later(
        &self,
        env: Option<(&Facts, Later)>,
    ) -> Result<Option<HeaderValue>, Box<Answer>> {
        match (&self.expression, env) {
            (Some(e), None) => Err(Box::new(expr::failure(
                "set-header",
                e,
                &expr::message(e, "no request to read"),
            ))),
            (_, Some((facts, later))) => self.value_with(facts, Some(later)),
            (None, None) => Ok(self.value.as_ref().map(|v| v.get().clone())),
        }
    }

    /// The value to set: the literal, or the expression's against `facts`
    /// (and `later` past inbound).
    pub fn value_with(
        &self,
        facts: &Facts,
        later: Option<Later>,
    ) -> Result<Option<HeaderValue>, Box<Answer>> {
        let Some(e) = &self.expression else {
            return Ok(self.value.as_ref().map(|v| v.get().clone()));
        };
        let failed = |err| Box::new(expr::failure("set-header", e, &err));
        let text = expr::eval_with(e, facts, later, |v| v.to_string()).map_err(failed)?;
        HeaderValue::try_from(text)
            .map(Some)
            .map_err(|_| failed(expr::message(e, "the value is not valid in a header")))
    }

    /// Sets (or deletes) the header with `value`.
    pub fn set(&self, headers: &mut HeaderMap, value: Option<&HeaderValue>) {
        let name = self.name.get();
        match (value, self.action) {
            (_, Action::Delete) | (None, _) => {
                headers.remove(name);
            }
            (Some(v), Action::Override) => {
                headers.insert(name.clone(), v.clone());
            }
            (Some(v), Action::Append) => {
                headers.append(name.clone(), v.clone());
            }
            (Some(v), Action::Skip) => {
                if !headers.contains_key(name) {
                    headers.insert(name.clone(), v.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(args: &str, headers: &mut HeaderMap) {
        SetHeader::new(&SetHeaderSpec::parse(serde_yaml::from_str(args).unwrap()).unwrap())
            .apply(headers);
    }

    #[test]
    fn each_exists_action() {
        let mut h = HeaderMap::new();
        h.insert("x-a", "old".parse().unwrap());
        apply("{name: X-A, value: skip, exists_action: skip}", &mut h);
        assert_eq!(h["x-a"], "old");
        apply("{name: X-A, value: new}", &mut h);
        assert_eq!(h["x-a"], "new");
        apply("{name: X-A, value: two, exists_action: append}", &mut h);
        assert_eq!(h.get_all("x-a").iter().count(), 2);
        apply("{name: X-A, exists_action: delete}", &mut h);
        assert!(h.is_empty());
        apply("{name: X-B, value: b, exists_action: skip}", &mut h);
        assert_eq!(h["x-b"], "b");
    }
}
