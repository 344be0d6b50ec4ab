//! `set-variable`: stores a value under a name for the rest of the
//! request; policy expressions read it as `context.Variables[name]`.
//! Inbound keeps them in the request's `Ctx`; the later sections go on
//! from a copy of what inbound left (in the request's `Snapshot`).

use edgegw_policy_expr::Value;
use gateway_model::policy::{expr::Text, set_variable::SetVariableSpec};

use super::{
    expr::{self, Facts, Later},
    respond::Answer,
};

#[derive(Debug)]
pub struct SetVariable {
    name: String,
    value: Text,
}

impl SetVariable {
    pub fn new(spec: &SetVariableSpec) -> Self {
        SetVariable {
            name: spec.name.clone(),
            value: spec.value.clone(),
        }
    }

    pub fn uses_expressions(&self) -> bool {
        self.value.is_expression()
    }

    /// The value (a literal is a string, as in APIM); a failed
    /// expression is the answer.
    pub fn value(
        &self,
        facts: &Facts,
        later: Option<Later>,
    ) -> Result<Value<'static>, Box<Answer>> {
        Ok(match &self.value {
            Text::Literal(l) => Value::string(l.clone()),
            Text::Expr(e) => expr::eval_with(e, facts, later, |v| v.clone().into_owned())
                .map_err(|err| Box::new(expr::failure("set-variable", e, &err)))?,
        })
    }

    /// In outbound and on-error (`env` is `None` when the pipeline keeps
    /// no snapshot: then it holds no expression).
    pub fn value_later(&self, env: Option<(&Facts, Later)>) -> Result<Value<'static>, Box<Answer>> {
        match (&self.value, env) {
            (Text::Literal(l), _) => Ok(Value::string(l.clone())),
            (Text::Expr(_), Some((facts, later))) => self.value(facts, Some(later)),
            (Text::Expr(e), None) => Err(Box::new(expr::failure(
                "set-variable",
                e,
                &expr::message(e, "no request to read"),
            ))),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::Ctx;
    use edgegw_policy_expr::Expression;

    fn spec(s: &str) -> SetVariable {
        SetVariable::new(&SetVariableSpec::parse(serde_yaml::from_str(s).unwrap()).unwrap())
    }

    #[test]
    fn values_are_kept_and_read_by_later_expressions() {
        let method = hyper::Method::POST;
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-n", "41".parse().unwrap());
        let mut ctx = Ctx::test(&method, &mut headers);
        let run = |ctx: &mut Ctx, s: &str| {
            let v = spec(s);
            let value = v.value(&Facts::of(ctx), None)?;
            ctx.variables.insert(v.name().into(), value);
            Ok::<_, Box<Answer>>(())
        };
        run(&mut ctx, "{name: tier, value: gold}").unwrap();
        run(
            &mut ctx,
            "{name: n, value: '@(int.Parse(context.Request.Headers.GetValueOrDefault(\"x-n\", \"0\")) + 1)'}",
        )
        .unwrap();
        run(&mut ctx, "{name: m, value: '@(context.Request.Method)'}").unwrap();
        let read = |ctx: &Ctx, s: &str| {
            let e = Expression::parse(s).unwrap();
            expr::text(&e, ctx).unwrap()
        };
        assert_eq!(
            read(
                &ctx,
                "@((string)context.Variables[\"tier\"] + context.Variables.GetValueOrDefault<int>(\"n\", 0) + context.Variables[\"m\"])"
            ),
            "gold42POST"
        );
        assert_eq!(
            read(&ctx, "@(context.Variables.ContainsKey(\"none\"))"),
            "False"
        );
        // A failed expression is a 500 naming set-variable.
        let failed = run(&mut ctx, "{name: bad, value: '@(int.Parse(\"x\"))'}").unwrap_err();
        assert_eq!(failed.status(), 500);
        assert_eq!(
            failed.extensions().get::<expr::Failed>().unwrap().source,
            "set-variable"
        );
        assert!(!ctx.variables.contains_key("bad"));
    }
}
