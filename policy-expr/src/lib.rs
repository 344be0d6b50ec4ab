//! APIM policy expressions: `@(expression)` and `@{ statements }` in the
//! C# subset that API Management documents, parsed once when a policy is
//! loaded into a typed tree, checked against the context model, and
//! evaluated per request without re-parsing.
//!
//! ```
//! use edgegw_policy_expr::Expression;
//! let e = Expression::parse("@((1+1).ToString())").unwrap();
//! assert_eq!(e.ty().to_string(), "string");
//! ```
//!
//! What is outside the surface (the README's "Policy expressions" table)
//! is refused by [`Expression::parse`] with line, column, the expression
//! and what to write instead; a failure while evaluating is an
//! [`EvalError`] carrying what `context.LastError` shows.
#![forbid(unsafe_code)]

pub mod ast;
mod builtins;
mod check;
mod digest;
mod dotnet;
mod error;
mod eval;
mod interpolate;
mod ir;
mod json_edit;
mod jwt;
mod lexer;
pub mod model;
pub mod parser;
pub mod print;
mod regex;
mod types;
mod value;

pub use error::{EXPRESSION_FAILURE, EvalError, LoadError};
pub use jwt::Jwt;
pub use model::{
    Api, Context, Deployment, LastError, Operation, Product, Request, Response, Subscription, Url,
    User, Variables,
};
pub use types::Ty;
pub use value::{Dict, KeptResponse, Value};

/// A loaded policy expression.
#[derive(Clone, Debug)]
pub struct Expression {
    source: String,
    checked: check::Checked,
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Expression {
    /// Parses and checks `text` (`@(...)` or `@{...}`), as at line 1,
    /// column 1.
    pub fn parse(text: &str) -> Result<Expression, LoadError> {
        Expression::parse_at(text, 1, 1)
    }

    /// Parses and checks `text`, which starts at `line`/`column` of its
    /// document, so that refusals point into the document.
    pub fn parse_at(text: &str, line: u32, column: u32) -> Result<Expression, LoadError> {
        let tree = parser::parse_at(text, line, column)?;
        let checked = check::check(&tree)?;
        Ok(Expression {
            source: text.trim().to_string(),
            checked,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The type of its value.
    pub fn ty(&self) -> &Ty {
        &self.checked.ty
    }

    /// Evaluates it against a request's context.
    pub fn eval<'a>(&'a self, ctx: &Context<'a>) -> Result<Value<'a>, EvalError> {
        eval::run(&self.checked.body, self.checked.locals, ctx)
    }
}

/// Whether an attribute or text value is a policy expression (APIM's
/// rule: it starts with `@(` or `@{`).
pub fn is_expression(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("@(") || t.starts_with("@{")
}
