//! A hand-written Pratt parser over the lexer's tokens. Precedence, from
//! loosest: `?:`, `??`, `||`, `&&`, `==` `!=`, `<` `>` `<=` `>=`, `+` `-`,
//! `*` `/` `%`, unary `!` `-` and casts, then member access, calls and
//! indexers — as in C#.

use crate::{
    ast::{Arg, ArgValue, BinOp, Expr, ExprKind, Source, Span, Stmt, TypeName, UnOp},
    error::LoadError,
    interpolate,
    lexer::{Lines, Tok, tokens, unescape},
};

/// How deep a tree may nest: deeper is refused. Counted on the tree, so
/// that printing it (which adds parentheses) and parsing the print gives
/// the same verdict.
pub const MAX_DEPTH: u32 = 64;

/// How deep the parser may recurse, whatever the text: never a stack
/// overflow. A printed tree of `MAX_DEPTH` needs at most three levels per
/// node.
const MAX_RECURSION: u32 = 4 * MAX_DEPTH;

/// Parses a whole policy expression, `@(...)` or `@{...}`, that starts at
/// `line`/`column` of its document.
pub fn parse_at(text: &str, line: u32, column: u32) -> Result<Source, LoadError> {
    let start = Span::new(line, column);
    let trimmed = text.trim();
    let lead = text.len() - text.trim_start().len();
    let (inner, block) = if let Some(rest) = trimmed.strip_prefix("@(") {
        match rest.strip_suffix(')') {
            Some(inner) => (inner, false),
            None => return Err(unclosed(start, trimmed, ")")),
        }
    } else if let Some(rest) = trimmed.strip_prefix("@{") {
        match rest.strip_suffix('}') {
            Some(inner) => (inner, true),
            None => return Err(unclosed(start, trimmed, "}")),
        }
    } else {
        return Err(LoadError::new(
            start,
            trimmed,
            "not a policy expression",
            "write @(expression) or @{ statements; return value; }",
        ));
    };
    // Where the inner text starts: after the leading space and the `@(`.
    let before = &text[..lead + 2];
    let nl = before.matches('\n').count() as u32;
    let base = if nl == 0 {
        (line, column + before.chars().count() as u32)
    } else {
        let last = before.rsplit('\n').next().unwrap_or("");
        (line + nl, last.chars().count() as u32 + 1)
    };
    let toks = tokens(inner, base)?;
    let end = toks.last().map_or(Span::new(base.0, base.1), |t| t.1);
    let mut p = Parser {
        toks,
        pos: 0,
        end,
        depth: 0,
    };
    let source = if block {
        let mut stmts = Vec::new();
        while p.peek().is_some() {
            p.stmt_into(&mut stmts)?;
        }
        Source::Block(stmts)
    } else {
        if p.peek().is_none() {
            return Err(LoadError::new(
                start,
                trimmed,
                "empty expression",
                "write a value inside @( )",
            ));
        }
        let e = p.expr()?;
        if let Some((_, span)) = p.toks.get(p.pos) {
            return Err(LoadError::new(
                *span,
                &p.describe(),
                "unexpected text after the expression",
                "an @( ) holds one expression; use @{ ...; return value; } for statements",
            ));
        }
        Source::Expr(e)
    };
    let depth = match &source {
        Source::Expr(e) => expr_depth(e),
        Source::Block(stmts) => stmts_depth(stmts),
    };
    if depth > MAX_DEPTH {
        return Err(too_deep(start, trimmed));
    }
    Ok(source)
}

fn too_deep(span: Span, text: &str) -> LoadError {
    LoadError::new(
        span,
        text,
        format!("the expression nests deeper than {MAX_DEPTH} levels"),
        "split it into statements with `var` in an @{ } block",
    )
}

/// Nesting of a tree: one level per node.
fn expr_depth(e: &Expr) -> u32 {
    1 + match &e.kind {
        ExprKind::Member { recv, .. } => expr_depth(recv),
        ExprKind::Call { callee, args } => {
            let args = args.iter().map(|a| match &a.value {
                ArgValue::Expr(x) => expr_depth(x),
                _ => 0,
            });
            args.fold(expr_depth(callee), u32::max)
        }
        ExprKind::Index { recv, index } => expr_depth(recv).max(expr_depth(index)),
        ExprKind::Unary(_, x) | ExprKind::Cast(_, x) => expr_depth(x),
        ExprKind::Lambda { body, .. } => expr_depth(body),
        ExprKind::New { args, .. } => args
            .iter()
            .map(|a| match &a.value {
                ArgValue::Expr(x) => expr_depth(x),
                _ => 0,
            })
            .max()
            .unwrap_or(0),
        ExprKind::NewArray { items, .. } => items.iter().map(expr_depth).max().unwrap_or(0),
        ExprKind::Binary(_, a, b) => expr_depth(a).max(expr_depth(b)),
        ExprKind::Cond(a, b, c) => expr_depth(a).max(expr_depth(b)).max(expr_depth(c)),
        _ => 0,
    }
}

fn stmts_depth(stmts: &[Stmt]) -> u32 {
    stmts
        .iter()
        .map(|s| match s {
            Stmt::Decl { init, .. } => init.as_ref().map_or(1, |e| 1 + expr_depth(e)),
            Stmt::Assign { value: e, .. } | Stmt::Expr(e) | Stmt::Return(e, _) => 1 + expr_depth(e),
            Stmt::SetIndex { target, value, .. } => 1 + expr_depth(target).max(expr_depth(value)),
            Stmt::If {
                cond,
                then,
                otherwise,
                ..
            } => {
                let o = otherwise.as_deref().map_or(0, stmts_depth);
                1 + expr_depth(cond).max(stmts_depth(then)).max(o)
            }
            Stmt::Try { body, handler, .. } => 1 + stmts_depth(body).max(stmts_depth(handler)),
            Stmt::Foreach { source, body, .. } => 1 + expr_depth(source).max(stmts_depth(body)),
        })
        .max()
        .unwrap_or(0)
}

/// Parses at line 1, column 1.
pub fn parse(text: &str) -> Result<Source, LoadError> {
    parse_at(text, 1, 1)
}

fn unclosed(span: Span, text: &str, close: &str) -> LoadError {
    LoadError::new(
        span,
        text,
        format!("the policy expression is not closed by `{close}`"),
        format!("end it with `{close}`"),
    )
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    end: Span,
    depth: u32,
}

type R<T> = Result<T, LoadError>;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.0)
    }

    fn span(&self) -> Span {
        self.toks.get(self.pos).map_or(self.end, |t| t.1)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn is_ident(&self, n: usize, word: &str) -> bool {
        matches!(self.peek_at(n), Some(Tok::Ident(w)) if w == word)
    }

    /// The current token as written, for messages.
    fn describe(&self) -> String {
        match self.peek() {
            None => "end of expression".into(),
            Some(t) => describe(t),
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> R<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(LoadError::new(
                self.span(),
                &self.describe(),
                format!("expected {what}"),
                format!("write {what} here"),
            ))
        }
    }

    fn ident(&mut self, what: &str) -> R<String> {
        match self.peek() {
            Some(Tok::Ident(name)) => {
                let name = name.clone();
                self.pos += 1;
                Ok(name)
            }
            _ => Err(LoadError::new(
                self.span(),
                &self.describe(),
                format!("expected {what}"),
                format!("write {what} here"),
            )),
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_RECURSION {
            return Err(too_deep(self.span(), &self.describe()));
        }
        Ok(())
    }

    // ---- statements ----

    fn block_or_stmt(&mut self) -> R<Vec<Stmt>> {
        let mut out = Vec::new();
        self.stmt_into(&mut out)?;
        Ok(out)
    }

    /// One statement; a `{ }` block's statements are added flat.
    fn stmt_into(&mut self, out: &mut Vec<Stmt>) -> R<()> {
        self.enter()?;
        let span = self.span();
        match self.peek() {
            Some(Tok::LBrace) => {
                self.pos += 1;
                while !self.eat(&Tok::RBrace) {
                    if self.peek().is_none() {
                        return Err(LoadError::new(
                            span,
                            "{",
                            "the block is not closed",
                            "add `}`",
                        ));
                    }
                    self.stmt_into(out)?;
                }
            }
            Some(Tok::Semi) => {
                self.pos += 1;
            }
            Some(Tok::Ident(word)) => {
                let word = word.clone();
                match word.as_str() {
                    "if" => {
                        self.pos += 1;
                        self.expect(&Tok::LParen, "`(`")?;
                        let cond = self.expr()?;
                        self.expect(&Tok::RParen, "`)`")?;
                        let then = self.block_or_stmt()?;
                        let otherwise = if self.is_ident(0, "else") {
                            self.pos += 1;
                            Some(self.block_or_stmt()?)
                        } else {
                            None
                        };
                        out.push(Stmt::If {
                            cond,
                            then,
                            otherwise,
                            span,
                        });
                    }
                    "return" => {
                        self.pos += 1;
                        let e = self.expr()?;
                        self.expect(&Tok::Semi, "`;`")?;
                        out.push(Stmt::Return(e, span));
                    }
                    "var" if matches!(self.peek_at(1), Some(Tok::Ident(_))) => {
                        self.pos += 1;
                        out.push(self.decl(None, span)?);
                    }
                    "try" => {
                        self.pos += 1;
                        let body = self.braced("try")?;
                        if !self.is_ident(0, "catch") {
                            return Err(LoadError::new(
                                self.span(),
                                &self.describe(),
                                "`try` needs its `catch`",
                                "write `catch (Exception e) { ... }`; `finally` is outside the supported surface",
                            ));
                        }
                        self.pos += 1;
                        let mut name = None;
                        if self.eat(&Tok::LParen) {
                            let ty = self.ident("an exception type")?;
                            if !ty.ends_with("Exception") {
                                return Err(LoadError::new(
                                    span,
                                    &ty,
                                    format!("`catch ({ty})` is not an exception type"),
                                    "write `catch (Exception e)`",
                                ));
                            }
                            if !self.eat(&Tok::RParen) {
                                name = Some(self.ident("the exception's name")?);
                                self.expect(&Tok::RParen, "`)`")?;
                            }
                        }
                        let handler = self.braced("catch")?;
                        if self.is_ident(0, "finally") || self.is_ident(0, "catch") {
                            return Err(LoadError::new(
                                self.span(),
                                &self.describe(),
                                "only one `catch` and no `finally` are supported",
                                "catch every failure in one `catch (Exception e)`",
                            ));
                        }
                        out.push(Stmt::Try {
                            body,
                            name,
                            handler,
                            span,
                        });
                    }
                    "foreach" => {
                        self.pos += 1;
                        self.expect(&Tok::LParen, "`(`")?;
                        let ty = self.var_or_type(
                            "expected the loop variable's type",
                            "write `foreach (var x in items)`",
                        )?;
                        let name = self.ident("the loop variable")?;
                        if !self.is_ident(0, "in") {
                            return Err(LoadError::new(
                                self.span(),
                                &self.describe(),
                                "expected `in`",
                                "write `foreach (var x in items)`",
                            ));
                        }
                        self.pos += 1;
                        let source = self.expr()?;
                        self.expect(&Tok::RParen, "`)`")?;
                        let body = self.block_or_stmt()?;
                        out.push(Stmt::Foreach {
                            ty,
                            name,
                            source,
                            body,
                            span,
                        });
                    }
                    // `using (var h = ...) { }`: the variable, then the body
                    // (nothing here needs disposing).
                    "using" if self.peek_at(1) == Some(&Tok::LParen) => {
                        self.pos += 2;
                        let ty = self.var_or_type(
                            "expected a declaration",
                            "write using (var name = value) { ... }",
                        )?;
                        let name = self.ident("a variable name")?;
                        self.expect(&Tok::Assign, "`=`")?;
                        let init = self.expr()?;
                        self.expect(&Tok::RParen, "`)`")?;
                        out.push(Stmt::Decl {
                            ty,
                            name,
                            init: Some(init),
                            span,
                        });
                        self.stmt_into(out)?;
                    }
                    "for" | "while" | "do" | "switch" | "throw" | "goto" | "break" | "continue"
                    | "using" => {
                        return Err(LoadError::new(
                            span,
                            &word,
                            format!("`{word}` statements are outside the supported surface"),
                            "use if/else, foreach, try/catch, return and LINQ (Where, Select, Any, All, First, Count) instead",
                        ));
                    }
                    _ => {
                        if let Some(ty) = self.decl_type() {
                            out.push(self.decl(Some(ty), span)?);
                        } else if let Some(Tok::CompoundAssign(op) | Tok::Step(op)) =
                            self.peek_at(1).cloned()
                        {
                            // `x += e;` and `x++;` are `x = x + e;`, `x = x + 1;`.
                            let step = matches!(self.peek_at(1), Some(Tok::Step(_)));
                            self.pos += 2;
                            let name_span = span;
                            let rhs = if step {
                                Expr {
                                    kind: ExprKind::Int(1),
                                    span: name_span,
                                }
                            } else {
                                self.expr()?
                            };
                            self.expect(&Tok::Semi, "`;`")?;
                            let value = Expr {
                                kind: ExprKind::Binary(
                                    op,
                                    Box::new(Expr {
                                        kind: ExprKind::Name(word.clone()),
                                        span: name_span,
                                    }),
                                    Box::new(rhs),
                                ),
                                span: name_span,
                            };
                            out.push(Stmt::Assign {
                                name: word,
                                value,
                                span,
                            });
                        } else if matches!(self.peek_at(1), Some(Tok::Assign)) {
                            self.pos += 2;
                            let value = self.expr()?;
                            self.expect(&Tok::Semi, "`;`")?;
                            out.push(Stmt::Assign {
                                name: word,
                                value,
                                span,
                            });
                        } else {
                            out.push(self.expr_stmt(span)?);
                        }
                    }
                }
            }
            _ => out.push(self.expr_stmt(span)?),
        }
        self.depth -= 1;
        Ok(())
    }

    /// A call as a statement, or an assignment to an indexer: `x["a"] = e;`.
    fn expr_stmt(&mut self, span: Span) -> R<Stmt> {
        let e = self.expr()?;
        let stmt = if self.eat(&Tok::Assign) {
            let value = self.expr()?;
            Stmt::SetIndex {
                target: e,
                value,
                span,
            }
        } else {
            Stmt::Expr(e)
        };
        self.expect(&Tok::Semi, "`;`")?;
        Ok(stmt)
    }

    /// A `{ }` block after `what`.
    fn braced(&mut self, what: &str) -> R<Vec<Stmt>> {
        if !matches!(self.peek(), Some(Tok::LBrace)) {
            return Err(LoadError::new(
                self.span(),
                &self.describe(),
                format!("`{what}` needs a block"),
                format!("write `{what} {{ ... }}`"),
            ));
        }
        self.block_or_stmt()
    }

    /// `T name` or `T[] name` at the cursor: consumes the type.
    /// `var` (`None`) or a type before a variable's name; else the
    /// refusal with `problem` and `hint`.
    fn var_or_type(&mut self, problem: &str, hint: &str) -> R<Option<TypeName>> {
        if self.is_ident(0, "var") {
            self.pos += 1;
            return Ok(None);
        }
        match self.decl_type() {
            Some(ty) => Ok(Some(ty)),
            None => Err(LoadError::new(self.span(), &self.describe(), problem, hint)),
        }
    }

    fn decl_type(&mut self) -> Option<TypeName> {
        let start = self.pos;
        self.skip_namespaces();
        let found = self.type_here();
        if found.is_none() {
            self.pos = start;
        }
        found
    }

    /// A type name (with `[]`) before a variable's name, at the cursor.
    fn type_here(&mut self) -> Option<TypeName> {
        let Some(Tok::Ident(word)) = self.peek() else {
            return None;
        };
        let array = matches!(
            (self.peek_at(1), self.peek_at(2), self.peek_at(3)),
            (
                Some(Tok::LBracket),
                Some(Tok::RBracket),
                Some(Tok::Ident(_))
            )
        );
        if word == "byte" && array {
            self.pos += 3;
            return Some(TypeName::Bytes);
        }
        let ty = TypeName::from_ident(word)?;
        match self.peek_at(1) {
            Some(Tok::Ident(_)) => {
                self.pos += 1;
                Some(ty)
            }
            _ if array => {
                self.pos += 3;
                Some(TypeName::Array(Box::new(ty)))
            }
            _ => None,
        }
    }

    /// Past `System.Security.Cryptography.` and the like before a type.
    fn skip_namespaces(&mut self) {
        while let (Some(Tok::Ident(word)), Some(Tok::Dot)) = (self.peek(), self.peek_at(1)) {
            if !crate::builtins::is_namespace(word) {
                break;
            }
            self.pos += 2;
        }
    }

    fn decl(&mut self, ty: Option<TypeName>, span: Span) -> R<Stmt> {
        let name = self.ident("a variable name")?;
        let init = if self.eat(&Tok::Assign) {
            match &ty {
                // `string[] a = { "x", "y" };` is `new string[] { ... }`.
                Some(TypeName::Array(elem)) if self.peek() == Some(&Tok::LBrace) => {
                    let at = self.span();
                    self.pos += 1;
                    let items = self.array_items()?;
                    Some(Expr {
                        kind: ExprKind::NewArray {
                            elem: Some((**elem).clone()),
                            items,
                        },
                        span: at,
                    })
                }
                _ => Some(self.expr()?),
            }
        } else if ty.is_none() {
            return Err(LoadError::new(
                span,
                &format!("var {name}"),
                "`var` needs an initial value",
                format!("write `var {name} = value;` or declare its type: `string {name};`"),
            ));
        } else {
            None
        };
        self.expect(&Tok::Semi, "`;`")?;
        Ok(Stmt::Decl {
            ty,
            name,
            init,
            span,
        })
    }

    // ---- expressions ----

    pub fn expr(&mut self) -> R<Expr> {
        self.enter()?;
        let span = self.span();
        // `x => body` and `(x) => body`
        let lambda = match (
            self.peek(),
            self.peek_at(1),
            self.peek_at(2),
            self.peek_at(3),
        ) {
            (Some(Tok::Ident(p)), Some(Tok::Arrow), _, _) => Some((p.clone(), 2)),
            (Some(Tok::LParen), Some(Tok::Ident(p)), Some(Tok::RParen), Some(Tok::Arrow)) => {
                Some((p.clone(), 4))
            }
            _ => None,
        };
        let e = if let Some((param, skip)) = lambda {
            self.pos += skip;
            let body = self.expr()?;
            Expr {
                kind: ExprKind::Lambda {
                    param,
                    body: Box::new(body),
                },
                span,
            }
        } else {
            let cond = self.binary(0)?;
            if self.eat(&Tok::Question) {
                let then = self.expr()?;
                self.expect(&Tok::Colon, "`:` of the conditional")?;
                let otherwise = self.expr()?;
                Expr {
                    kind: ExprKind::Cond(Box::new(cond), Box::new(then), Box::new(otherwise)),
                    span,
                }
            } else {
                cond
            }
        };
        self.depth -= 1;
        Ok(e)
    }

    fn binary(&mut self, min: u8) -> R<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let Some((op, l, r)) = self.peek().and_then(binop) else {
                if let Some(Tok::Unsupported) = self.peek() {
                    return Err(unsupported_op(self));
                }
                if let Some(Tok::CompoundAssign(_) | Tok::Step(_)) = self.peek() {
                    return Err(LoadError::new(
                        self.span(),
                        &self.describe(),
                        format!(
                            "`{}` updates a variable only as a statement",
                            self.describe()
                        ),
                        "write it on its own: `x += 1;` or `x++;`",
                    ));
                }
                break;
            };
            if l < min {
                break;
            }
            let span = lhs.span;
            self.pos += 1;
            let rhs = self.binary(r)?;
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> R<Expr> {
        self.enter()?;
        let span = self.span();
        let e = match self.peek() {
            Some(Tok::Bang) => {
                self.pos += 1;
                let e = self.unary()?;
                Expr {
                    kind: ExprKind::Unary(UnOp::Not, Box::new(e)),
                    span,
                }
            }
            Some(Tok::Minus) => {
                self.pos += 1;
                let e = self.unary()?;
                Expr {
                    kind: ExprKind::Unary(UnOp::Neg, Box::new(e)),
                    span,
                }
            }
            Some(Tok::Plus) => {
                self.pos += 1;
                self.unary()?
            }
            Some(Tok::LParen) if self.cast_ahead().is_some() => {
                let (ty, skip) = self.cast_ahead().expect("checked");
                self.pos += skip;
                let e = self.unary()?;
                Expr {
                    kind: ExprKind::Cast(ty, Box::new(e)),
                    span,
                }
            }
            Some(Tok::Unsupported) => return Err(unsupported_op(self)),
            _ => self.postfix()?,
        };
        self.depth -= 1;
        Ok(e)
    }

    /// `(T)` or `(T[])` followed by something a cast applies to.
    fn cast_ahead(&self) -> Option<(TypeName, usize)> {
        let Some(Tok::Ident(word)) = self.peek_at(1) else {
            return None;
        };
        let ty = TypeName::from_ident(word)?;
        let (ty, skip) = match (self.peek_at(2), self.peek_at(3), self.peek_at(4)) {
            (Some(Tok::RParen), _, _) => (ty, 3),
            (Some(Tok::LBracket), Some(Tok::RBracket), Some(Tok::RParen)) => {
                (TypeName::Array(Box::new(ty)), 5)
            }
            _ => return None,
        };
        match self.peek_at(skip) {
            Some(
                Tok::Ident(_)
                | Tok::LParen
                | Tok::Integer(_)
                | Tok::Double(_)
                | Tok::Str(_)
                | Tok::Verbatim(_)
                | Tok::Char(_)
                | Tok::Bang
                | Tok::Minus,
            ) => Some((ty, skip)),
            _ => None,
        }
    }

    fn postfix(&mut self) -> R<Expr> {
        let mut e = self.primary()?;
        // A member access, call or index is located where its chain starts.
        let span = e.span;
        loop {
            match self.peek() {
                Some(Tok::Dot) | Some(Tok::QDot) => {
                    let null_safe = self.peek() == Some(&Tok::QDot);
                    self.pos += 1;
                    let name = self.ident("a member name")?;
                    let type_args = self.type_args();
                    e = Expr {
                        kind: ExprKind::Member {
                            recv: Box::new(e),
                            name,
                            type_args,
                            null_safe,
                        },
                        span,
                    };
                }
                Some(Tok::LParen) => {
                    self.pos += 1;
                    let args = self.args()?;
                    e = Expr {
                        kind: ExprKind::Call {
                            callee: Box::new(e),
                            args,
                        },
                        span,
                    };
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    let index = self.expr()?;
                    self.expect(&Tok::RBracket, "`]`")?;
                    e = Expr {
                        kind: ExprKind::Index {
                            recv: Box::new(e),
                            index: Box::new(index),
                        },
                        span,
                    };
                }
                _ => return Ok(e),
            }
        }
    }

    /// `<T, ...>` right before `(`; anything else is left alone (it is a
    /// comparison).
    fn type_args(&mut self) -> Vec<TypeName> {
        let save = self.pos;
        if !self.eat(&Tok::Lt) {
            return Vec::new();
        }
        let mut out = Vec::new();
        while let Some(Tok::Ident(word)) = self.peek() {
            let Some(mut ty) = TypeName::from_ident(word) else {
                break;
            };
            self.pos += 1;
            if self.peek() == Some(&Tok::LBracket) && self.peek_at(1) == Some(&Tok::RBracket) {
                self.pos += 2;
                ty = TypeName::Array(Box::new(ty));
            }
            out.push(ty);
            if self.eat(&Tok::Gt) && self.peek() == Some(&Tok::LParen) {
                return out;
            }
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.pos = save;
        Vec::new()
    }

    fn args(&mut self) -> R<Vec<Arg>> {
        let mut out = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(out);
        }
        loop {
            let name = match (self.peek(), self.peek_at(1)) {
                (Some(Tok::Ident(n)), Some(Tok::Colon)) => {
                    let n = n.clone();
                    self.pos += 2;
                    Some(n)
                }
                _ => None,
            };
            let value = if self.is_ident(0, "out") {
                let span = self.span();
                self.pos += 1;
                if self.is_ident(0, "var") && matches!(self.peek_at(1), Some(Tok::Ident(_))) {
                    self.pos += 1;
                    ArgValue::OutDecl(None, self.ident("a variable name")?, span)
                } else if let Some(ty) = self.decl_type() {
                    ArgValue::OutDecl(Some(ty), self.ident("a variable name")?, span)
                } else {
                    ArgValue::Out(self.ident("a variable name")?, span)
                }
            } else {
                ArgValue::Expr(self.expr()?)
            };
            out.push(Arg { name, value });
            if self.eat(&Tok::RParen) {
                return Ok(out);
            }
            self.expect(&Tok::Comma, "`,` or `)`")?;
        }
    }

    fn primary(&mut self) -> R<Expr> {
        let span = self.span();
        let Some(tok) = self.bump() else {
            return Err(LoadError::new(
                span,
                "end of expression",
                "the expression ends too early",
                "complete it",
            ));
        };
        let kind = match tok {
            Tok::Integer(text) => integer(&text, span)?,
            Tok::Double(text) => {
                let digits = text.trim_end_matches(['d', 'D']);
                match digits.parse::<f64>() {
                    Ok(v) if v.is_finite() => ExprKind::Double(v),
                    _ => {
                        return Err(LoadError::new(
                            span,
                            &text,
                            "the number is out of range",
                            "write a smaller number",
                        ));
                    }
                }
            }
            Tok::Str(Some(s)) | Tok::Verbatim(s) => ExprKind::Str(s),
            Tok::Char(Some(c)) => ExprKind::Char(c),
            Tok::Ident(word) => match word.as_str() {
                "true" => ExprKind::Bool(true),
                "false" => ExprKind::Bool(false),
                "null" => ExprKind::Null,
                "new" => self.new_expr(span)?,
                _ => ExprKind::Name(word),
            },
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(&Tok::RParen, "`)`")?;
                return Ok(e);
            }
            Tok::Interpolated((raw, verbatim)) => self.interpolated(&raw, verbatim, span)?,
            other => {
                self.pos -= 1;
                return Err(LoadError::new(
                    span,
                    &describe(&other),
                    "expected a value",
                    "write a literal, `context...`, a variable or a call here",
                ));
            }
        };
        Ok(Expr { kind, span })
    }
}

impl Parser {
    /// `$"a{x}b{y:F2}"` as `string.Format("a{0}b{1:F2}", x, y)`; without
    /// holes, the text.
    fn interpolated(&mut self, raw: &str, verbatim: bool, span: Span) -> R<ExprKind> {
        let bad =
            |problem: &str, hint: &str| LoadError::new(span, &format!("$\"{raw}\""), problem, hint);
        let parts =
            interpolate::parts(raw).map_err(|p| bad(p, "write `{{` and `}}` for braces"))?;
        let decode = |text: &str| {
            if verbatim {
                Some(text.replace("\"\"", "\""))
            } else {
                unescape(text)
            }
        };
        // Where the text starts: after `$"`, or `$@"`.
        let base = (span.line, span.column + if verbatim { 3 } else { 2 });
        let lines = Lines::new(raw);
        let (mut format, mut args) = (String::new(), Vec::new());
        for part in parts {
            match part {
                interpolate::Part::Text(text) => {
                    format.push_str(&decode(text).ok_or_else(|| {
                        bad(
                            "unknown escape sequence",
                            "use \\n, \\r, \\t, \\\\, \\\", \\' or \\uXXXX",
                        )
                    })?);
                }
                interpolate::Part::Hole { expr, at, spec } => {
                    let at = lines.span(raw, at).offset(base);
                    let toks = tokens(expr, (at.line, at.column))?;
                    let end = toks.last().map_or(at, |t| t.1);
                    let mut inner = Parser {
                        toks,
                        pos: 0,
                        end,
                        depth: self.depth,
                    };
                    let e = inner.expr().map_err(|e| {
                        if spec.starts_with(':') && expr.contains('?') {
                            bad(
                                "a `:` in a hole starts its format",
                                "write a conditional in a hole in parentheses: {(a ? b : c)}",
                            )
                        } else {
                            e
                        }
                    })?;
                    if let Some((_, span)) = inner.toks.get(inner.pos) {
                        return Err(LoadError::new(
                            *span,
                            &inner.describe(),
                            "unexpected text in an interpolation hole",
                            "write a conditional in a hole in parentheses: {(a ? b : c)}",
                        ));
                    }
                    format.push_str(&format!("{{{}{spec}}}", args.len()));
                    args.push(Arg {
                        name: None,
                        value: ArgValue::Expr(e),
                    });
                }
            }
        }
        if args.is_empty() {
            return Ok(ExprKind::Str(format.replace("{{", "{").replace("}}", "}")));
        }
        let text = Expr {
            kind: ExprKind::Str(format),
            span,
        };
        args.insert(
            0,
            Arg {
                name: None,
                value: ArgValue::Expr(text),
            },
        );
        let string = Expr {
            kind: ExprKind::Name("string".into()),
            span,
        };
        let callee = Expr {
            kind: ExprKind::Member {
                recv: Box::new(string),
                name: "Format".into(),
                type_args: Vec::new(),
                null_safe: false,
            },
            span,
        };
        Ok(ExprKind::Call {
            callee: Box::new(callee),
            args,
        })
    }

    /// After `new`: `JObject(...)`, `JProperty(...)`, `JArray(...)`,
    /// `T[] { ... }` or `[] { ... }`.
    fn new_expr(&mut self, span: Span) -> R<ExprKind> {
        let refuse = |what: &str| {
            LoadError::new(
                span,
                &format!("new {what}"),
                "`new` makes only JObject, JProperty, JArray, Random, HMACs and arrays (`new string[] { ... }`) in the supported surface",
                "build JSON with new JObject(new JProperty(\"name\", value)) or JObject.Parse(\"...\") and text with String.Concat or string.Format",
            )
        };
        self.skip_namespaces();
        let elem = match self.peek() {
            Some(Tok::LBracket) => None,
            Some(Tok::Ident(word)) => {
                let word = word.clone();
                self.pos += 1;
                if matches!(word.as_str(), "JObject" | "JProperty" | "JArray" | "Random")
                    && self.eat(&Tok::LParen)
                {
                    let args = self.args()?;
                    return Ok(ExprKind::New { class: word, args });
                }
                if crate::ast::HashKind::from_ident(&word).is_some() {
                    return self.new_hash(word, span);
                }
                match TypeName::from_ident(&word) {
                    Some(t) if self.peek() == Some(&Tok::LBracket) => Some(t),
                    _ => return Err(refuse(&word)),
                }
            }
            _ => return Err(refuse("")),
        };
        self.expect(&Tok::LBracket, "`[`")?;
        self.expect(&Tok::RBracket, "`]`")?;
        self.expect(&Tok::LBrace, "`{`")?;
        let items = self.array_items()?;
        Ok(ExprKind::NewArray { elem, items })
    }

    /// `new HMACSHA256(key)` or `new HMACSHA256 { Key = key }` (one
    /// argument either way).
    fn new_hash(&mut self, class: String, span: Span) -> R<ExprKind> {
        if self.eat(&Tok::LParen) {
            let args = self.args()?;
            return Ok(ExprKind::New { class, args });
        }
        if self.eat(&Tok::LBrace)
            && self.is_ident(0, "Key")
            && self.peek_at(1) == Some(&Tok::Assign)
        {
            self.pos += 2;
            let key = self.expr()?;
            self.eat(&Tok::Comma);
            self.expect(&Tok::RBrace, "`}`")?;
            let args = vec![Arg {
                name: None,
                value: ArgValue::Expr(key),
            }];
            return Ok(ExprKind::New { class, args });
        }
        Err(LoadError::new(
            span,
            &format!("new {class}"),
            "expected the key",
            format!("write new {class}(keyBytes)"),
        ))
    }

    /// An array's items after its `{`, through the `}`.
    fn array_items(&mut self) -> R<Vec<Expr>> {
        let mut items = Vec::new();
        while !self.eat(&Tok::RBrace) {
            items.push(self.expr()?);
            if !self.eat(&Tok::Comma) {
                self.expect(&Tok::RBrace, "`,` or `}`")?;
                break;
            }
        }
        Ok(items)
    }
}

fn integer(text: &str, span: Span) -> R<ExprKind> {
    let (digits, long) = match text.strip_suffix(['l', 'L']) {
        Some(d) => (d, true),
        None => (text, false),
    };
    let Ok(v) = digits.parse::<i64>() else {
        return Err(LoadError::new(
            span,
            text,
            "the number is out of range of long",
            "write a smaller number",
        ));
    };
    Ok(match i32::try_from(v) {
        Ok(i) if !long => ExprKind::Int(i),
        _ => ExprKind::Long(v),
    })
}

/// Operator, left and right binding power.
fn binop(tok: &Tok) -> Option<(BinOp, u8, u8)> {
    Some(match tok {
        // Right-associative.
        Tok::Coalesce => (BinOp::Coalesce, 2, 2),
        Tok::OrOr => (BinOp::Or, 3, 4),
        Tok::AndAnd => (BinOp::And, 5, 6),
        Tok::EqEq => (BinOp::Eq, 7, 8),
        Tok::NotEq => (BinOp::Ne, 7, 8),
        Tok::Lt => (BinOp::Lt, 9, 10),
        Tok::Le => (BinOp::Le, 9, 10),
        Tok::Gt => (BinOp::Gt, 9, 10),
        Tok::Ge => (BinOp::Ge, 9, 10),
        Tok::Plus => (BinOp::Add, 11, 12),
        Tok::Minus => (BinOp::Sub, 11, 12),
        Tok::Star => (BinOp::Mul, 13, 14),
        Tok::Slash => (BinOp::Div, 13, 14),
        Tok::Percent => (BinOp::Rem, 13, 14),
        _ => return None,
    })
}

fn unsupported_op(p: &Parser) -> LoadError {
    LoadError::new(
        p.span(),
        &p.describe(),
        "the operator is outside the supported surface",
        "use + - * / % == != < > <= >= && || ! ?: ?? and `x = x + 1;` for updates",
    )
}

/// A token as written, for messages.
fn describe(tok: &Tok) -> String {
    let text = match tok {
        Tok::Ident(s) | Tok::Integer(s) | Tok::Double(s) => return s.clone(),
        Tok::CompoundAssign(BinOp::Add) => "+=",
        Tok::CompoundAssign(BinOp::Sub) => "-=",
        Tok::CompoundAssign(BinOp::Mul) => "*=",
        Tok::CompoundAssign(_) => "/=",
        Tok::Step(BinOp::Add) => "++",
        Tok::Step(_) => "--",
        Tok::Str(Some(s)) | Tok::Verbatim(s) => return format!("{s:?}"),
        Tok::Char(Some(c)) => return format!("'{c}'"),
        Tok::Str(None) | Tok::Char(None) | Tok::Comment => "literal",
        Tok::Interpolated(_) => "$\"...\"",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Dot => ".",
        Tok::QDot => "?.",
        Tok::Comma => ",",
        Tok::Semi => ";",
        Tok::Colon => ":",
        Tok::Question => "?",
        Tok::Coalesce => "??",
        Tok::Arrow => "=>",
        Tok::EqEq => "==",
        Tok::NotEq => "!=",
        Tok::Le => "<=",
        Tok::Ge => ">=",
        Tok::Lt => "<",
        Tok::Gt => ">",
        Tok::AndAnd => "&&",
        Tok::OrOr => "||",
        Tok::Bang => "!",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Assign => "=",
        Tok::Unsupported => "operator",
    };
    text.to_string()
}
