//! `set-query-parameter`: sets, appends, skips or deletes a query parameter
//! of the request sent to the backend.

use std::sync::Arc;

use edgegw_policy_expr::Expression;
use gateway_model::policy::{expr::Text, set_query::SetQuerySpec};

use super::{
    context::{Ctx, Query, percent_encode},
    expr,
    respond::Answer,
};

pub struct SetQuery {
    name: String,
    /// Encoded once when literal.
    value: Option<String>,
    /// Evaluated (and encoded) per request.
    expression: Option<Arc<Expression>>,
    action: String,
}

impl std::fmt::Debug for SetQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetQuery({}, {})", self.name, self.action)
    }
}

impl SetQuery {
    pub fn new(spec: &SetQuerySpec) -> Self {
        let (value, expression) = match &spec.value {
            Some(Text::Literal(v)) => (Some(percent_encode(v)), None),
            Some(Text::Expr(e)) => (None, Some(e.clone())),
            None => (None, None),
        };
        SetQuery {
            name: spec.name.clone(),
            value,
            expression,
            action: spec.action.clone(),
        }
    }

    /// Sets the parameter on the request's query; a value expression
    /// that fails answers 500 (through on-error).
    pub fn run(&self, ctx: &mut Ctx) -> Option<Answer> {
        let Some(e) = &self.expression else {
            self.apply(&mut ctx.query, self.value.clone());
            return None;
        };
        match expr::text(e, ctx) {
            Ok(v) => {
                self.apply(&mut ctx.query, Some(percent_encode(&v)));
                None
            }
            Err(err) => Some(expr::failure("set-query-parameter", e, &err)),
        }
    }

    fn apply(&self, query: &mut Query, value: Option<String>) {
        let present = query.get(&self.name).is_some();
        let pair = || (percent_encode(&self.name), value.clone());
        match self.action.as_str() {
            "delete" => query.remove(&self.name),
            "skip" if present => {}
            "append" => query.0.push(pair()),
            _ => {
                query.remove(&self.name);
                query.0.push(pair());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(args: &str, q: &str) -> String {
        let method = hyper::Method::GET;
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-n", "4 2".parse().unwrap());
        let mut ctx = Ctx::test(&method, &mut headers);
        ctx.query = Query::parse(Some(q));
        let set = SetQuery::new(&SetQuerySpec::parse(serde_yaml::from_str(args).unwrap()).unwrap());
        match set.run(&mut ctx) {
            None => ctx.query.to_suffix(),
            Some(answer) => format!("answer {}", answer.status().as_u16()),
        }
    }

    #[test]
    fn values_may_be_expressions() {
        assert_eq!(
            apply(
                "{name: v, value: '@(context.Request.Headers.GetValueOrDefault(\"x-n\", \"\") + \"&\")'}",
                "v=1"
            ),
            "?v=4%202%26"
        );
        assert_eq!(
            apply(
                "{name: v, value: '@(context.Request.Headers[\"nope\"].Length.ToString())'}",
                ""
            ),
            "answer 500"
        );
    }

    #[test]
    fn each_exists_action() {
        assert_eq!(apply("{name: v, value: 'a b'}", "v=1&x=2"), "?x=2&v=a%20b");
        assert_eq!(
            apply("{name: v, value: 2, exists_action: skip}", "v=1"),
            "?v=1"
        );
        assert_eq!(
            apply("{name: v, value: 2, exists_action: skip}", ""),
            "?v=2"
        );
        assert_eq!(
            apply("{name: v, value: 2, exists_action: append}", "v=1"),
            "?v=1&v=2"
        );
        assert_eq!(apply("{name: v, exists_action: delete}", "v=1&w"), "?w");
    }
}
