//! Tokens of the C# subset, by logos. Keywords are identifiers here; the
//! parser gives them their meaning, so a misspelt keyword is reported as
//! an unknown name with the list of known ones.

use logos::Logos;

use crate::{
    ast::{BinOp, Span},
    error::LoadError,
};

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip r"//[^\n]*")]
pub enum Tok {
    /// Skipped by its callback; never produced.
    #[token("/*", block_comment)]
    Comment,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |l| l.slice().to_string())]
    Ident(String),
    /// Digits with an optional `L`/`l` (long) suffix; the parser decides
    /// int or long as C# does (an unsuffixed literal past int is long).
    #[regex(r"[0-9]+[lL]?", |l| l.slice().to_string())]
    Integer(String),
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?[dD]?", |l| l.slice().to_string())]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+[dD]?", |l| l.slice().to_string())]
    #[regex(r"[0-9]+[dD]", |l| l.slice().to_string())]
    Double(String),
    #[regex(r#""([^"\\\n]|\\.)*""#, |l| unescape(&l.slice()[1..l.slice().len() - 1]))]
    Str(Option<String>),
    #[token("@\"", verbatim)]
    Verbatim(String),
    #[regex(r"'([^'\\\n]|\\u[0-9a-fA-F]{4}|\\.)'", |l| unescape(&l.slice()[1..l.slice().len() - 1]).and_then(|s| one_char(&s)))]
    Char(Option<char>),
    /// `$"..."` (and `$@"..."`): the text between the quotes, holes as
    /// written, and whether it is verbatim (`interpolate.rs`).
    #[token("$\"", |l| interpolated(l, false))]
    #[token("$@\"", |l| interpolated(l, true))]
    #[token("@$\"", |l| interpolated(l, true))]
    Interpolated((String, bool)),
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(".")]
    Dot,
    #[token("?.")]
    QDot,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token("?")]
    Question,
    #[token("??")]
    Coalesce,
    #[token("=>")]
    Arrow,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<=")]
    Le,
    #[token(">=")]
    Ge,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("=")]
    Assign,
    /// `+=`, `-=`, `*=`, `/=` (statements only).
    #[token("+=", |_| BinOp::Add)]
    #[token("-=", |_| BinOp::Sub)]
    #[token("*=", |_| BinOp::Mul)]
    #[token("/=", |_| BinOp::Div)]
    CompoundAssign(BinOp),
    /// `++` and `--` (statements only: `i++;`).
    #[token("++", |_| BinOp::Add)]
    #[token("--", |_| BinOp::Sub)]
    Step(BinOp),
    /// Operators C# has and the surface does not: refused by the parser
    /// with the alternative.
    #[regex(r"&|\||\^|~|<<|>>|\?\?=")]
    Unsupported,
}

/// Skips a `/* ... */` comment (to the end when it is not closed).
fn block_comment(lex: &mut logos::Lexer<Tok>) -> logos::Skip {
    let end = lex
        .remainder()
        .find("*/")
        .map_or(lex.remainder().len(), |i| i + 2);
    lex.bump(end);
    logos::Skip
}

/// A verbatim string `@"..."`, where `""` is a quote; `None` unclosed.
fn verbatim(lex: &mut logos::Lexer<Tok>) -> Option<String> {
    let rest = lex.remainder();
    let mut out = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            if let Some((_, '"')) = chars.peek() {
                chars.next();
                out.push('"');
                continue;
            }
            lex.bump(i + 1);
            return Some(out);
        }
        out.push(c);
    }
    None
}

fn interpolated(lex: &mut logos::Lexer<Tok>, verbatim: bool) -> Option<(String, bool)> {
    let (text, len) = crate::interpolate::scan(lex.remainder(), verbatim)?;
    lex.bump(len);
    Some((text, verbatim))
}

/// Decodes C#'s simple escapes; `None` for one the surface does not know.
pub fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            _ => return None,
        });
    }
    Some(out)
}

fn one_char(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

/// Line starts of a source, to turn byte offsets into line and column.
pub struct Lines(Vec<usize>);

impl Lines {
    pub fn new(src: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }

    pub fn span(&self, src: &str, offset: usize) -> Span {
        let line = self.0.partition_point(|&s| s <= offset);
        let start = self.0[line - 1];
        let column = src.get(start..offset).map_or(1, |t| t.chars().count() + 1);
        Span::new(line as u32, column as u32)
    }
}

/// Every token of `src` with where it starts, `base` being the position
/// of `src` inside the policy text (the `@(` before it).
pub fn tokens(src: &str, base: (u32, u32)) -> Result<Vec<(Tok, Span)>, LoadError> {
    let lines = Lines::new(src);
    let mut out = Vec::new();
    let mut lexer = Tok::lexer(src);
    while let Some(tok) = lexer.next() {
        let span = lines.span(src, lexer.span().start).offset(base);
        let slice = lexer.slice();
        match tok {
            Ok(Tok::Str(None)) | Ok(Tok::Char(None)) => {
                return Err(LoadError::new(
                    span,
                    slice,
                    "unknown escape sequence",
                    "use \\n, \\r, \\t, \\\\, \\\", \\' or \\uXXXX",
                ));
            }
            Ok(tok) => out.push((tok, span)),
            Err(()) => {
                let what = slice.chars().next().unwrap_or(' ');
                let hint = if what == '"' || what == '\'' || what == '$' {
                    "close the literal on the same line"
                } else {
                    "remove it; the expression language is the C# subset listed in the README"
                };
                return Err(LoadError::new(span, slice, "unexpected character", hint));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_line_and_column_in_the_document() {
        let toks = tokens("a\n  /* x */ \"é\" ?? 'b'", (3, 10)).unwrap();
        let spans: Vec<(u32, u32)> = toks.iter().map(|(_, s)| (s.line, s.column)).collect();
        assert_eq!(spans, [(3, 10), (4, 11), (4, 15), (4, 18)]);
        assert_eq!(toks[1].0, Tok::Str(Some("é".into())));
        assert_eq!(toks[3].0, Tok::Char(Some('b')));
    }

    #[test]
    fn literals_and_refusals() {
        let t =
            |s: &str| tokens(s, (1, 1)).map(|v| v.into_iter().map(|(t, _)| t).collect::<Vec<_>>());
        assert_eq!(t("@\"a\"\"b\"").unwrap(), [Tok::Verbatim("a\"b".into())]);
        assert_eq!(t("'\\u0041'").unwrap(), [Tok::Char(Some('A'))]);
        assert_eq!(
            t("12L 1.5d 2e3").unwrap(),
            [
                Tok::Integer("12L".into()),
                Tok::Double("1.5d".into()),
                Tok::Double("2e3".into())
            ]
        );
        assert!(t("\"\\q\"").unwrap_err().problem.contains("escape"));
        assert!(t("#").unwrap_err().problem.contains("unexpected character"));
        assert_eq!(
            t("$\"a{b}\" $@\"x\ny\"").unwrap(),
            [
                Tok::Interpolated(("a{b}".into(), false)),
                Tok::Interpolated(("x\ny".into(), true))
            ]
        );
        assert!(t("$\"open").is_err());
    }
}
