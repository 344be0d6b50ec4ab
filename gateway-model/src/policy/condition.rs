//! The condition language of `choose` / `when`, parsed once at load time
//! (evaluated per request by the gateway's `policy/condition.rs`).
//!
//! ```text
//! {header:x-tier} == 'gold' or ({query:debug} exists and not {client_ip} starts-with '10.')
//! ```
//!
//! Operands are key-template placeholders (`template.rs`: `{client_ip}`,
//! `{header:NAME}`, ...) or quoted literals ('...' or "...", `\` escapes
//! the quote). Operators: `==`, `!=`, `starts-with`, `ends-with`,
//! `contains`, unary `exists` (the header, query parameter or claim is
//! present), `not`, `and`, `or` and parentheses; `not` binds tightest,
//! then `and`, then `or`. Comparisons are case-sensitive (header names are
//! not).

use super::key_template::KeyTemplate;

#[derive(Clone, Debug)]
pub enum Condition {
    Compare(Operand, Op, Operand),
    Exists(KeyTemplate),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    /// A boolean policy expression (`<when condition="@(...)">`).
    Expression(std::sync::Arc<edgegw_policy_expr::Expression>),
}

#[derive(Clone, Debug)]
pub enum Operand {
    Literal(String),
    Value(KeyTemplate),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    StartsWith,
    EndsWith,
    Contains,
}

const OPERATORS: &str = "use ==, !=, starts-with, ends-with, contains or exists";

impl Condition {
    /// Parses `text`; errors say what is wrong and at which column (from 1).
    pub fn parse(text: &str) -> Result<Condition, String> {
        let tokens = lex(text)?;
        let mut parser = Parser {
            tokens,
            next: 0,
            depth: 0,
        };
        let condition = parser.or()?;
        match parser.peek() {
            None => Ok(condition),
            Some((column, token)) => Err(format!(
                "unexpected {} at column {column}; join conditions with and / or",
                token.describe()
            )),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Placeholder(String),
    Literal(String),
    Open,
    Close,
    /// A bare word or symbol: an operator or keyword, known or not.
    Word(String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Placeholder(p) => format!("operand \"{{{p}}}\""),
            Token::Literal(l) => format!("literal '{l}'"),
            Token::Open => "\"(\"".into(),
            Token::Close => "\")\"".into(),
            Token::Word(w) => format!("\"{w}\""),
        }
    }
}

/// Tokens with their column (from 1).
fn lex(text: &str) -> Result<Vec<(usize, Token)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let column = i + 1;
        let c = chars[i];
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                out.push((column, Token::Open));
                i += 1;
            }
            ')' => {
                out.push((column, Token::Close));
                i += 1;
            }
            '{' => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| format!("\"{{\" at column {column} has no closing \"}}\""))?;
                out.push((
                    column,
                    Token::Placeholder(chars[i + 1..i + end].iter().collect()),
                ));
                i += end + 1;
            }
            '\'' | '"' => {
                let mut literal = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!("literal at column {column} has no closing {c}"));
                        }
                        Some('\\') if chars.get(i + 1).is_some() => {
                            literal.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            literal.push(other);
                            i += 1;
                        }
                    }
                }
                out.push((column, Token::Literal(literal)));
            }
            // Not the start of a word (which would end before it, empty,
            // and lex forever: found by the `condition` fuzz target).
            '}' => return Err(format!("\"}}\" at column {column} has no opening \"{{\"")),
            _ => {
                let len = chars[i..]
                    .iter()
                    .position(|&c| c.is_whitespace() || "(){}'\"".contains(c))
                    .unwrap_or(chars.len() - i);
                out.push((column, Token::Word(chars[i..i + len].iter().collect())));
                i += len;
            }
        }
    }
    Ok(out)
}

/// Parentheses and `not`s one condition may nest: the parser recurses
/// once for each, and a catalog is not to overflow the stack.
const MAX_NESTING: usize = 64;

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    /// Parentheses and `not`s open around the token at `next`.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.next).map(|(c, t)| (*c, t))
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some((_, Token::Word(w))) if w == word)
    }

    /// Column just after the text, for "missing ..." errors.
    fn end_column(&self) -> usize {
        self.tokens.last().map_or(1, |(c, t)| {
            c + match t {
                Token::Placeholder(p) => p.chars().count() + 2,
                Token::Literal(l) => l.chars().count() + 2,
                Token::Word(w) => w.chars().count(),
                Token::Open | Token::Close => 1,
            }
        })
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut left = self.and()?;
        while self.is_word("or") {
            self.next += 1;
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut left = self.unary()?;
        while self.is_word("and") {
            self.next += 1;
            left = Condition::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, String> {
        if let Some((column, Token::Open)) = self.peek()
            && self.depth == MAX_NESTING
        {
            return Err(format!(
                "more than {MAX_NESTING} nested parentheses and nots at column {column}; split the condition"
            ));
        }
        if self.is_word("not") && self.depth == MAX_NESTING {
            let column = self.peek().map_or(1, |(c, _)| c);
            return Err(format!(
                "more than {MAX_NESTING} nested parentheses and nots at column {column}; split the condition"
            ));
        }
        self.depth += 1;
        let unary = self.unary_inner();
        self.depth -= 1;
        unary
    }

    fn unary_inner(&mut self) -> Result<Condition, String> {
        match self.peek() {
            Some((_, Token::Word(w))) if w == "not" => {
                self.next += 1;
                Ok(Condition::Not(Box::new(self.unary()?)))
            }
            Some((column, Token::Open)) => {
                self.next += 1;
                let inner = self.or()?;
                match self.peek() {
                    Some((_, Token::Close)) => {
                        self.next += 1;
                        Ok(inner)
                    }
                    Some((at, token)) => Err(format!(
                        "expected \")\" at column {at} to close \"(\" of column {column}, found {}",
                        token.describe()
                    )),
                    None => Err(format!(
                        "missing \")\" at column {} to close \"(\" of column {column}",
                        self.end_column()
                    )),
                }
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Condition, String> {
        let (column, left) = self.operand()?;
        let op = match self.peek() {
            Some((_, Token::Word(w))) if w == "exists" => {
                self.next += 1;
                return match left {
                    Operand::Value(t) if t.may_be_absent() => Ok(Condition::Exists(t)),
                    _ => Err(format!(
                        "\"exists\" needs {{header:NAME}}, {{query:NAME}} or {{claim:NAME}} before it, not the operand at column {column}"
                    )),
                };
            }
            Some((at, Token::Word(w))) => match w.as_str() {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                "starts-with" => Op::StartsWith,
                "ends-with" => Op::EndsWith,
                "contains" => Op::Contains,
                other => {
                    return Err(format!(
                        "unknown operator \"{other}\" at column {at}; {OPERATORS}"
                    ));
                }
            },
            Some((at, token)) => {
                return Err(format!(
                    "expected an operator at column {at}, found {}; {OPERATORS}",
                    token.describe()
                ));
            }
            None => {
                return Err(format!(
                    "missing operator at column {}; {OPERATORS}",
                    self.end_column()
                ));
            }
        };
        self.next += 1;
        let (_, right) = self.operand()?;
        Ok(Condition::Compare(left, op, right))
    }

    fn operand(&mut self) -> Result<(usize, Operand), String> {
        let Some((column, token)) = self.peek() else {
            return Err(format!(
                "missing operand at column {}; use a placeholder such as {{header:NAME}} or a quoted literal",
                self.end_column()
            ));
        };
        let operand = match token {
            Token::Literal(l) => Operand::Literal(l.clone()),
            Token::Placeholder(p) => {
                let template = KeyTemplate::parse(&format!("{{{p}}}"))
                    .map_err(|e| format!("{e} (column {column})"))?;
                Operand::Value(template)
            }
            other => {
                return Err(format!(
                    "expected an operand at column {column}, found {}; use a placeholder such as {{header:NAME}} or a quoted literal",
                    other.describe()
                ));
            }
        };
        self.next += 1;
        Ok((column, operand))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(condition: &str) -> String {
        Condition::parse(condition).expect_err(condition)
    }

    #[test]
    fn errors_name_the_problem_and_column() {
        let e = error("{header:x} = 'a'");
        assert_eq!(
            e,
            "unknown operator \"=\" at column 12; use ==, !=, starts-with, ends-with, contains or exists"
        );
        assert!(error("{header:x}").starts_with("missing operator at column 11"));
        assert!(error("{header:x} ==").starts_with("missing operand at column 14"));
        assert!(
            error("({header:x} == 'a'")
                .starts_with("missing \")\" at column 19 to close \"(\" of column 1")
        );
        assert!(error("'a' == 'b' 'c'").starts_with("unexpected literal 'c' at column 12"));
        assert!(error("'a' exists").contains("not the operand at column 1"));
        assert!(error("'a' == 'a' or {client_ip} exists").contains("at column 15"));
        assert!(error("{heder:x} == 'a'").contains("unknown placeholder \"{heder:x}\""));
        assert!(error("{header:x == 'a'").contains("column 1 has no closing"));
        assert!(error("'abc").contains("column 1 has no closing '"));
        assert!(error("== 'a'").starts_with("expected an operand at column 1"));
        assert!(error("'a' == 'a' and").starts_with("missing operand at column 15"));
        assert!(error("").starts_with("missing operand at column 1"));
    }

    /// Found by the `condition` fuzz target: a `}` where a word would
    /// start lexed forever (an empty word each time) until memory ran out.
    #[test]
    fn a_stray_closing_brace_is_refused() {
        for text in [
            "}",
            "?header:x-tier} == 'gold'",
            "{header:x} == 'a' }",
            "({query:debug} exist' and not {client_ip} starts-(ith '05.')",
        ] {
            let e = error(text);
            assert!(!e.is_empty(), "{text}");
        }
        assert_eq!(error("a}"), "\"}\" at column 2 has no opening \"{\"");
    }

    /// Nesting is bounded (the parser recurses per level): deep input is
    /// refused with a message, not a stack overflow.
    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize| format!("{}'a' == 'a'{}", "(".repeat(n), ")".repeat(n));
        assert!(Condition::parse(&nested(MAX_NESTING)).is_ok());
        assert!(error(&nested(MAX_NESTING + 1)).starts_with("more than 64 nested"));
        assert!(error(&nested(100_000)).starts_with("more than 64 nested"));
        let nots = |n: usize| format!("{}'a' == 'a'", "not ".repeat(n));
        assert!(Condition::parse(&nots(MAX_NESTING)).is_ok());
        assert!(error(&nots(MAX_NESTING + 1)).contains("nested parentheses and nots"));
        assert!(error(&nots(100_000)).contains("nested parentheses and nots"));
    }
}
