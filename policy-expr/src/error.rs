//! Load-time and run-time failures. A load error names where, what was
//! written and what to write instead; a run-time error carries what
//! `context.LastError` shows.

use std::fmt;

use crate::ast::Span;

/// An expression refused when the policy is loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub line: u32,
    pub column: u32,
    /// The text at fault, as written (shortened).
    pub expression: String,
    pub problem: String,
    /// What to write instead.
    pub hint: String,
}

impl LoadError {
    pub fn new(
        span: Span,
        expression: &str,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> LoadError {
        let mut short: String = expression.chars().take(80).collect();
        if expression.chars().count() > 80 {
            short.push('…');
        }
        LoadError {
            line: span.line,
            column: span.column,
            expression: short,
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: `{}`: {}; {}",
            self.line, self.column, self.expression, self.problem, self.hint
        )
    }
}

/// An expression that failed while a request was evaluated: what the
/// gateway puts in `context.LastError` (Source, Scope, Section, Path and
/// PolicyId are the gateway's: the policy that held the expression).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct EvalError {
    /// `LastError.Reason`.
    pub reason: &'static str,
    /// `LastError.Message`, as APIM words it: "Expression evaluation
    /// failed. " and the .NET exception's message.
    pub message: String,
    pub line: u32,
    pub column: u32,
}

/// APIM's reason for a failed expression.
pub const EXPRESSION_FAILURE: &str = "ExpressionValueEvaluationFailure";

impl EvalError {
    pub fn new(span: Span, what: impl fmt::Display) -> EvalError {
        EvalError {
            reason: EXPRESSION_FAILURE,
            message: format!("Expression evaluation failed. {what}"),
            line: span.line,
            column: span.column,
        }
    }

    pub fn null(span: Span) -> EvalError {
        EvalError::new(
            span,
            "Object reference not set to an instance of an object.",
        )
    }
}
