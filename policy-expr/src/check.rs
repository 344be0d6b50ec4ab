//! The type checker: resolves every name against the context model and
//! the built-in surface, types every operator, and lowers the tree to
//! `ir::Node`. Whatever is outside the surface is refused here, at load,
//! with what to write instead.

use crate::{
    ast::{Arg, ArgValue, BinOp, Expr, ExprKind, Source, Span, Stmt, TypeName, UnOp},
    builtins::{Class, comparison, is_namespace},
    error::LoadError,
    ir::{Arith, Body, Cmp, DatePart, Func, IrStmt, Linq, Node, Num, Trim, TryFunc, Unit},
    model::{self, Kind, Member, Prop},
    print,
    types::Ty,
    value::Value,
};

type R<T> = Result<T, LoadError>;

mod json_edit;

/// A checked expression: what the evaluator runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub body: Body,
    pub ty: Ty,
    pub locals: u16,
}

pub fn check(src: &Source) -> R<Checked> {
    let mut c = Checker::default();
    let (body, ty) = match src {
        Source::Expr(e) => {
            let (node, ty) = c.expr(e)?;
            if ty == Ty::Void {
                return Err(err(
                    e,
                    "the expression has no value",
                    "write an expression that gives one",
                ));
            }
            (Body::Expr(node), ty)
        }
        Source::Block(stmts) => {
            c.edited = json_edit::edited(stmts);
            let ir = c.block(stmts)?;
            if !returns(stmts) {
                let span = stmts.last().map_or(Span::new(1, 1), stmt_span);
                return Err(LoadError::new(
                    span,
                    "@{ ... }",
                    "not all code paths return a value",
                    "end every path of the block with `return value;`",
                ));
            }
            let mut ty = c.returns[0].0.clone();
            for (t, span) in &c.returns[1..] {
                ty = Ty::unify(&ty, t).ok_or_else(|| {
                    LoadError::new(
                        *span,
                        "return",
                        format!("this returns {t} where another return gives {ty}"),
                        "return values of one type (convert with .ToString() or a cast)",
                    )
                })?;
            }
            (Body::Block(ir), ty)
        }
    };
    Ok(Checked {
        body,
        ty,
        locals: c.next,
    })
}

/// Refuses a value JSON cannot hold (a context object, a dictionary).
fn json_able(e: &Expr, t: &Ty) -> R<()> {
    let ok = match t {
        Ty::Null
        | Ty::Object
        | Ty::Bool
        | Ty::Int
        | Ty::Long
        | Ty::Double
        | Ty::Char
        | Ty::Str
        | Ty::DateTime
        | Ty::TimeSpan
        | Ty::Guid
        | Ty::JObject
        | Ty::JArray
        | Ty::JToken
        | Ty::JProperty => true,
        Ty::Array(el) => **el != Ty::JProperty,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            e,
            format!("{t} cannot be a JSON value"),
            "pass text, a number, a bool, JSON or an array of them",
        ))
    }
}

fn stmt_span(s: &Stmt) -> Span {
    match s {
        Stmt::Decl { span, .. }
        | Stmt::Assign { span, .. }
        | Stmt::SetIndex { span, .. }
        | Stmt::If { span, .. }
        | Stmt::Try { span, .. }
        | Stmt::Foreach { span, .. } => *span,
        Stmt::Return(_, span) => *span,
        Stmt::Expr(e) => e.span,
    }
}

/// Whether every path through `stmts` ends in `return`.
fn returns(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Return(..) => true,
        Stmt::If {
            then,
            otherwise: Some(o),
            ..
        } => returns(then) && returns(o),
        Stmt::Try { body, handler, .. } => returns(body) && returns(handler),
        _ => false,
    })
}

fn err(e: &Expr, problem: impl Into<String>, hint: impl Into<String>) -> LoadError {
    LoadError::new(e.span, &print::expr(e), problem, hint)
}

/// A name resolved partway: a value, an object of the context model, or
/// a type used for its static members.
enum Res {
    /// The node, its type, and whether a `?.` earlier in the chain
    /// short-circuits nulls for what follows.
    Val(Node, Ty, bool),
    Model(Kind, bool),
    Static(Class),
    /// `System`, `System.Text`, ...: a qualifier before a type.
    Namespace(String),
}

#[derive(Default)]
struct Checker {
    scope: Vec<(String, u16, Ty)>,
    next: u16,
    returns: Vec<(Ty, Span)>,
    /// Locals whose JSON the block changes (`json_edit`).
    edited: std::collections::HashSet<String>,
}

fn lit(v: Value<'static>) -> Node {
    Node::Lit(v)
}

fn call(func: Func, recv: Option<Node>, args: Vec<Node>, null_safe: bool, span: Span) -> Node {
    Node::Call {
        func,
        recv: recv.map(Box::new),
        args,
        null_safe,
        span,
    }
}

fn num_of(t: &Ty) -> Option<Num> {
    match t {
        Ty::Int => Some(Num::Int),
        Ty::Long => Some(Num::Long),
        Ty::Double => Some(Num::Double),
        _ => None,
    }
}

fn num_ty(n: Num) -> Ty {
    match n {
        Num::Int => Ty::Int,
        Num::Long => Ty::Long,
        Num::Double => Ty::Double,
    }
}

/// The wider of two numeric types, as C# promotes them.
fn promote(a: &Ty, b: &Ty) -> Option<Num> {
    let (a, b) = (num_of(a)?, num_of(b)?);
    Some(if a == Num::Double || b == Num::Double {
        Num::Double
    } else if a == Num::Long || b == Num::Long {
        Num::Long
    } else {
        Num::Int
    })
}

impl Checker {
    fn declare(&mut self, name: &str, ty: Ty, span: Span) -> R<u16> {
        if self.scope.iter().any(|(n, ..)| n == name) || name == "context" {
            return Err(LoadError::new(
                span,
                name,
                format!("`{name}` is already declared"),
                "choose another name",
            ));
        }
        let slot = self.next;
        self.next += 1;
        self.scope.push((name.to_string(), slot, ty));
        Ok(slot)
    }

    fn block(&mut self, stmts: &[Stmt]) -> R<Vec<IrStmt>> {
        let depth = self.scope.len();
        let mut out = Vec::new();
        for s in stmts {
            out.push(self.stmt(s)?);
        }
        self.scope.truncate(depth);
        Ok(out)
    }

    fn stmt(&mut self, s: &Stmt) -> R<IrStmt> {
        Ok(match s {
            Stmt::Decl {
                ty,
                name,
                init,
                span,
            } => {
                let (node, t) = match (ty, init) {
                    (None, Some(e)) => {
                        let (node, t) = self.expr(e)?;
                        if t == Ty::Null || t == Ty::Void {
                            return Err(err(
                                e,
                                format!("`var {name}` cannot take its type from {t}"),
                                format!("declare the type: `string {name} = ...;`"),
                            ));
                        }
                        (node, t)
                    }
                    (Some(tn), Some(e)) => {
                        let want = Ty::from_name(tn);
                        let node = self.expect(e, &want)?;
                        (node, want)
                    }
                    (Some(tn), None) => (lit(Value::Null), Ty::from_name(tn)),
                    (None, None) => unreachable!("the parser requires an initial value for var"),
                };
                self.refuse_shared(name, init.as_ref(), &t, *span)?;
                let slot = self.declare(name, t, *span)?;
                IrStmt::Set(slot, node)
            }
            Stmt::Assign { name, value, span } => {
                let Some((_, slot, ty)) = self.scope.iter().find(|(n, ..)| n == name).cloned()
                else {
                    return Err(LoadError::new(
                        *span,
                        name,
                        format!("`{name}` is not declared"),
                        format!("declare it first: `var {name} = ...;`"),
                    ));
                };
                let node = self.expect(value, &ty)?;
                self.refuse_shared(name, Some(value), &ty, *span)?;
                IrStmt::Set(slot, node)
            }
            Stmt::SetIndex {
                target,
                value,
                span,
            } => self.set_index(target, value, *span)?,
            Stmt::Expr(e) => {
                if let Some(edit) = self.edit_stmt(e)? {
                    return Ok(edit);
                }
                if !matches!(e.kind, ExprKind::Call { .. }) {
                    return Err(err(
                        e,
                        "only calls can be statements",
                        "assign the value (`var x = ...;`) or return it",
                    ));
                }
                IrStmt::Expr(self.expr(e)?.0)
            }
            Stmt::If {
                cond,
                then,
                otherwise,
                ..
            } => {
                let c = self.expect(cond, &Ty::Bool)?;
                let t = self.block(then)?;
                let o = match otherwise {
                    Some(o) => self.block(o)?,
                    None => Vec::new(),
                };
                IrStmt::If(c, t, o)
            }
            Stmt::Return(e, span) => {
                let (node, ty) = self.expr(e)?;
                self.returns.push((ty, *span));
                IrStmt::Return(node)
            }
            Stmt::Try {
                body,
                name,
                handler,
                span,
            } => {
                let body = self.block(body)?;
                let depth = self.scope.len();
                let slot = match name {
                    Some(n) => Some(self.declare(n, Ty::Exception, *span)?),
                    None => None,
                };
                let handler = self.block(handler)?;
                self.scope.truncate(depth);
                IrStmt::Try(body, slot, handler)
            }
            Stmt::Foreach {
                ty,
                name,
                source,
                body,
                span,
            } => {
                let (items, t) = self.expr(source)?;
                let Some(element) = t.element() else {
                    return Err(err(
                        source,
                        format!("{t} cannot be enumerated"),
                        "loop over an array, a dictionary, headers or JSON",
                    ));
                };
                let var_ty = match ty {
                    None => element,
                    Some(tn) => {
                        let want = Ty::from_name(tn);
                        if !element.fits(&want) {
                            return Err(err(
                                source,
                                format!("its elements are {element}, not {want}"),
                                format!("write `foreach (var {name} in ...)`"),
                            ));
                        }
                        want
                    }
                };
                self.refuse_shared(name, None, &var_ty, *span)?;
                let depth = self.scope.len();
                let slot = self.declare(name, var_ty, *span)?;
                let body = self.block(body)?;
                self.scope.truncate(depth);
                IrStmt::Foreach(slot, items, body)
            }
        })
    }

    /// `e`, converted to `want`.
    fn expect(&mut self, e: &Expr, want: &Ty) -> R<Node> {
        let (node, ty) = self.expr(e)?;
        self.convert(e, node, &ty, want)
    }

    fn convert(&self, e: &Expr, node: Node, ty: &Ty, want: &Ty) -> R<Node> {
        if ty.fits(want) {
            // int to long/double: widen now so the evaluator sees one type.
            return Ok(match (ty, want) {
                (Ty::Int | Ty::Long, Ty::Long | Ty::Double) if ty != want => {
                    Node::Cast(want.clone(), Box::new(node), e.span)
                }
                _ => node,
            });
        }
        Err(err(
            e,
            format!("this is {ty} where {want} is expected"),
            hint_convert(ty, want),
        ))
    }

    /// An expression used as a value.
    fn expr(&mut self, e: &Expr) -> R<(Node, Ty)> {
        let res = self.resolve(e)?;
        self.value(e, res)
    }

    fn value(&self, e: &Expr, res: Res) -> R<(Node, Ty)> {
        match res {
            Res::Val(n, t, _) => Ok((n, t)),
            Res::Model(Kind::Url(u), safe) => Ok((
                Node::Prop {
                    prop: Prop::UrlText(u),
                    null_safe: safe,
                    span: e.span,
                },
                Ty::Str,
            )),
            Res::Model(k, _) => Err(err(
                e,
                format!("`{}` is an object, not a value", k.name()),
                format!("use one of its members: {}", k.members().join(", ")),
            )),
            Res::Static(c) => Err(err(
                e,
                format!("`{}` is a type, not a value", c.name()),
                format!("use one of its members: {}", c.members()),
            )),
            Res::Namespace(n) => Err(err(
                e,
                format!("`{n}` is a namespace, not a value"),
                "name a type after it, e.g. System.Text.Encoding.UTF8",
            )),
        }
    }

    fn resolve(&mut self, e: &Expr) -> R<Res> {
        let s = e.span;
        Ok(match &e.kind {
            ExprKind::Null => Res::Val(lit(Value::Null), Ty::Null, false),
            ExprKind::Bool(b) => Res::Val(lit(Value::Bool(*b)), Ty::Bool, false),
            ExprKind::Int(i) => Res::Val(lit(Value::Int(*i)), Ty::Int, false),
            ExprKind::Long(i) => Res::Val(lit(Value::Long(*i)), Ty::Long, false),
            ExprKind::Double(d) => Res::Val(lit(Value::Double(*d)), Ty::Double, false),
            ExprKind::Char(c) => Res::Val(lit(Value::Char(*c)), Ty::Char, false),
            ExprKind::Str(t) => Res::Val(Node::Str(t.clone()), Ty::Str, false),
            ExprKind::Name(name) => {
                if name == "context" {
                    Res::Model(Kind::Context, false)
                } else if let Some((_, slot, ty)) =
                    self.scope.iter().rev().find(|(n, ..)| n == name)
                {
                    Res::Val(Node::Local(*slot), ty.clone(), false)
                } else if let Some(c) = Class::from_ident(name) {
                    Res::Static(c)
                } else if is_namespace(name) {
                    Res::Namespace(name.clone())
                } else {
                    let hint = match name.as_str() {
                        "JsonConvert" => "use JObject.Parse(text) and .ToString()".to_string(),
                        _ => {
                            let locals: Vec<&str> =
                                self.scope.iter().map(|(n, ..)| n.as_str()).collect();
                            format!(
                                "names known here: context, {}string, int, long, bool, double, Convert, Encoding, DateTime, TimeSpan, Guid, Math, JObject, JArray, JToken, StringComparison, StringSplitOptions, Formatting, Regex, RegexOptions",
                                if locals.is_empty() {
                                    String::new()
                                } else {
                                    format!("{}, ", locals.join(", "))
                                }
                            )
                        }
                    };
                    return Err(err(e, format!("`{name}` is not known"), hint));
                }
            }
            ExprKind::Member {
                recv,
                name,
                type_args,
                null_safe,
            } => {
                if !type_args.is_empty() {
                    return Err(err(
                        e,
                        "a generic method must be called",
                        format!("write `{name}<...>(...)`"),
                    ));
                }
                let r = self.resolve(recv)?;
                self.member(e, recv, r, name, *null_safe, s)?
            }
            ExprKind::Call { callee, args } => {
                let ExprKind::Member {
                    recv,
                    name,
                    type_args,
                    null_safe,
                } = &callee.kind
                else {
                    return Err(err(
                        e,
                        "only methods of values and types can be called",
                        "call a method such as String.Concat(...) or x.ToString()",
                    ));
                };
                let r = self.resolve(recv)?;
                self.method(e, recv, r, name, type_args, args, *null_safe)?
            }
            ExprKind::Index { recv, index } => {
                let r = self.resolve(recv)?;
                let (rn, rt, safe) = match r {
                    Res::Val(n, t, safe) => (n, t, safe),
                    other => {
                        let (n, t) = self.value(recv, other)?;
                        (n, t, false)
                    }
                };
                let (func, key_ty, out) = match &rt {
                    Ty::Str => (Func::CharAt, Ty::Int, Ty::Char),
                    Ty::Array(el) => (Func::ArrIndex, Ty::Int, (**el).clone()),
                    Ty::Bytes => (Func::ArrIndex, Ty::Int, Ty::Int),
                    Ty::Headers => (Func::DictIndex, Ty::Str, Ty::Array(Box::new(Ty::Str))),
                    Ty::Dict(v) => (Func::DictIndex, Ty::Str, (**v).clone()),
                    Ty::RegexGroups => {
                        let (k, kt) = self.expr(index)?;
                        if kt != Ty::Str && kt != Ty::Int {
                            return Err(err(
                                index,
                                format!("a group is found by its number or name, not {kt}"),
                                "write m.Groups[1] or m.Groups[\"name\"]",
                            ));
                        }
                        return Ok(Res::Val(
                            call(Func::MatchGroup, Some(rn), vec![k], safe, s),
                            Ty::RegexGroup,
                            safe,
                        ));
                    }
                    Ty::JObject | Ty::JToken | Ty::JArray => {
                        let (k, kt) = self.expr(index)?;
                        if kt != Ty::Str && kt != Ty::Int {
                            return Err(err(
                                index,
                                format!("a JSON index is a string or an int, not {kt}"),
                                "write obj[\"name\"] or arr[0]",
                            ));
                        }
                        return Ok(Res::Val(
                            call(Func::JsonIndex, Some(rn), vec![k], safe, s),
                            Ty::JToken,
                            safe,
                        ));
                    }
                    other => {
                        return Err(err(
                            e,
                            format!("{other} has no indexer"),
                            "index strings, arrays, headers, dictionaries and JSON",
                        ));
                    }
                };
                let k = self.expect(index, &key_ty)?;
                Res::Val(call(func, Some(rn), vec![k], safe, s), out, safe)
            }
            ExprKind::Unary(UnOp::Not, inner) => {
                let n = self.expect(inner, &Ty::Bool)?;
                Res::Val(Node::Not(Box::new(n)), Ty::Bool, false)
            }
            ExprKind::Unary(UnOp::Neg, inner) => {
                let (n, t) = self.expr(inner)?;
                let Some(num) = num_of(&t) else {
                    return Err(err(
                        e,
                        format!("`-` needs a number, not {t}"),
                        "negate an int, long or double",
                    ));
                };
                Res::Val(Node::Neg(num, Box::new(n), s), t, false)
            }
            ExprKind::Binary(op, a, b) => {
                let (n, t) = self.binary(e, *op, a, b)?;
                Res::Val(n, t, false)
            }
            ExprKind::Cond(c, a, b) => {
                let cn = self.expect(c, &Ty::Bool)?;
                let (an, at) = self.expr(a)?;
                let (bn, bt) = self.expr(b)?;
                let Some(t) = Ty::unify(&at, &bt) else {
                    return Err(err(
                        e,
                        format!("the branches of `?:` differ: {at} and {bt}"),
                        "make both branches one type (convert with .ToString() or a cast)",
                    ));
                };
                let an = self.convert(a, an, &at, &t)?;
                let bn = self.convert(b, bn, &bt, &t)?;
                Res::Val(
                    Node::Cond(Box::new(cn), Box::new(an), Box::new(bn)),
                    t,
                    false,
                )
            }
            ExprKind::Cast(tn, inner) => {
                let (n, t) = self.expr(inner)?;
                let want = Ty::from_name(tn);
                if !castable(&t, &want) {
                    return Err(err(
                        e,
                        format!("{t} cannot be cast to {want}"),
                        hint_convert(&t, &want),
                    ));
                }
                Res::Val(Node::Cast(want.clone(), Box::new(n), s), want, false)
            }
            ExprKind::New { class, args } => {
                let (n, t) = self.new_object(e, class, args)?;
                Res::Val(n, t, false)
            }
            ExprKind::NewArray { elem, items } => {
                let mut typed = Vec::with_capacity(items.len());
                for x in items {
                    let (n, t) = self.expr(x)?;
                    typed.push((x, n, t));
                }
                let el = match elem {
                    Some(tn) => Ty::from_name(tn),
                    None => {
                        let mut ty = typed.first().map(|(_, _, t)| t.clone());
                        for (x, _, t) in &typed[1.min(typed.len())..] {
                            ty = ty.as_ref().and_then(|u| Ty::unify(u, t));
                            if ty.is_none() {
                                return Err(err(
                                    x,
                                    format!("the items of `new[]` differ in type ({t})"),
                                    "name the type: new string[] { ... }",
                                ));
                            }
                        }
                        ty.ok_or_else(|| {
                            err(e, "`new[] { }` has no type", "name it: new string[] { }")
                        })?
                    }
                };
                let nodes = typed
                    .into_iter()
                    .map(|(x, n, t)| self.convert(x, n, &t, &el))
                    .collect::<R<Vec<_>>>()?;
                Res::Val(
                    call(Func::NewArray, None, nodes, false, s),
                    Ty::Array(Box::new(el)),
                    false,
                )
            }
            ExprKind::Lambda { .. } => {
                return Err(err(
                    e,
                    "a lambda is only an argument of Where, Select, Any, All, First, FirstOrDefault, Count or OrderBy",
                    "pass it to one of those methods",
                ));
            }
        })
    }

    fn binary(&mut self, e: &Expr, op: BinOp, a: &Expr, b: &Expr) -> R<(Node, Ty)> {
        let s = e.span;
        let (an, at) = self.expr(a)?;
        let (bn, bt) = self.expr(b)?;
        let bx = Box::new;
        Ok(match op {
            BinOp::And | BinOp::Or => {
                let an = self.convert(a, an, &at, &Ty::Bool)?;
                let bn = self.convert(b, bn, &bt, &Ty::Bool)?;
                let n = if op == BinOp::And {
                    Node::And(bx(an), bx(bn))
                } else {
                    Node::Or(bx(an), bx(bn))
                };
                (n, Ty::Bool)
            }
            BinOp::Coalesce => {
                if !at.nullable() && at != Ty::Null {
                    // C# allows it on nullable value types, which a `?.`
                    // chain gives; the value is then the left one or the right.
                }
                let Some(t) = Ty::unify(&at, &bt) else {
                    return Err(err(
                        e,
                        format!("`??` joins {at} and {bt}"),
                        "give both sides one type",
                    ));
                };
                (Node::Coalesce(bx(an), bx(bn)), t)
            }
            BinOp::Add if at == Ty::Str || bt == Ty::Str => {
                for (x, t) in [(a, &at), (b, &bt)] {
                    if matches!(t, Ty::Void) {
                        return Err(err(x, "this has no value", "concatenate values"));
                    }
                }
                (Node::Concat(bx(an), bx(bn)), Ty::Str)
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let arith = match op {
                    BinOp::Add => Arith::Add,
                    BinOp::Sub => Arith::Sub,
                    BinOp::Mul => Arith::Mul,
                    BinOp::Div => Arith::Div,
                    _ => Arith::Rem,
                };
                if let Some(num) = promote(&at, &bt) {
                    let want = num_ty(num);
                    let an = self.convert(a, an, &at, &want)?;
                    let bn = self.convert(b, bn, &bt, &want)?;
                    return Ok((Node::Arith(arith, num, bx(an), bx(bn), s), want));
                }
                let t = match (&at, op, &bt) {
                    (Ty::DateTime, BinOp::Add | BinOp::Sub, Ty::TimeSpan) => Ty::DateTime,
                    (Ty::DateTime, BinOp::Sub, Ty::DateTime) => Ty::TimeSpan,
                    (Ty::TimeSpan, BinOp::Add | BinOp::Sub, Ty::TimeSpan) => Ty::TimeSpan,
                    _ => {
                        return Err(err(
                            e,
                            format!("`{}` does not apply to {at} and {bt}", op.symbol()),
                            "use numbers, or + to join strings",
                        ));
                    }
                };
                (Node::DateArith(arith, bx(an), bx(bn), s), t)
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let cmp = match op {
                    BinOp::Eq => Cmp::Eq,
                    BinOp::Ne => Cmp::Ne,
                    BinOp::Lt => Cmp::Lt,
                    BinOp::Le => Cmp::Le,
                    BinOp::Gt => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                let ordered = matches!(cmp, Cmp::Lt | Cmp::Le | Cmp::Gt | Cmp::Ge);
                let ok = if let Some(num) = promote(&at, &bt) {
                    let want = num_ty(num);
                    let an = self.convert(a, an.clone(), &at, &want)?;
                    let bn = self.convert(b, bn.clone(), &bt, &want)?;
                    return Ok((Node::Compare(cmp, bx(an), bx(bn)), Ty::Bool));
                } else if ordered {
                    matches!(
                        (&at, &bt),
                        (Ty::DateTime, Ty::DateTime)
                            | (Ty::TimeSpan, Ty::TimeSpan)
                            | (Ty::Char, Ty::Char)
                    )
                } else {
                    at.fits(&bt)
                        || bt.fits(&at)
                        || at == Ty::Object
                        || bt == Ty::Object
                        || at.is_json() && bt.is_json()
                };
                if !ok {
                    return Err(err(
                        e,
                        format!("`{}` cannot compare {at} with {bt}", op.symbol()),
                        hint_compare(&at, &bt),
                    ));
                }
                (Node::Compare(cmp, bx(an), bx(bn)), Ty::Bool)
            }
        })
    }

    /// `recv.name` without a call: properties.
    fn member(&mut self, e: &Expr, recv: &Expr, r: Res, name: &str, ns: bool, s: Span) -> R<Res> {
        match r {
            Res::Namespace(space) => {
                if let Some(c) = Class::from_ident(name) {
                    Ok(Res::Static(c))
                } else if is_namespace(name) {
                    Ok(Res::Namespace(format!("{space}.{name}")))
                } else {
                    Err(err(
                        e,
                        format!("`{space}.{name}` is outside the supported surface"),
                        "types known here: string, int, long, bool, double, Convert, Encoding, DateTime, TimeSpan, Guid, Math, JObject, JArray, JToken, StringComparison, Formatting, WebUtility, Uri",
                    ))
                }
            }
            Res::Model(kind, safe) => match model::member(kind, name) {
                Some(Member::Object(k)) => Ok(Res::Model(k, safe || ns)),
                Some(Member::Leaf(prop, ty)) => Ok(Res::Val(
                    Node::Prop {
                        prop,
                        null_safe: safe || ns,
                        span: s,
                    },
                    ty,
                    safe || ns,
                )),
                None => Err(err(
                    e,
                    format!("`{}.{name}` is not part of the context model", kind.name()),
                    format!("known members: {}", kind.members().join(", ")),
                )),
            },
            Res::Static(class) => {
                let v = |n, t| Ok(Res::Val(n, t, false));
                match (class, name) {
                    (Class::String, "Empty") => v(Node::Str(String::new()), Ty::Str),
                    (Class::DateTime, "UtcNow" | "Now") => {
                        v(call(Func::UtcNow, None, vec![], false, s), Ty::DateTime)
                    }
                    (Class::Encoding, "UTF8" | "ASCII" | "Default") => {
                        v(lit(Value::Null), Ty::Encoding)
                    }
                    (Class::StringComparison, n) if comparison(n).is_some() => v(
                        lit(Value::Bool(comparison(n).unwrap_or(false))),
                        Ty::Comparison,
                    ),
                    (Class::StringSplitOptions, n)
                        if crate::builtins::split_option(n).is_some() =>
                    {
                        v(
                            lit(Value::Int(crate::builtins::split_option(n).unwrap_or(0))),
                            Ty::SplitOptions,
                        )
                    }
                    (Class::RegexOptions, n) if crate::regex::option(n).is_some() => v(
                        lit(Value::Int(crate::regex::option(n).unwrap_or(0))),
                        Ty::RegexOptions,
                    ),
                    (Class::Formatting, "None") => v(lit(Value::Bool(false)), Ty::Formatting),
                    (Class::Formatting, "Indented") => v(lit(Value::Bool(true)), Ty::Formatting),
                    (Class::Int, "MaxValue") => v(lit(Value::Int(i32::MAX)), Ty::Int),
                    (Class::Int, "MinValue") => v(lit(Value::Int(i32::MIN)), Ty::Int),
                    _ => Err(err(
                        e,
                        format!("`{}.{name}` is outside the supported surface", class.name()),
                        format!("members of {} here: {}", class.name(), class.members()),
                    )),
                }
            }
            Res::Val(n, t, safe) => {
                let ns = safe || ns;
                let prop = |f: Func, out: Ty| {
                    Ok(Res::Val(call(f, Some(n.clone()), vec![], ns, s), out, ns))
                };
                match (&t, name) {
                    (Ty::Str, "Length") => prop(Func::Length, Ty::Int),
                    (Ty::Array(_) | Ty::Bytes, "Length") => prop(Func::ArrLength, Ty::Int),
                    (Ty::Array(_), "Count") => prop(Func::ArrLength, Ty::Int),
                    (Ty::Headers | Ty::Dict(_), "Count") => prop(Func::DictCount, Ty::Int),
                    (Ty::JArray | Ty::JObject | Ty::JToken, "Count") => {
                        prop(Func::JsonCount, Ty::Int)
                    }
                    (Ty::Pair(_), "Key") => prop(Func::PairKey, Ty::Str),
                    (Ty::Pair(v), "Value") => prop(Func::PairValue, (**v).clone()),
                    (Ty::Jwt, "Id") => prop(Func::JwtClaim("jti"), Ty::Str),
                    (Ty::Jwt, "Issuer") => prop(Func::JwtClaim("iss"), Ty::Str),
                    (Ty::Jwt, "Subject") => prop(Func::JwtClaim("sub"), Ty::Str),
                    (Ty::Jwt, "Algorithm") => prop(Func::JwtHeader("alg"), Ty::Str),
                    (Ty::Jwt, "Type") => prop(Func::JwtHeader("typ"), Ty::Str),
                    (Ty::Jwt, "Audiences") => {
                        prop(Func::JwtAudiences, Ty::Array(Box::new(Ty::Str)))
                    }
                    (Ty::Jwt, "ExpirationTime") => prop(Func::JwtDate("exp"), Ty::DateTime),
                    (Ty::Jwt, "NotBefore") => prop(Func::JwtDate("nbf"), Ty::DateTime),
                    (Ty::Jwt, "IssuedAt") => prop(Func::JwtDate("iat"), Ty::DateTime),
                    (Ty::Jwt, "Claims") => prop(
                        Func::JwtClaims,
                        Ty::Dict(Box::new(Ty::Array(Box::new(Ty::Str)))),
                    ),
                    (Ty::RegexMatch | Ty::RegexGroup, "Success") => {
                        prop(Func::MatchSuccess, Ty::Bool)
                    }
                    (Ty::RegexMatch | Ty::RegexGroup, "Value") => prop(Func::MatchValue, Ty::Str),
                    (Ty::RegexMatch, "Groups") => prop(Func::MatchGroups, Ty::RegexGroups),
                    // A caught exception is kept as its message.
                    (Ty::Exception, "Message") => prop(Func::ToString, Ty::Str),
                    (Ty::Response, "StatusCode") => prop(Func::ResponseStatus, Ty::Int),
                    (Ty::Response, "StatusReason") => prop(Func::ResponseReason, Ty::Str),
                    (Ty::Response, "Headers") => prop(Func::ResponseHeaders, Ty::Headers),
                    (Ty::Response, "Body") => prop(Func::ResponseBody, Ty::ResponseBody),
                    (Ty::DateTime, p) if date_part(p).is_some() => {
                        prop(Func::DtPart(date_part(p).expect("checked")), Ty::Int)
                    }
                    (Ty::TimeSpan, p) if total(p).is_some() => {
                        prop(Func::TsTotal(total(p).expect("checked")), Ty::Double)
                    }
                    (Ty::Object, _) => Err(err(
                        e,
                        format!(
                            "`{}` is an object: its members are not known until it is cast",
                            print::expr(recv)
                        ),
                        format!(
                            "cast it first, e.g. `((string){r}).{name}`, `((Jwt){r}).{name}` or `((IResponse){r}).{name}`",
                            r = print::expr(recv),
                        ),
                    )),
                    _ => Err(err(
                        e,
                        format!("{t} has no property `{name}` in the supported surface"),
                        members_of(&t),
                    )),
                }
            }
        }
    }

    fn args_plain(&mut self, args: &[Arg]) -> R<Vec<(Node, Ty, Expr)>> {
        let mut out = Vec::new();
        for a in args {
            match (&a.name, &a.value) {
                (None, ArgValue::Expr(e)) => {
                    let (n, t) = self.expr(e)?;
                    out.push((n, t, e.clone()));
                }
                (Some(name), ArgValue::Expr(e)) => {
                    return Err(err(
                        e,
                        format!("the named argument `{name}:` is not known here"),
                        "pass it by position",
                    ));
                }
                (_, ArgValue::Out(n, span) | ArgValue::OutDecl(_, n, span)) => {
                    return Err(LoadError::new(
                        *span,
                        &format!("out {n}"),
                        "`out` is only for TryParse, TryParseJwt and TryGetValue",
                        "pass a value",
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Checks arguments against parameter types; `optional` trailing ones
    /// may be left out.
    /// `new JProperty(name, value)`, `new JObject(properties...)`,
    /// `new JArray(items...)`.
    fn new_object(&mut self, e: &Expr, class: &str, args: &[Arg]) -> R<(Node, Ty)> {
        let s = e.span;
        let got = self.args_plain(args)?;
        match class {
            "JProperty" => {
                let [(kn, kt, kx), (vn, vt, vx)]: [_; 2] =
                    got.try_into().map_err(|got: Vec<_>| {
                        err(
                            e,
                            format!("new JProperty takes 2 arguments, {} given", got.len()),
                            "write new JProperty(\"name\", value)",
                        )
                    })?;
                let name = self.convert(&kx, kn, &kt, &Ty::Str)?;
                json_able(&vx, &vt)?;
                let node = call(Func::NewJProperty, None, vec![name, vn], false, s);
                Ok((node, Ty::JProperty))
            }
            "JObject" => {
                let mut nodes = Vec::with_capacity(got.len());
                for (n, t, x) in got {
                    if t != Ty::JProperty {
                        return Err(err(
                            &x,
                            format!("new JObject takes JProperty arguments, not {t}"),
                            "write new JObject(new JProperty(\"name\", value), ...)",
                        ));
                    }
                    nodes.push(n);
                }
                Ok((call(Func::NewJObject, None, nodes, false, s), Ty::JObject))
            }
            "Random" => {
                // A seed is taken and not used: .NET's sequence for it is
                // not reproduced, and the samples seed with a hash code
                // (itself random per process).
                match got.as_slice() {
                    [] => {}
                    [(_, t, _)] if t.fits(&Ty::Int) => {}
                    _ => {
                        return Err(err(
                            e,
                            "new Random takes no argument or a seed (int)",
                            "write new Random().Next(0, n)",
                        ));
                    }
                }
                Ok((lit(Value::Int(0)), Ty::Random))
            }
            sha if crate::ast::HashKind::from_ident(sha).is_some_and(|k| !k.keyed()) => Err(err(
                e,
                format!("{sha} is made with {sha}.Create()"),
                format!("write {sha}.Create().ComputeHash(bytes)"),
            )),
            hmac if crate::ast::HashKind::from_ident(hmac).is_some_and(|k| k.keyed()) => {
                let kind = crate::ast::HashKind::from_ident(hmac).expect("matched");
                let [(n, t, x)]: [_; 1] = got.try_into().map_err(|_| {
                    err(
                        e,
                        format!("new {hmac} takes its key"),
                        format!("write new {hmac}(Convert.FromBase64String(key)) or new {hmac}(Encoding.UTF8.GetBytes(key))"),
                    )
                })?;
                // The hasher is its key.
                Ok((self.convert(&x, n, &t, &Ty::Bytes)?, Ty::Hash(kind)))
            }
            _ => {
                let mut nodes = Vec::with_capacity(got.len());
                for (n, t, x) in got {
                    if t == Ty::JProperty {
                        return Err(err(
                            &x,
                            "a JArray cannot hold a JProperty",
                            "put the property in a new JObject(...) first",
                        ));
                    }
                    json_able(&x, &t)?;
                    nodes.push(n);
                }
                Ok((call(Func::NewJArray, None, nodes, false, s), Ty::JArray))
            }
        }
    }

    fn sig(&mut self, e: &Expr, args: &[Arg], params: &[Ty], optional: usize) -> R<Vec<Node>> {
        let got = self.args_plain(args)?;
        if got.len() > params.len() || got.len() + optional < params.len() {
            let want = if optional == 0 {
                format!("{}", params.len())
            } else {
                format!("{} to {}", params.len() - optional, params.len())
            };
            let list: Vec<String> = params.iter().map(|p| p.to_string()).collect();
            return Err(err(
                e,
                format!("takes {want} argument(s), {} given", got.len()),
                format!("write ({})", list.join(", ")),
            ));
        }
        got.into_iter()
            .zip(params)
            .map(|((n, t, x), p)| self.convert(&x, n, &t, p))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn method(
        &mut self,
        e: &Expr,
        recv: &Expr,
        r: Res,
        name: &str,
        targs: &[TypeName],
        args: &[Arg],
        ns: bool,
    ) -> R<Res> {
        let s = e.span;
        let str_ = || Ty::Str;
        match r {
            Res::Namespace(space) => Err(err(
                e,
                format!("`{space}.{name}` is outside the supported surface"),
                "call a method of a type, e.g. System.Net.WebUtility.UrlEncode(text)",
            )),
            Res::Static(class) => {
                let v = |n: Node, t: Ty| Ok(Res::Val(n, t, false));
                match (class, name) {
                    (Class::String, "IsNullOrEmpty") => {
                        let a = self.sig(e, args, &[str_()], 0)?;
                        v(call(Func::IsNullOrEmpty, None, a, false, s), Ty::Bool)
                    }
                    (Class::String, "IsNullOrWhiteSpace") => {
                        let a = self.sig(e, args, &[str_()], 0)?;
                        v(call(Func::IsNullOrWhiteSpace, None, a, false, s), Ty::Bool)
                    }
                    (Class::String, "Equals") => {
                        let a = self.sig(e, args, &[str_(), str_(), Ty::Comparison], 1)?;
                        v(call(Func::StrEqualsStatic, None, a, false, s), Ty::Bool)
                    }
                    (Class::String, "Format" | "Concat" | "Join") => {
                        let got = self.args_plain(args)?;
                        if got.iter().any(|(_, t, _)| *t == Ty::Void) || got.is_empty() {
                            return Err(err(
                                e,
                                format!("string.{name} needs values"),
                                "pass at least one value",
                            ));
                        }
                        let func = match name {
                            "Format" => Func::Format,
                            "Concat" => Func::Concat,
                            _ => Func::Join,
                        };
                        if func == Func::Format && got[0].1 != Ty::Str {
                            return Err(err(
                                &got[0].2,
                                "string.Format's first argument is the format",
                                "write string.Format(\"{0}-{1}\", a, b)",
                            ));
                        }
                        if func == Func::Join && !matches!(got[0].1, Ty::Str | Ty::Char) {
                            return Err(err(
                                &got[0].2,
                                "string.Join's first argument is the separator",
                                "write string.Join(\",\", values)",
                            ));
                        }
                        v(
                            call(func, None, got.into_iter().map(|g| g.0).collect(), false, s),
                            Ty::Str,
                        )
                    }
                    (Class::Int | Class::Long | Class::Bool | Class::Double, "Parse") => {
                        let t = class_ty(class);
                        let a = self.sig(e, args, &[str_()], 0)?;
                        v(call(Func::Parse(t.clone()), None, a, false, s), t)
                    }
                    (Class::Int | Class::Long | Class::Bool | Class::Double, "TryParse") => {
                        let t = class_ty(class);
                        let (a, out) = self.try_args(e, args, 1, &t)?;
                        v(
                            Node::Try {
                                func: TryFunc::Parse(t),
                                recv: None,
                                args: a,
                                out,
                                span: s,
                            },
                            Ty::Bool,
                        )
                    }
                    (Class::Convert, "ToBase64String") => {
                        let a = self.sig(e, args, &[Ty::Bytes], 0)?;
                        v(call(Func::ToBase64, None, a, false, s), Ty::Str)
                    }
                    (Class::Convert, "FromBase64String") => {
                        let a = self.sig(e, args, &[str_()], 0)?;
                        v(call(Func::FromBase64, None, a, false, s), Ty::Bytes)
                    }
                    (
                        Class::Convert,
                        "ToInt32" | "ToInt64" | "ToDouble" | "ToBoolean" | "ToString",
                    ) => {
                        let t = match name {
                            "ToInt32" => Ty::Int,
                            "ToInt64" => Ty::Long,
                            "ToDouble" => Ty::Double,
                            "ToBoolean" => Ty::Bool,
                            _ => Ty::Str,
                        };
                        let a = self.sig(e, args, &[Ty::Object], 0)?;
                        v(call(Func::ConvertTo(t.clone()), None, a, false, s), t)
                    }
                    (Class::BitConverter, "ToString") => {
                        let a = self.sig(e, args, &[Ty::Bytes], 0)?;
                        v(call(Func::BitConverterToString, None, a, false, s), Ty::Str)
                    }
                    (Class::Hash(k), "Create") if !k.keyed() => {
                        self.sig(e, args, &[], 0)?;
                        v(
                            lit(Value::Bytes(std::sync::Arc::new(Vec::new()))),
                            Ty::Hash(k),
                        )
                    }
                    (Class::Guid, "NewGuid") => {
                        self.sig(e, args, &[], 0)?;
                        v(call(Func::NewGuid, None, vec![], false, s), Ty::Guid)
                    }
                    (Class::TimeSpan, from)
                        if from.strip_prefix("From").and_then(total_unit).is_some() =>
                    {
                        let unit = from
                            .strip_prefix("From")
                            .and_then(total_unit)
                            .expect("checked");
                        let a = self.sig(e, args, &[Ty::Double], 0)?;
                        v(call(Func::TsFrom(unit), None, a, false, s), Ty::TimeSpan)
                    }
                    (Class::Math, "Min" | "Max") => {
                        let got = self.args_plain(args)?;
                        let num = match got.as_slice() {
                            [(_, a, _), (_, b, _)] => promote(a, b),
                            _ => None,
                        };
                        let Some(num) = num else {
                            return Err(err(
                                e,
                                format!("Math.{name} takes two numbers"),
                                format!("write Math.{name}(a, b)"),
                            ));
                        };
                        let want = num_ty(num);
                        let a = got
                            .into_iter()
                            .map(|(n, t, x)| self.convert(&x, n, &t, &want))
                            .collect::<R<_>>()?;
                        let f = if name == "Min" {
                            Func::Min(num)
                        } else {
                            Func::Max(num)
                        };
                        v(call(f, None, a, false, s), want)
                    }
                    (Class::Math, "Abs") => {
                        let got = self.args_plain(args)?;
                        let [(n, t, x)] = got.as_slice() else {
                            return Err(err(e, "Math.Abs takes one number", "write Math.Abs(x)"));
                        };
                        let Some(num) = num_of(t) else {
                            return Err(err(
                                x,
                                format!("Math.Abs needs a number, not {t}"),
                                "pass an int, long or double",
                            ));
                        };
                        v(
                            call(Func::Abs(num), None, vec![n.clone()], false, s),
                            t.clone(),
                        )
                    }
                    (Class::Math, "Round") => {
                        let a = self.sig(e, args, &[Ty::Double, Ty::Int], 1)?;
                        v(call(Func::Round, None, a, false, s), Ty::Double)
                    }
                    (Class::Math, "Floor" | "Ceiling") => {
                        let a = self.sig(e, args, &[Ty::Double], 0)?;
                        let f = if name == "Floor" {
                            Func::Floor
                        } else {
                            Func::Ceiling
                        };
                        v(call(f, None, a, false, s), Ty::Double)
                    }
                    (Class::Math, "Pow") => {
                        let a = self.sig(e, args, &[Ty::Double, Ty::Double], 0)?;
                        v(call(Func::Pow, None, a, false, s), Ty::Double)
                    }
                    (
                        Class::WebUtility,
                        "UrlEncode" | "UrlDecode" | "HtmlEncode" | "HtmlDecode",
                    )
                    | (Class::Uri, "EscapeDataString" | "UnescapeDataString") => {
                        let f = match name {
                            "UrlEncode" => Func::UrlEncode,
                            "UrlDecode" => Func::UrlDecode,
                            "HtmlEncode" => Func::HtmlEncode,
                            "HtmlDecode" => Func::HtmlDecode,
                            "EscapeDataString" => Func::EscapeDataString,
                            _ => Func::UnescapeDataString,
                        };
                        let a = self.sig(e, args, &[str_()], 0)?;
                        v(call(f, None, a, false, s), Ty::Str)
                    }
                    (Class::Regex, "IsMatch" | "Match" | "Replace") => {
                        let replace = name == "Replace";
                        let mut params = vec![str_(), str_()];
                        if replace {
                            params.push(str_());
                        }
                        params.extend([Ty::RegexOptions, Ty::TimeSpan]);
                        let a = self.sig(e, args, &params, 2)?;
                        let options = match a.get(if replace { 3 } else { 2 }) {
                            None => Some(0),
                            Some(Node::Lit(Value::Int(f))) => Some(*f),
                            Some(_) => None,
                        };
                        // A literal pattern is compiled (and refused) now.
                        let pattern = match (&a[1], options) {
                            (Node::Str(p), Some(o)) => {
                                Some(crate::regex::Pattern::compile(p, o).map_err(|m| {
                                    err(
                                        e,
                                        m,
                                        "write the pattern without look-around and back-references",
                                    )
                                })?)
                            }
                            _ => None,
                        };
                        let (f, t) = match name {
                            "IsMatch" => (Func::RegexIsMatch(pattern), Ty::Bool),
                            "Match" => (Func::RegexMatch(pattern), Ty::RegexMatch),
                            _ => (Func::RegexReplace(pattern), Ty::Str),
                        };
                        v(call(f, None, a, false, s), t)
                    }
                    (Class::JObject | Class::JArray | Class::JToken, "Parse") => {
                        let t = class_ty(class);
                        let a = self.sig(e, args, &[str_()], 0)?;
                        v(call(Func::JsonParse(t.clone()), None, a, false, s), t)
                    }
                    _ => Err(err(
                        e,
                        format!("`{}.{name}` is outside the supported surface", class.name()),
                        format!("members of {} here: {}", class.name(), class.members()),
                    )),
                }
            }
            Res::Model(Kind::Body(of), safe) if name == "As" => {
                let t = self.body_as(e, targs, args)?;
                Ok(Res::Val(
                    call(Func::BodyAs(of, t.clone()), None, vec![], safe || ns, s),
                    t,
                    safe || ns,
                ))
            }
            // `Url.ToUri()`: the same URL as a System.Uri (Host, Port,
            // Scheme, AbsolutePath, AbsoluteUri).
            Res::Model(Kind::Url(u), safe) if name == "ToUri" => {
                self.sig(e, args, &[], 0)?;
                Ok(Res::Model(Kind::Url(u), safe || ns))
            }
            Res::Model(Kind::Url(u), safe) if name == "ToString" => {
                self.sig(e, args, &[], 0)?;
                Ok(Res::Val(
                    Node::Prop {
                        prop: Prop::UrlText(u),
                        null_safe: safe || ns,
                        span: s,
                    },
                    Ty::Str,
                    safe || ns,
                ))
            }
            Res::Model(..) => {
                let r = self.resolve(recv)?;
                let (n, t) = self.value(recv, r)?;
                self.value_method(e, n, t, false, name, targs, args, ns)
            }
            Res::Val(n, t, safe) => self.value_method(e, n, t, safe, name, targs, args, ns),
        }
    }

    /// `out var x`, `out T x` or `out x` as the last of `n + 1` arguments.
    fn try_args(&mut self, e: &Expr, args: &[Arg], n: usize, out_ty: &Ty) -> R<(Vec<Node>, u16)> {
        if args.len() != n + 1 {
            return Err(err(
                e,
                format!("takes {} argument(s) and an `out` variable", n),
                "write e.g. int.TryParse(text, out var number)",
            ));
        }
        let plain = self.sig(e, &args[..n], &vec![Ty::Object; n], 0)?;
        let out = match &args[n].value {
            ArgValue::OutDecl(ty, name, span) => {
                if let Some(tn) = ty {
                    let declared = Ty::from_name(tn);
                    if !out_ty.fits(&declared) {
                        return Err(LoadError::new(
                            *span,
                            name,
                            format!("the out variable is {out_ty}, declared {declared}"),
                            format!("write `out {out_ty} {name}` or `out var {name}`"),
                        ));
                    }
                }
                self.declare(name, out_ty.clone(), *span)?
            }
            ArgValue::Out(name, span) => {
                let Some((_, slot, ty)) = self.scope.iter().find(|(n, ..)| n == name).cloned()
                else {
                    return Err(LoadError::new(
                        *span,
                        name,
                        format!("`{name}` is not declared"),
                        format!("write `out var {name}`"),
                    ));
                };
                if !out_ty.fits(&ty) {
                    return Err(LoadError::new(
                        *span,
                        name,
                        format!("`{name}` is {ty}; this gives {out_ty}"),
                        format!("declare it as {out_ty}"),
                    ));
                }
                slot
            }
            ArgValue::Expr(x) => {
                return Err(err(
                    x,
                    "the last argument must be an `out` variable",
                    "write `out var name`",
                ));
            }
        };
        Ok((plain, out))
    }

    /// The type `Body.As<T>(preserveContent: b)` reads the body as.
    fn body_as(&mut self, e: &Expr, targs: &[TypeName], args: &[Arg]) -> R<Ty> {
        let t = targs
            .first()
            .map(Ty::from_name)
            .filter(|t| matches!(t, Ty::Str | Ty::JObject | Ty::JArray | Ty::JToken));
        let Some(t) = t else {
            return Err(err(
                e,
                "Body.As needs the type to read the body as",
                "write As<string>(), As<JObject>(), As<JArray>() or As<JToken>()",
            ));
        };
        for a in args {
            match (&a.name, &a.value) {
                (Some(n), ArgValue::Expr(x)) if n == "preserveContent" => {
                    self.expect(x, &Ty::Bool)?;
                }
                (None, ArgValue::Expr(x)) if args.len() == 1 => {
                    self.expect(x, &Ty::Bool)?;
                }
                _ => {
                    return Err(err(
                        e,
                        "Body.As takes only preserveContent",
                        "write As<string>(preserveContent: true)",
                    ));
                }
            }
        }
        Ok(t)
    }

    #[allow(clippy::too_many_arguments)]
    fn value_method(
        &mut self,
        e: &Expr,
        n: Node,
        t: Ty,
        safe: bool,
        name: &str,
        targs: &[TypeName],
        args: &[Arg],
        ns: bool,
    ) -> R<Res> {
        let s = e.span;
        let ns = safe || ns;
        let str_ = || Ty::Str;
        // LINQ first: it applies to every enumerable.
        if let Some(op) = linq(name)
            && let Some(el) = t.element()
        {
            return self.linq(e, n, el, op, args, ns);
        }
        let v = |f: Func, a: Vec<Node>, out: Ty| {
            Ok(Res::Val(call(f, Some(n.clone()), a, ns, s), out, ns))
        };
        match (&t, name) {
            (Ty::ResponseBody, "As") => {
                let out = self.body_as(e, targs, args)?;
                v(Func::ResponseBodyAs(out.clone()), vec![], out)
            }
            (_, "ToString") if t != Ty::Void => {
                let a = match &t {
                    Ty::DateTime => {
                        let a = self.sig(e, args, &[str_()], 1)?;
                        if !a.is_empty() {
                            return v(Func::DtFormat, a, Ty::Str);
                        }
                        a
                    }
                    Ty::Guid => {
                        let a = self.sig(e, args, &[str_()], 1)?;
                        if !a.is_empty() {
                            return v(Func::GuidFormat, a, Ty::Str);
                        }
                        a
                    }
                    t if t.is_json() => {
                        let a = self.sig(e, args, &[Ty::Formatting], 1)?;
                        return v(Func::JsonToString, a, Ty::Str);
                    }
                    _ => self.sig(e, args, &[], 0)?,
                };
                v(Func::ToString, a, Ty::Str)
            }
            (Ty::Str, "ToLower" | "ToLowerInvariant") => {
                let a = self.sig(e, args, &[], 0)?;
                v(Func::ToLower, a, Ty::Str)
            }
            (Ty::Str, "ToUpper" | "ToUpperInvariant") => {
                let a = self.sig(e, args, &[], 0)?;
                v(Func::ToUpper, a, Ty::Str)
            }
            (Ty::Str, "Trim" | "TrimStart" | "TrimEnd") => {
                let got = self.args_plain(args)?;
                for (_, at, x) in &got {
                    if *at != Ty::Char {
                        return Err(err(
                            x,
                            format!("{name} takes characters, not {at}"),
                            format!("write {name}() or {name}('/')"),
                        ));
                    }
                }
                let k = match name {
                    "Trim" => Trim::Both,
                    "TrimStart" => Trim::Start,
                    _ => Trim::End,
                };
                v(
                    Func::Trim(k),
                    got.into_iter().map(|g| g.0).collect(),
                    Ty::Str,
                )
            }
            (Ty::Str, "StartsWith" | "EndsWith" | "Contains" | "Equals") => {
                let a = self.sig(e, args, &[str_(), Ty::Comparison], 1)?;
                let f = match name {
                    "StartsWith" => Func::StartsWith,
                    "EndsWith" => Func::EndsWith,
                    "Contains" => Func::Contains,
                    _ => Func::StrEquals,
                };
                v(f, a, Ty::Bool)
            }
            (Ty::Str, "IndexOf" | "LastIndexOf") => {
                let got = self.args_plain(args)?;
                let mut a = Vec::new();
                for (i, (an, at, x)) in got.into_iter().enumerate() {
                    let ok = match i {
                        0 => matches!(at, Ty::Str | Ty::Char),
                        1 => matches!(at, Ty::Comparison),
                        _ => false,
                    };
                    if !ok {
                        return Err(err(
                            &x,
                            format!("{name} does not take {at} here"),
                            format!(
                                "write {name}(\"text\") or {name}('c'), optionally with StringComparison"
                            ),
                        ));
                    }
                    a.push(an);
                }
                if a.is_empty() {
                    return Err(err(
                        e,
                        format!("{name} needs what to look for"),
                        format!("write {name}(\"text\")"),
                    ));
                }
                v(
                    if name == "IndexOf" {
                        Func::IndexOf
                    } else {
                        Func::LastIndexOf
                    },
                    a,
                    Ty::Int,
                )
            }
            (Ty::Str, "Split") => {
                let mut got = self.args_plain(args)?;
                // Trailing StringSplitOptions and count, as .NET's overloads.
                let options = got.last().is_some_and(|g| g.1 == Ty::SplitOptions);
                let mut tail = Vec::new();
                if options {
                    tail.push(got.pop().expect("checked").0);
                }
                let count = got.len() > 1 && got.last().is_some_and(|g| g.1 == Ty::Int);
                if count {
                    tail.insert(0, got.pop().expect("checked").0);
                }
                if got.is_empty() {
                    return Err(err(
                        e,
                        "Split needs a separator",
                        "write Split(',') or Split(\", \")",
                    ));
                }
                for (_, at, x) in &got {
                    let seps = [
                        Ty::Char,
                        Ty::Str,
                        Ty::Array(Box::new(Ty::Char)),
                        Ty::Array(Box::new(Ty::Str)),
                    ];
                    if !seps.contains(at) {
                        return Err(err(
                            x,
                            format!("Split takes separators (char or string), not {at}"),
                            "write Split(',') or Split(new[] { \";\" }, StringSplitOptions.RemoveEmptyEntries)",
                        ));
                    }
                }
                let mut nodes: Vec<Node> = got.into_iter().map(|g| g.0).collect();
                nodes.extend(tail);
                v(
                    Func::Split { count, options },
                    nodes,
                    Ty::Array(Box::new(Ty::Str)),
                )
            }
            (Ty::Str, "Substring") => {
                let a = self.sig(e, args, &[Ty::Int, Ty::Int], 1)?;
                v(Func::Substring, a, Ty::Str)
            }
            (Ty::Str, "Replace") => {
                let got = self.args_plain(args)?;
                let ok = matches!(
                    got.as_slice(),
                    [(_, Ty::Str, _), (_, Ty::Str | Ty::Null, _)]
                        | [(_, Ty::Char, _), (_, Ty::Char, _)]
                );
                if !ok {
                    return Err(err(
                        e,
                        "Replace takes two strings or two chars",
                        "write Replace(\"old\", \"new\")",
                    ));
                }
                v(
                    Func::Replace,
                    got.into_iter().map(|g| g.0).collect(),
                    Ty::Str,
                )
            }
            (Ty::Str, "PadLeft" | "PadRight") => {
                let a = self.sig(e, args, &[Ty::Int, Ty::Char], 1)?;
                v(
                    if name == "PadLeft" {
                        Func::PadLeft
                    } else {
                        Func::PadRight
                    },
                    a,
                    Ty::Str,
                )
            }
            (Ty::Str, "AsJwt") => {
                let a = self.sig(e, args, &[], 0)?;
                v(Func::AsJwt, a, Ty::Jwt)
            }
            (Ty::Str, "TryParseJwt") => {
                let (a, out) = self.try_args(e, args, 0, &Ty::Jwt)?;
                Ok(Res::Val(
                    Node::Try {
                        func: TryFunc::Jwt,
                        recv: Some(Box::new(n)),
                        args: a,
                        out,
                        span: s,
                    },
                    Ty::Bool,
                    false,
                ))
            }
            (Ty::Encoding, "GetBytes") => {
                let a = self.sig(e, args, &[str_()], 0)?;
                Ok(Res::Val(
                    call(Func::Utf8GetBytes, None, a, false, s),
                    Ty::Bytes,
                    false,
                ))
            }
            (Ty::Encoding, "GetString") => {
                let a = self.sig(e, args, &[Ty::Bytes], 0)?;
                Ok(Res::Val(
                    call(Func::Utf8GetString, None, a, false, s),
                    Ty::Str,
                    false,
                ))
            }
            (Ty::DateTime, add) if add.strip_prefix("Add").and_then(total_unit).is_some() => {
                let unit = add
                    .strip_prefix("Add")
                    .and_then(total_unit)
                    .expect("checked");
                let a = self.sig(e, args, &[Ty::Double], 0)?;
                v(Func::DtAdd(unit), a, Ty::DateTime)
            }
            (Ty::DateTime, "Subtract") => {
                let got = self.args_plain(args)?;
                match got.as_slice() {
                    [(an, Ty::DateTime, _)] => Ok(Res::Val(
                        Node::DateArith(Arith::Sub, Box::new(n), Box::new(an.clone()), s),
                        Ty::TimeSpan,
                        ns,
                    )),
                    [(an, Ty::TimeSpan, _)] => Ok(Res::Val(
                        Node::DateArith(Arith::Sub, Box::new(n), Box::new(an.clone()), s),
                        Ty::DateTime,
                        ns,
                    )),
                    _ => Err(err(
                        e,
                        "Subtract takes a DateTime or a TimeSpan",
                        "write a.Subtract(b)",
                    )),
                }
            }
            (Ty::Random, "Next") => {
                let a = self.sig(e, args, &[Ty::Int, Ty::Int], 2)?;
                v(Func::RandomNext, a, Ty::Int)
            }
            (Ty::Random, "NextDouble") => {
                let a = self.sig(e, args, &[], 0)?;
                v(Func::RandomDouble, a, Ty::Double)
            }
            (Ty::Str | Ty::Guid, "GetHashCode") => {
                let a = self.sig(e, args, &[], 0)?;
                v(Func::HashCode, a, Ty::Int)
            }
            (Ty::Hash(k), "ComputeHash") => {
                let a = self.sig(e, args, &[Ty::Bytes], 0)?;
                v(Func::ComputeHash(*k), a, Ty::Bytes)
            }
            (Ty::JObject | Ty::JToken | Ty::JArray, "Value") => {
                let Some(want) = targs.first().map(Ty::from_name).filter(json_scalar) else {
                    return Err(err(
                        e,
                        "Value needs the type to read",
                        "write Value<string>(\"name\") (string, int, long, double, bool)",
                    ));
                };
                let a = self.sig(e, args, &[str_()], 1)?;
                v(Func::JsonValue(want.clone()), a, want)
            }
            (Ty::JObject | Ty::JToken, "ContainsKey") => {
                let a = self.sig(e, args, &[str_()], 0)?;
                v(Func::JsonContainsKey, a, Ty::Bool)
            }
            (Ty::Headers | Ty::Dict(_), "GetValueOrDefault") => {
                let value_ty = match &t {
                    Ty::Headers => Ty::Str,
                    Ty::Dict(v) if **v == Ty::Array(Box::new(Ty::Str)) => Ty::Str,
                    Ty::Dict(v) => (**v).clone(),
                    _ => unreachable!("matched above"),
                };
                let out = match targs.first() {
                    Some(tn) => {
                        let want = Ty::from_name(tn);
                        if value_ty != Ty::Object && !value_ty.fits(&want) {
                            return Err(err(
                                e,
                                format!("this dictionary holds {value_ty}, not {want}"),
                                format!("write GetValueOrDefault(\"name\") (gives {value_ty})"),
                            ));
                        }
                        want
                    }
                    // C# infers `T` of `GetValueOrDefault<T>(key, T default)`
                    // from the default: `Variables.GetValueOrDefault("a", "")`
                    // is a string.
                    None if value_ty == Ty::Object => match args.get(1) {
                        Some(Arg {
                            name: None,
                            value: ArgValue::Expr(d),
                        }) => match self.expr(d)?.1 {
                            Ty::Null | Ty::Void => Ty::Object,
                            t => t,
                        },
                        _ => Ty::Object,
                    },
                    None => value_ty,
                };
                let a = self.sig(e, args, &[str_(), out.clone()], 1)?;
                v(Func::DictGet(out.clone()), a, out)
            }
            (Ty::Headers | Ty::Dict(_), "ContainsKey") => {
                let a = self.sig(e, args, &[str_()], 0)?;
                v(Func::DictContainsKey, a, Ty::Bool)
            }
            (Ty::Headers | Ty::Dict(_), "TryGetValue") => {
                let value_ty = match &t {
                    Ty::Headers => Ty::Array(Box::new(Ty::Str)),
                    Ty::Dict(v) => (**v).clone(),
                    _ => unreachable!("matched above"),
                };
                let (a, out) = self.try_args(e, args, 1, &value_ty)?;
                Ok(Res::Val(
                    Node::Try {
                        func: TryFunc::GetValue,
                        recv: Some(Box::new(n)),
                        args: a,
                        out,
                        span: s,
                    },
                    Ty::Bool,
                    false,
                ))
            }
            (Ty::Object, _) => Err(err(
                e,
                format!("the value is an object: `{name}` is not known until it is cast"),
                "cast it first, e.g. `((string)context.Variables[\"x\"]).ToLower()`",
            )),
            _ => Err(err(
                e,
                format!("{t} has no method `{name}` in the supported surface"),
                members_of(&t),
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn linq(&mut self, e: &Expr, recv: Node, el: Ty, op: Linq, args: &[Arg], ns: bool) -> R<Res> {
        let s = e.span;
        let name = print::expr(e);
        let node = |slot: u16, body: Option<Node>| Node::Linq {
            op,
            recv: Box::new(recv.clone()),
            slot,
            body: body.map(Box::new),
            null_safe: ns,
            span: s,
        };
        if op == Linq::Contains {
            let a = self.sig(e, args, std::slice::from_ref(&el), 0)?;
            let body = a.into_iter().next();
            return Ok(Res::Val(node(0, body), Ty::Bool, ns));
        }
        if op == Linq::ToArray {
            self.sig(e, args, &[], 0)?;
            return Ok(Res::Val(node(0, None), Ty::Array(Box::new(el)), ns));
        }
        let needs = matches!(
            op,
            Linq::Where | Linq::Select | Linq::All | Linq::OrderBy | Linq::OrderByDescending
        );
        let lambda = match args {
            [] if !needs => None,
            [
                Arg {
                    name: None,
                    value:
                        ArgValue::Expr(Expr {
                            kind: ExprKind::Lambda { param, body },
                            span,
                        }),
                },
            ] => Some((param, body, *span)),
            _ => {
                return Err(err(
                    e,
                    "this LINQ method takes one lambda",
                    "write e.g. .Where(h => h.Key == \"x\")",
                ));
            }
        };
        let (slot, body, body_ty) = match lambda {
            Some((param, body, span)) => {
                let depth = self.scope.len();
                let slot = self.declare(param, el.clone(), span)?;
                let (bn, bt) = self.expr(body)?;
                self.scope.truncate(depth);
                (slot, Some(bn), bt)
            }
            None => (0, None, Ty::Void),
        };
        let pred = matches!(
            op,
            Linq::Where | Linq::Any | Linq::All | Linq::First | Linq::FirstOrDefault | Linq::Count
        );
        if pred && body.is_some() && body_ty != Ty::Bool {
            return Err(LoadError::new(
                s,
                &name,
                format!("the lambda must give a bool, not {body_ty}"),
                "write a condition, e.g. x => x == \"a\"",
            ));
        }
        if matches!(op, Linq::OrderBy | Linq::OrderByDescending)
            && !(body_ty.is_numeric() || matches!(body_ty, Ty::Str | Ty::DateTime | Ty::TimeSpan))
        {
            return Err(LoadError::new(
                s,
                &name,
                format!("OrderBy needs a key that orders (number, string, date), not {body_ty}"),
                "order by a string or a number",
            ));
        }
        let out = match op {
            Linq::Where | Linq::OrderBy | Linq::OrderByDescending => Ty::Array(Box::new(el)),
            Linq::Select => Ty::Array(Box::new(body_ty)),
            Linq::Any | Linq::All => Ty::Bool,
            Linq::Count => Ty::Int,
            Linq::First | Linq::FirstOrDefault => el,
            Linq::Contains | Linq::ToArray => unreachable!("handled above"),
        };
        Ok(Res::Val(node(slot, body), out, ns))
    }
}

fn linq(name: &str) -> Option<Linq> {
    Some(match name {
        "Where" => Linq::Where,
        "Select" => Linq::Select,
        "Any" => Linq::Any,
        "All" => Linq::All,
        "First" => Linq::First,
        "FirstOrDefault" => Linq::FirstOrDefault,
        "Count" => Linq::Count,
        "OrderBy" => Linq::OrderBy,
        "OrderByDescending" => Linq::OrderByDescending,
        "Contains" => Linq::Contains,
        "ToArray" | "ToList" => Linq::ToArray,
        _ => return None,
    })
}

fn class_ty(c: Class) -> Ty {
    match c {
        Class::Int => Ty::Int,
        Class::Long => Ty::Long,
        Class::Bool => Ty::Bool,
        Class::Double => Ty::Double,
        Class::JObject => Ty::JObject,
        Class::JArray => Ty::JArray,
        Class::JToken => Ty::JToken,
        _ => Ty::Str,
    }
}

fn json_scalar(t: &Ty) -> bool {
    matches!(
        t,
        Ty::Str
            | Ty::Int
            | Ty::Long
            | Ty::Double
            | Ty::Bool
            | Ty::JObject
            | Ty::JArray
            | Ty::JToken
    )
}

fn date_part(p: &str) -> Option<DatePart> {
    Some(match p {
        "Year" => DatePart::Year,
        "Month" => DatePart::Month,
        "Day" => DatePart::Day,
        "Hour" => DatePart::Hour,
        "Minute" => DatePart::Minute,
        "Second" => DatePart::Second,
        "Millisecond" => DatePart::Millisecond,
        _ => return None,
    })
}

fn total(p: &str) -> Option<Unit> {
    total_unit(p.strip_prefix("Total")?)
}

fn total_unit(p: &str) -> Option<Unit> {
    Some(match p {
        "Milliseconds" => Unit::Milliseconds,
        "Seconds" => Unit::Seconds,
        "Minutes" => Unit::Minutes,
        "Hours" => Unit::Hours,
        "Days" => Unit::Days,
        _ => return None,
    })
}

/// Whether `(want)x` is allowed for an `x` of `from`.
fn castable(from: &Ty, want: &Ty) -> bool {
    if from.fits(want) || *from == Ty::Object {
        return true;
    }
    match (from, want) {
        (a, b) if a.is_numeric() && b.is_numeric() => true,
        (Ty::Char, Ty::Int) | (Ty::Int, Ty::Char) => true,
        (Ty::JToken | Ty::JObject | Ty::JArray, w) => json_scalar(w),
        _ => false,
    }
}

fn hint_convert(from: &Ty, want: &Ty) -> String {
    match (from, want) {
        (Ty::Object, _) => format!("cast it: `({want})value`"),
        (Ty::Array(_), Ty::Str) => {
            "pick one element ([0], First()) or join them: string.Join(\",\", values)".into()
        }
        (_, Ty::Str) => "convert with .ToString()".into(),
        (Ty::Str, Ty::Int) => "parse it: int.Parse(text)".into(),
        (Ty::Str, Ty::Long) => "parse it: long.Parse(text)".into(),
        (Ty::Str, Ty::Bool) => "parse it: bool.Parse(text), or compare: text == \"true\"".into(),
        (Ty::Str, Ty::Jwt) => "decode it: text.AsJwt()".into(),
        (Ty::Str, Ty::JObject) => "parse it: JObject.Parse(text)".into(),
        (Ty::Str, Ty::Bytes) => "encode it: Encoding.UTF8.GetBytes(text)".into(),
        _ => format!("give a {want} here"),
    }
}

fn hint_compare(a: &Ty, b: &Ty) -> String {
    match (a, b) {
        (Ty::Str, t) | (t, Ty::Str) if t.is_numeric() => {
            "parse the text (int.Parse(text)) or compare text with text".into()
        }
        (Ty::Str, Ty::Str) => {
            "compare strings with == or string.Compare is not supported; use Equals".into()
        }
        _ => "compare values of one type".into(),
    }
}

fn members_of(t: &Ty) -> String {
    let list = match t {
        Ty::Str => {
            "Length, ToLower, ToUpper, Trim, TrimStart, TrimEnd, StartsWith, EndsWith, Contains, Equals, IndexOf, LastIndexOf, Split, Substring, Replace, PadLeft, PadRight, AsJwt, TryParseJwt, ToString"
        }
        Ty::Jwt => {
            "Id, Issuer, Subject, Audiences, ExpirationTime, NotBefore, IssuedAt, Algorithm, Type, Claims"
        }
        Ty::Headers | Ty::Dict(_) => {
            "GetValueOrDefault, ContainsKey, TryGetValue, Count, [key], and LINQ (Where, Select, Any, All, First, FirstOrDefault, Count, OrderBy, Contains)"
        }
        Ty::Array(_) | Ty::Bytes => {
            "Length, [index], and LINQ (Where, Select, Any, All, First, FirstOrDefault, Count, OrderBy, Contains)"
        }
        Ty::JObject | Ty::JToken | Ty::JArray => {
            "[name], [index], Value<T>(), ContainsKey, Count, ToString, and LINQ"
        }
        Ty::DateTime => {
            "ToString(format), AddSeconds/Minutes/Hours/Days/Milliseconds, Subtract, Year, Month, Day, Hour, Minute, Second, Millisecond"
        }
        Ty::TimeSpan => {
            "TotalMilliseconds, TotalSeconds, TotalMinutes, TotalHours, TotalDays, ToString"
        }
        Ty::Pair(_) => "Key, Value",
        Ty::Response => "StatusCode, StatusReason, Headers, Body",
        Ty::RegexMatch => "Success, Value, Groups",
        Ty::RegexGroup => "Success, Value",
        Ty::ResponseBody => "As<string>(), As<JObject>(), As<JArray>(), As<JToken>()",
        Ty::Guid => "ToString(format)",
        _ => "ToString",
    };
    format!("members of {t} here: {list}")
}
