//! The condition language of `choose` / `when`, evaluated per request.
//! Parsed (and its errors reported) by the model:
//! `gateway_model::policy::condition`.

use std::borrow::Cow;

use gateway_model::policy::condition::{Condition, Op, Operand};

use super::{context::Ctx, template::Render};

/// Evaluation of a parsed condition.
pub trait Holds {
    fn holds(&self, ctx: &Ctx) -> bool;
}

impl Holds for Condition {
    fn holds(&self, ctx: &Ctx) -> bool {
        match self {
            Condition::Compare(left, op, right) => {
                let (left, right) = (value(left, ctx), value(right, ctx));
                match op {
                    Op::Eq => left == right,
                    Op::Ne => left != right,
                    Op::StartsWith => left.starts_with(&*right),
                    Op::EndsWith => left.ends_with(&*right),
                    Op::Contains => left.contains(&*right),
                }
            }
            Condition::Exists(t) => t.present(ctx),
            Condition::Not(c) => !c.holds(ctx),
            Condition::And(a, b) => a.holds(ctx) && b.holds(ctx),
            Condition::Or(a, b) => a.holds(ctx) || b.holds(ctx),
            // Evaluated with its failure by `Choose::pick`; the model
            // loads expression conditions in the inbound section only,
            // where `pick` runs, so this is not reached.
            Condition::Expression(e) => super::expr::holds(e, ctx).unwrap_or(false),
        }
    }
}

/// Borrowed when the literal or the request holds the text already.
fn value<'c>(operand: &'c Operand, ctx: &'c Ctx) -> Cow<'c, str> {
    match operand {
        Operand::Literal(s) => s.into(),
        Operand::Value(t) => t.render(ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::Query;

    fn holds(condition: &str, headers: &[(&str, &str)], query: &str) -> bool {
        let mut map = hyper::HeaderMap::new();
        for (n, v) in headers {
            map.insert(
                hyper::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let method = hyper::Method::GET;
        let ctx = Ctx {
            query: Query::parse(Some(query)),
            subscription: Some("alice"),
            path: "/orders/7".into(),
            ..Ctx::test(&method, &mut map)
        };
        Condition::parse(condition)
            .unwrap_or_else(|e| panic!("{condition}: {e}"))
            .holds(&ctx)
    }

    #[test]
    fn every_operator() {
        let gold = [("X-Tier", "gold")];
        assert!(holds("{header:x-tier} == 'gold'", &gold, ""));
        assert!(
            !holds("{header:x-tier} == 'Gold'", &gold, ""),
            "case-sensitive"
        );
        assert!(holds("{header:X-TIER} != \"silver\"", &gold, ""));
        assert!(holds("{client_ip} starts-with '10.'", &[], ""));
        assert!(!holds("{client_ip} starts-with '192.'", &[], ""));
        assert!(holds("{path} ends-with '/7'", &[], ""));
        assert!(holds("{path} contains 'ders'", &[], ""));
        assert!(!holds("{path} contains 'x'", &[], ""));
        assert!(holds("{query:debug} exists", &[], "debug"));
        assert!(!holds("{query:debug} exists", &[], "verbose=1"));
        assert!(holds("{header:x-tier} exists", &gold, ""));
        assert!(holds("not {header:x-tier} exists", &[], ""));
        assert!(holds("{claim:sub} exists or 'x' == 'x'", &[], ""));
        assert!(!holds("{claim:sub} exists", &[], ""));
        assert!(holds(
            "{subscription} == 'alice' and {method} == 'GET'",
            &[],
            ""
        ));
        assert!(holds("'it\\'s' == \"it's\"", &[], ""));
        // An absent header renders as "".
        assert!(holds("{header:x-none} == ''", &[], ""));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // true or (false and false): true; (true or false) and false would be false.
        assert!(holds("'a' == 'a' or 'a' == 'b' and 'a' == 'c'", &[], ""));
        // (false and true) or true
        assert!(holds("'a' == 'b' and 'a' == 'a' or 'a' == 'a'", &[], ""));
        assert!(!holds("('a' == 'a' or 'a' == 'b') and 'a' == 'c'", &[], ""));
        // not binds tighter than and.
        assert!(!holds("not 'a' == 'a' and 'a' == 'a'", &[], ""));
        assert!(holds("not ('a' == 'a' and 'a' == 'b')", &[], ""));
        assert!(holds("not not 'a' == 'a'", &[], ""));
    }
}
