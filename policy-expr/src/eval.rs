//! The evaluator: walks the checked tree against a request's context.
//! No name is looked up and nothing is parsed here; text read from the
//! request or from the expression's literals is borrowed. Failures are
//! `EvalError`s as .NET words them — never a panic.

use std::{borrow::Cow, cmp::Ordering, sync::Arc};

use base64::{Engine, engine::general_purpose::STANDARD};
use time::{Duration, OffsetDateTime};

use crate::{
    ast::Span,
    dotnet,
    error::EvalError,
    ir::{Arith, Body, Cmp, DatePart, Func, IrEdit, IrStmt, Linq, Node, Num, Trim, TryFunc, Unit},
    jwt::Jwt,
    model::{self, BodyOf, Context},
    types::Ty,
    value::{Dict, Value},
};

type R<T> = Result<T, EvalError>;

pub fn run<'a>(body: &'a Body, locals: u16, ctx: &Context<'a>) -> R<Value<'a>> {
    let mut ev = Eval {
        ctx,
        locals: (0..locals).map(|_| Value::Null).collect(),
    };
    match body {
        Body::Expr(n) => ev.node(n),
        Body::Block(stmts) => Ok(ev.block(stmts)?.unwrap_or(Value::Null)),
    }
}

struct Eval<'a, 'c> {
    ctx: &'c Context<'a>,
    locals: Vec<Value<'a>>,
}

fn fail<T>(span: Span, what: impl std::fmt::Display) -> R<T> {
    Err(EvalError::new(span, what))
}

fn truthy(v: &Value<'_>) -> bool {
    matches!(v, Value::Bool(true))
}

fn unit_secs(u: Unit) -> f64 {
    match u {
        Unit::Milliseconds => 0.001,
        Unit::Seconds => 1.0,
        Unit::Minutes => 60.0,
        Unit::Hours => 3600.0,
        Unit::Days => 86_400.0,
    }
}

impl<'a> Eval<'a, '_> {
    fn block(&mut self, stmts: &'a [IrStmt]) -> R<Option<Value<'a>>> {
        for s in stmts {
            match s {
                IrStmt::Set(slot, n) => {
                    let v = self.node(n)?;
                    self.locals[usize::from(*slot)] = v;
                }
                IrStmt::Expr(n) => {
                    self.node(n)?;
                }
                IrStmt::If(c, t, o) => {
                    let branch = if truthy(&self.node(c)?) { t } else { o };
                    if let Some(v) = self.block(branch)? {
                        return Ok(Some(v));
                    }
                }
                IrStmt::Return(n) => return Ok(Some(self.node(n)?)),
                IrStmt::Try(body, slot, handler) => match self.block(body) {
                    Ok(Some(v)) => return Ok(Some(v)),
                    Ok(None) => {}
                    Err(failure) => {
                        if let Some(slot) = slot {
                            let message = failure
                                .message
                                .strip_prefix("Expression evaluation failed. ")
                                .unwrap_or(&failure.message)
                                .to_string();
                            self.locals[usize::from(*slot)] = Value::string(message);
                        }
                        if let Some(v) = self.block(handler)? {
                            return Ok(Some(v));
                        }
                    }
                },
                IrStmt::EditJson {
                    slot,
                    path,
                    edit,
                    span,
                } => self.edit_json(*slot, path, edit, *span)?,
                IrStmt::Foreach(slot, items, body) => {
                    let items = self.node(items)?;
                    if items.is_null() {
                        return Err(EvalError::null(Span::default()));
                    }
                    for item in elements(&items) {
                        self.locals[usize::from(*slot)] = item;
                        if let Some(v) = self.block(body)? {
                            return Ok(Some(v));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// `x["a"] = v;`, `x.Add(...)`, `x.Remove(...)` on local `slot`.
    fn edit_json(&mut self, slot: u16, path: &'a [Node], edit: &'a IrEdit, span: Span) -> R<()> {
        use crate::json_edit::{Edit, Key, apply};
        let mut keys = Vec::with_capacity(path.len());
        for n in path {
            keys.push(match self.node(n)? {
                Value::Int(i) => Key::At(i),
                Value::Str(s) => Key::Name(s.into_owned()),
                _ => return Err(EvalError::null(span)),
            });
        }
        let edit = match edit {
            IrEdit::Set(v) => Edit::Set(to_json(&self.node(v)?)),
            IrEdit::Add(name, v) => {
                let name = match name {
                    Some(n) => match self.node(n)? {
                        Value::Str(s) => Some(s.into_owned()),
                        _ => return Err(EvalError::null(span)),
                    },
                    None => None,
                };
                Edit::Add(name, to_json(&self.node(v)?))
            }
            IrEdit::RemoveName(n) => match self.node(n)? {
                Value::Str(s) => Edit::RemoveName(s.into_owned()),
                _ => return Err(EvalError::null(span)),
            },
            IrEdit::RemoveSelf => Edit::RemoveSelf,
        };
        let Value::Json(json) = &mut self.locals[usize::from(slot)] else {
            return Err(EvalError::null(span));
        };
        apply(Arc::make_mut(json), &keys, edit).or_else(|e| fail(span, e))
    }

    fn node(&mut self, n: &'a Node) -> R<Value<'a>> {
        Ok(match n {
            Node::Lit(v) => v.clone(),
            Node::Str(s) => Value::Str(Cow::Borrowed(s)),
            Node::Local(slot) => self.locals[usize::from(*slot)].clone(),
            Node::Prop {
                prop,
                null_safe,
                span,
            } => match model::read(self.ctx, *prop) {
                Some(v) => v,
                None if *null_safe => Value::Null,
                None => return Err(EvalError::null(*span)),
            },
            Node::Not(a) => match self.node(a)? {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Node::Neg(num, a, span) => match (num, self.node(a)?) {
                (_, Value::Null) => Value::Null,
                (Num::Int, Value::Int(i)) => Value::Int(i.wrapping_neg()),
                (Num::Long, Value::Long(i)) => Value::Long(i.wrapping_neg()),
                (_, v) => Value::Double(
                    -v.to_double()
                        .ok_or_else(|| EvalError::new(*span, "Specified cast is not valid."))?,
                ),
            },
            Node::Arith(op, num, a, b, span) => {
                let (a, b) = (self.node(a)?, self.node(b)?);
                arith(*op, *num, &a, &b, *span)?
            }
            Node::DateArith(op, a, b, span) => {
                let (a, b) = (self.node(a)?, self.node(b)?);
                date_arith(*op, a, b, *span)?
            }
            Node::Concat(a, b) => {
                let (a, b) = (self.node(a)?, self.node(b)?);
                Value::string(format!("{a}{b}"))
            }
            Node::Compare(cmp, a, b) => {
                let (a, b) = (self.node(a)?, self.node(b)?);
                Value::Bool(compare(*cmp, &a, &b))
            }
            Node::And(a, b) => Value::Bool(truthy(&self.node(a)?) && truthy(&self.node(b)?)),
            Node::Or(a, b) => Value::Bool(truthy(&self.node(a)?) || truthy(&self.node(b)?)),
            Node::Coalesce(a, b) => match self.node(a)? {
                Value::Null => self.node(b)?,
                v => v,
            },
            Node::Cond(c, a, b) => {
                if truthy(&self.node(c)?) {
                    self.node(a)?
                } else {
                    self.node(b)?
                }
            }
            Node::Cast(ty, a, span) => {
                let v = self.node(a)?;
                cast(ty, v, *span)?
            }
            Node::Call {
                func,
                recv,
                args,
                null_safe,
                span,
            } => {
                let recv = match recv {
                    None => None,
                    Some(r) => match self.node(r)? {
                        Value::Null if *null_safe => return Ok(Value::Null),
                        Value::Null if !accepts_null(func) => {
                            return Err(EvalError::null(*span));
                        }
                        v => Some(v),
                    },
                };
                // Up to four arguments stay on the stack: a call does not
                // allocate for its arguments.
                let mut small: [Value<'a>; 4] = Default::default();
                if args.len() <= small.len() {
                    for (slot, a) in small.iter_mut().zip(args) {
                        *slot = self.node(a)?;
                    }
                    self.apply(func, recv, &mut small[..args.len()], *span)?
                } else {
                    let mut all = args.iter().map(|a| self.node(a)).collect::<R<Vec<_>>>()?;
                    self.apply(func, recv, &mut all, *span)?
                }
            }
            Node::Try {
                func,
                recv,
                args,
                out,
                span,
            } => {
                let recv = match recv {
                    Some(r) => Some(self.node(r)?),
                    None => None,
                };
                let arg = match args.first() {
                    Some(a) => self.node(a)?,
                    None => Value::Null,
                };
                let got = try_func(func, recv, arg, *span)?;
                let ok = got.is_some();
                self.locals[usize::from(*out)] = got.unwrap_or_else(|| default_of(func));
                Value::Bool(ok)
            }
            Node::Linq {
                op,
                recv,
                slot,
                body,
                null_safe,
                span,
            } => {
                let items = match self.node(recv)? {
                    Value::Null if *null_safe => return Ok(Value::Null),
                    Value::Null => return Err(EvalError::null(*span)),
                    v => elements(&v),
                };
                self.linq(*op, items, *slot, body.as_deref(), *span)?
            }
        })
    }

    fn lambda(&mut self, slot: u16, body: &'a Node, item: &Value<'a>) -> R<Value<'a>> {
        self.locals[usize::from(slot)] = item.clone();
        self.node(body)
    }

    fn linq(
        &mut self,
        op: Linq,
        items: Vec<Value<'a>>,
        slot: u16,
        body: Option<&'a Node>,
        span: Span,
    ) -> R<Value<'a>> {
        let keep = |ev: &mut Self, item: &Value<'a>| -> R<bool> {
            match body {
                Some(b) => Ok(truthy(&ev.lambda(slot, b, item)?)),
                None => Ok(true),
            }
        };
        Ok(match op {
            Linq::Where => {
                let mut out = Vec::new();
                for it in items {
                    if keep(self, &it)? {
                        out.push(it);
                    }
                }
                Value::Array(Arc::new(out))
            }
            Linq::Select => {
                let b = body.expect("the checker requires Select's lambda");
                let out = items
                    .iter()
                    .map(|it| self.lambda(slot, b, it))
                    .collect::<R<Vec<_>>>()?;
                Value::Array(Arc::new(out))
            }
            Linq::Any => {
                for it in &items {
                    if keep(self, it)? {
                        return Ok(Value::Bool(true));
                    }
                }
                Value::Bool(false)
            }
            Linq::All => {
                for it in &items {
                    if !keep(self, it)? {
                        return Ok(Value::Bool(false));
                    }
                }
                Value::Bool(true)
            }
            Linq::Count => {
                let mut n = 0;
                for it in &items {
                    if keep(self, it)? {
                        n += 1;
                    }
                }
                Value::Int(n)
            }
            Linq::First | Linq::FirstOrDefault => {
                for it in items {
                    if keep(self, &it)? {
                        return Ok(it);
                    }
                }
                if op == Linq::First {
                    return fail(span, "Sequence contains no matching element");
                }
                Value::Null
            }
            Linq::OrderBy | Linq::OrderByDescending => {
                let b = body.expect("the checker requires OrderBy's lambda");
                let mut keyed = Vec::with_capacity(items.len());
                for it in items {
                    let k = self.lambda(slot, b, &it)?;
                    keyed.push((k, it));
                }
                keyed.sort_by(|a, b| order(&a.0, &b.0));
                if op == Linq::OrderByDescending {
                    keyed.reverse();
                }
                Value::Array(Arc::new(keyed.into_iter().map(|(_, v)| v).collect()))
            }
            Linq::Contains => {
                let b = body.expect("the checker requires Contains's value");
                let want = self.node(b)?;
                Value::Bool(items.iter().any(|it| match (it, &want) {
                    (Value::Pair(p), w) => p.0 == *w,
                    (it, w) => it == w,
                }))
            }
            Linq::ToArray => Value::Array(Arc::new(items)),
        })
    }

    fn apply(
        &mut self,
        func: &'a Func,
        recv: Option<Value<'a>>,
        args: &mut [Value<'a>],
        span: Span,
    ) -> R<Value<'a>> {
        let recv = recv.unwrap_or(Value::Null);
        let take = |args: &mut [Value<'a>], i: usize| std::mem::take(&mut args[i]);
        fn s<'v>(v: &'v Value<'_>) -> Option<&'v str> {
            v.as_str()
        }
        let null_arg = || EvalError::new(span, "Value cannot be null.");
        Ok(match func {
            Func::IsNullOrEmpty => Value::Bool(s(&args[0]).is_none_or(str::is_empty)),
            Func::IsNullOrWhiteSpace => {
                Value::Bool(s(&args[0]).is_none_or(|t| t.trim().is_empty()))
            }
            Func::StrEqualsStatic => {
                let ic = args.get(2).is_some_and(truthy);
                Value::Bool(match (s(&args[0]), s(&args[1])) {
                    (Some(a), Some(b)) => str_eq(a, b, ic),
                    (None, None) => true,
                    _ => false,
                })
            }
            Func::Format => {
                let Some(f) = s(&args[0]) else {
                    return Err(null_arg());
                };
                let f = f.to_string();
                Value::string(
                    dotnet::string_format(&f, &args[1..]).map_err(|m| EvalError::new(span, m))?,
                )
            }
            Func::Concat => {
                let mut out = String::new();
                let parts: Vec<Value<'a>> = match args {
                    [Value::Array(items)] => items.to_vec(),
                    _ => args.to_vec(),
                };
                for p in &parts {
                    out.push_str(&p.to_string());
                }
                Value::string(out)
            }
            Func::Join => {
                let sep = args[0].to_string();
                let parts: Vec<String> = match &args[1..] {
                    [Value::Array(items)] => items.iter().map(|v| v.to_string()).collect(),
                    rest => rest.iter().map(|v| v.to_string()).collect(),
                };
                Value::string(parts.join(&sep))
            }
            Func::Length => Value::Int(len32(s(&recv).unwrap_or_default().chars().count())),
            Func::ToLower => Value::string(s(&recv).unwrap_or_default().to_lowercase()),
            Func::ToUpper => Value::string(s(&recv).unwrap_or_default().to_uppercase()),
            Func::Trim(kind) => {
                let Value::Str(text) = recv else {
                    return Err(EvalError::null(span));
                };
                let chars: Vec<char> = args
                    .iter()
                    .filter_map(|a| match a {
                        Value::Char(c) => Some(*c),
                        _ => None,
                    })
                    .collect();
                let pat = |c: char| {
                    if chars.is_empty() {
                        c.is_whitespace()
                    } else {
                        chars.contains(&c)
                    }
                };
                match text {
                    Cow::Borrowed(t) => Value::str(match kind {
                        Trim::Both => t.trim_matches(pat),
                        Trim::Start => t.trim_start_matches(pat),
                        Trim::End => t.trim_end_matches(pat),
                    }),
                    Cow::Owned(t) => Value::string(
                        match kind {
                            Trim::Both => t.trim_matches(pat),
                            Trim::Start => t.trim_start_matches(pat),
                            Trim::End => t.trim_end_matches(pat),
                        }
                        .to_string(),
                    ),
                }
            }
            Func::StartsWith | Func::EndsWith | Func::Contains | Func::StrEquals => {
                let text = s(&recv).unwrap_or_default();
                let ic = args.get(1).is_some_and(truthy);
                let Some(other) = s(&args[0]) else {
                    if *func == Func::StrEquals {
                        return Ok(Value::Bool(false));
                    }
                    return Err(null_arg());
                };
                Value::Bool(match func {
                    Func::StartsWith => starts_with(text, other, ic),
                    Func::EndsWith => ends_with(text, other, ic),
                    Func::Contains => find(text, other, ic).is_some(),
                    _ => str_eq(text, other, ic),
                })
            }
            Func::IndexOf | Func::LastIndexOf => {
                let text = s(&recv).unwrap_or_default();
                let ic = args.get(1).is_some_and(truthy);
                let needle: Cow<'_, str> = match &args[0] {
                    Value::Char(c) => Cow::Owned(c.to_string()),
                    Value::Str(t) => Cow::Borrowed(t.as_ref()),
                    _ => return Err(null_arg()),
                };
                let at = if *func == Func::IndexOf {
                    find(text, &needle, ic)
                } else {
                    rfind(text, &needle, ic)
                };
                Value::Int(at.map_or(-1, |b| len32(text[..b].chars().count())))
            }
            Func::Split { count, options } => {
                let text = s(&recv).unwrap_or_default();
                let mut rest = &args[..];
                let flags = if *options {
                    let (last, before) = rest.split_last().expect("checked");
                    rest = before;
                    int(last)
                } else {
                    0
                };
                let limit = if *count {
                    let (last, before) = rest.split_last().expect("checked");
                    rest = before;
                    let n = int(last);
                    if n < 0 {
                        return fail(span, "Count cannot be less than zero. (Parameter 'count')");
                    }
                    Some(n as usize)
                } else {
                    None
                };
                let mut seps: Vec<String> = Vec::new();
                for a in rest {
                    match a {
                        Value::Char(c) => seps.push(c.to_string()),
                        Value::Str(t) => seps.push(t.to_string()),
                        Value::Array(cs) => seps.extend(cs.iter().map(|c| c.to_string())),
                        _ => {}
                    }
                }
                Value::Array(Arc::new(
                    split(text, &seps, limit, flags & 1 != 0, flags & 2 != 0)
                        .into_iter()
                        .map(|p| Value::string(p.to_string()))
                        .collect(),
                ))
            }
            Func::Substring => {
                let text = s(&recv).unwrap_or_default();
                let n = text.chars().count() as i64;
                let start = i64::from(int(&args[0]));
                let len = match args.get(1) {
                    Some(l) => i64::from(int(l)),
                    None => n - start,
                };
                if start < 0 || len < 0 || start + len > n {
                    return fail(
                        span,
                        "Index and length must refer to a location within the string. (Parameter 'length')",
                    );
                }
                Value::string(
                    text.chars()
                        .skip(start as usize)
                        .take(len as usize)
                        .collect(),
                )
            }
            Func::Replace => {
                let text = s(&recv).unwrap_or_default();
                match (&args[0], &args[1]) {
                    (Value::Char(a), Value::Char(b)) => {
                        Value::string(text.replace(*a, &b.to_string()))
                    }
                    (Value::Str(a), b) => {
                        if a.is_empty() {
                            return fail(
                                span,
                                "The value cannot be an empty string. (Parameter 'oldValue')",
                            );
                        }
                        Value::string(text.replace(a.as_ref(), s(b).unwrap_or_default()))
                    }
                    _ => return Err(null_arg()),
                }
            }
            Func::PadLeft | Func::PadRight => {
                let text = s(&recv).unwrap_or_default();
                let width = int(&args[0]).max(0) as usize;
                let pad = match args.get(1) {
                    Some(Value::Char(c)) => *c,
                    _ => ' ',
                };
                let n = text.chars().count();
                let fill: String = std::iter::repeat_n(pad, width.saturating_sub(n)).collect();
                Value::string(if *func == Func::PadLeft {
                    format!("{fill}{text}")
                } else {
                    format!("{text}{fill}")
                })
            }
            Func::CharAt => {
                let text = s(&recv).unwrap_or_default();
                let i = int(&args[0]);
                match usize::try_from(i).ok().and_then(|i| text.chars().nth(i)) {
                    Some(c) => Value::Char(c),
                    None => return fail(span, "Index was outside the bounds of the array."),
                }
            }
            Func::AsJwt => match Jwt::decode(s(&recv).unwrap_or_default()) {
                Some(j) => Value::Jwt(Arc::new(j)),
                None => Value::Null,
            },
            Func::ToString => match recv {
                Value::Str(t) => Value::Str(t),
                v => Value::string(v.to_string()),
            },
            Func::Parse(ty) => {
                let Some(text) = s(&args[0]) else {
                    return Err(null_arg());
                };
                parse_as(ty, text).ok_or_else(|| EvalError::new(span, parse_message(ty, text)))?
            }
            Func::ConvertTo(ty) => convert_to(ty, take(args, 0), span)?,
            Func::ToBase64 => match &args[0] {
                Value::Bytes(b) => Value::string(STANDARD.encode(b.as_slice())),
                _ => return Err(null_arg()),
            },
            Func::FromBase64 => {
                let Some(text) = s(&args[0]) else {
                    return Err(null_arg());
                };
                match STANDARD.decode(text.trim()) {
                    Ok(b) => Value::Bytes(Arc::new(b)),
                    Err(_) => {
                        return fail(
                            span,
                            "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two padding characters, or an illegal character among the padding characters.",
                        );
                    }
                }
            }
            Func::Utf8GetBytes => match s(&args[0]) {
                Some(t) => Value::Bytes(Arc::new(t.as_bytes().to_vec())),
                None => return Err(null_arg()),
            },
            Func::Utf8GetString => match &args[0] {
                Value::Bytes(b) => Value::string(String::from_utf8_lossy(b).into_owned()),
                _ => return Err(null_arg()),
            },
            Func::UrlEncode
            | Func::UrlDecode
            | Func::HtmlEncode
            | Func::HtmlDecode
            | Func::EscapeDataString
            | Func::UnescapeDataString => {
                let Some(text) = s(&args[0]) else {
                    // WebUtility gives null for null; Uri throws.
                    return match func {
                        Func::EscapeDataString | Func::UnescapeDataString => Err(null_arg()),
                        _ => Ok(Value::Null),
                    };
                };
                Value::string(match func {
                    Func::UrlEncode => dotnet::url_encode(text),
                    Func::UrlDecode => dotnet::url_decode(text),
                    Func::HtmlEncode => dotnet::html_encode(text),
                    Func::HtmlDecode => dotnet::html_decode(text),
                    Func::EscapeDataString => dotnet::escape_data_string(text),
                    _ => dotnet::unescape_data_string(text),
                })
            }
            Func::NewJProperty => {
                let Some(name) = s(&args[0]) else {
                    return Err(null_arg());
                };
                let mut m = serde_json::Map::new();
                m.insert(name.to_string(), to_json(&args[1]));
                Value::Json(Arc::new(serde_json::Value::Object(m)))
            }
            Func::NewJObject => {
                let mut m = serde_json::Map::new();
                for p in args.iter() {
                    let Value::Json(p) = p else {
                        return Err(null_arg());
                    };
                    for (k, v) in p.as_object().into_iter().flatten() {
                        if m.insert(k.clone(), v.clone()).is_some() {
                            return fail(
                                span,
                                format!(
                                    "Can not add property {k} to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object."
                                ),
                            );
                        }
                    }
                }
                Value::Json(Arc::new(serde_json::Value::Object(m)))
            }
            Func::NewJArray => {
                let mut items = Vec::new();
                for a in args.iter() {
                    // Like Newtonsoft, an enumerable argument adds its items.
                    match a {
                        Value::Array(xs) => items.extend(xs.iter().map(to_json)),
                        Value::Json(j) if j.is_array() => {
                            items.extend(j.as_array().into_iter().flatten().cloned())
                        }
                        v => items.push(to_json(v)),
                    }
                }
                Value::Json(Arc::new(serde_json::Value::Array(items)))
            }
            Func::NewArray => Value::Array(Arc::new(args.iter_mut().map(std::mem::take).collect())),
            Func::UtcNow => Value::DateTime(OffsetDateTime::now_utc()),
            Func::DtFormat => {
                let Value::DateTime(d) = recv else {
                    return Err(EvalError::null(span));
                };
                let f = s(&args[0]).unwrap_or_default();
                Value::string(dotnet::datetime_format(d, f).map_err(|_| {
                    EvalError::new(span, "Input string was not in a correct format.")
                })?)
            }
            Func::DtAdd(unit) => {
                let Value::DateTime(d) = recv else {
                    return Err(EvalError::null(span));
                };
                let secs = args[0].to_double().unwrap_or_default() * unit_secs(*unit);
                let add = Duration::checked_seconds_f64(secs);
                match add.and_then(|a| d.checked_add(a)) {
                    Some(d) => Value::DateTime(d),
                    None => {
                        return fail(
                            span,
                            "The added or subtracted value results in an un-representable DateTime.",
                        );
                    }
                }
            }
            Func::DtPart(part) => {
                let Value::DateTime(d) = recv else {
                    return Err(EvalError::null(span));
                };
                Value::Int(match part {
                    DatePart::Year => d.year(),
                    DatePart::Month => i32::from(u8::from(d.month())),
                    DatePart::Day => i32::from(d.day()),
                    DatePart::Hour => i32::from(d.hour()),
                    DatePart::Minute => i32::from(d.minute()),
                    DatePart::Second => i32::from(d.second()),
                    DatePart::Millisecond => i32::from(d.millisecond()),
                })
            }
            Func::TsFrom(unit) => {
                let secs = args[0].to_double().unwrap_or_default() * unit_secs(*unit);
                match Duration::checked_seconds_f64(secs) {
                    Some(d) => Value::TimeSpan(d),
                    None => {
                        return fail(
                            span,
                            "TimeSpan overflowed because the duration is too long.",
                        );
                    }
                }
            }
            Func::TsTotal(unit) => {
                let Value::TimeSpan(d) = recv else {
                    return Err(EvalError::null(span));
                };
                Value::Double(d.as_seconds_f64() / unit_secs(*unit))
            }
            Func::NewGuid => Value::Guid(dotnet::new_guid()),
            Func::RandomNext => {
                let (min, max) = match args.len() {
                    0 => (0, i32::MAX),
                    1 => (0, int(&args[0])),
                    _ => (int(&args[0]), int(&args[1])),
                };
                if min > max {
                    return fail(
                        span,
                        "'minValue' cannot be greater than maxValue. (Parameter 'minValue')",
                    );
                }
                if max < 0 {
                    return fail(
                        span,
                        "'maxValue' must be greater than or equal to zero. (Parameter 'maxValue')",
                    );
                }
                let span_len = (i64::from(max) - i64::from(min)) as u64;
                Value::Int(if span_len == 0 {
                    min
                } else {
                    (i64::from(min) + (dotnet::random_u64() % span_len) as i64) as i32
                })
            }
            Func::RandomDouble => {
                Value::Double((dotnet::random_u64() >> 11) as f64 / (1u64 << 53) as f64)
            }
            Func::HashCode => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                recv.to_string().hash(&mut h);
                Value::Int(h.finish() as i32)
            }
            Func::BitConverterToString => {
                let Value::Bytes(bytes) = &args[0] else {
                    return Err(EvalError::null(span));
                };
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
                Value::string(hex.join("-"))
            }
            Func::ComputeHash(kind) => {
                let (Value::Bytes(key), Value::Bytes(data)) = (&recv, &args[0]) else {
                    return Err(EvalError::null(span));
                };
                Value::Bytes(Arc::new(crate::digest::compute(*kind, key, data)))
            }
            Func::GuidFormat => {
                let Value::Guid(g) = recv else {
                    return Err(EvalError::null(span));
                };
                match dotnet::guid_format(g, s(&args[0]).unwrap_or_default()) {
                    Some(t) => Value::string(t),
                    None => {
                        return fail(
                            span,
                            "Format string can be only \"D\", \"d\", \"N\", \"n\", \"P\", \"p\", \"B\", \"b\", \"X\" or \"x\".",
                        );
                    }
                }
            }
            Func::Min(num) | Func::Max(num) => {
                let (a, b) = (&args[0], &args[1]);
                let less = order(a, b) != Ordering::Greater;
                let pick_a = if matches!(func, Func::Min(_)) {
                    less
                } else {
                    !less
                };
                let _ = num;
                if pick_a { take(args, 0) } else { take(args, 1) }
            }
            Func::Abs(_) => match &args[0] {
                Value::Int(i) => Value::Int(i.checked_abs().ok_or_else(|| {
                    EvalError::new(
                        span,
                        "Negating the minimum value of a twos complement number is invalid.",
                    )
                })?),
                Value::Long(i) => Value::Long(i.checked_abs().ok_or_else(|| {
                    EvalError::new(
                        span,
                        "Negating the minimum value of a twos complement number is invalid.",
                    )
                })?),
                v => Value::Double(v.to_double().unwrap_or_default().abs()),
            },
            Func::Round => {
                let x = args[0].to_double().unwrap_or_default();
                let digits = args.get(1).map_or(0, int);
                if !(0..=15).contains(&digits) {
                    return fail(
                        span,
                        "Rounding digits must be between 0 and 15, inclusive. (Parameter 'digits')",
                    );
                }
                let p = 10f64.powi(digits);
                Value::Double((x * p).round_ties_even() / p)
            }
            Func::Floor => Value::Double(args[0].to_double().unwrap_or_default().floor()),
            Func::Ceiling => Value::Double(args[0].to_double().unwrap_or_default().ceil()),
            Func::Pow => Value::Double(
                args[0]
                    .to_double()
                    .unwrap_or_default()
                    .powf(args[1].to_double().unwrap_or_default()),
            ),
            Func::JsonParse(ty) => {
                let Some(text) = s(&args[0]) else {
                    return Err(null_arg());
                };
                let v: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| EvalError::new(span, format!("Error parsing JSON: {e}")))?;
                json_kind(ty, v, span)?
            }
            Func::JsonIndex => {
                let Value::Json(j) = recv else {
                    return Err(EvalError::null(span));
                };
                match (&*j, &args[0]) {
                    (serde_json::Value::Object(m), Value::Str(k)) => match m.get(k.as_ref()) {
                        Some(v) => Value::Json(Arc::new(v.clone())),
                        None => Value::Null,
                    },
                    (serde_json::Value::Array(a), Value::Int(i)) => {
                        match usize::try_from(*i).ok().and_then(|i| a.get(i)) {
                            Some(v) => Value::Json(Arc::new(v.clone())),
                            None => {
                                return fail(
                                    span,
                                    "Index was out of range. Must be non-negative and less than the size of the collection. (Parameter 'index')",
                                );
                            }
                        }
                    }
                    (_, Value::Null) => return Err(null_arg()),
                    (v, k) => {
                        return fail(
                            span,
                            format!(
                                "Cannot access child value on {} with key {k}.",
                                json_type(v)
                            ),
                        );
                    }
                }
            }
            Func::JsonValue(ty) => {
                let Value::Json(j) = recv else {
                    return Err(EvalError::null(span));
                };
                let token = match args.first() {
                    Some(Value::Str(k)) => match &*j {
                        serde_json::Value::Object(m) => match m.get(k.as_ref()) {
                            Some(v) => v.clone(),
                            None => return Ok(Value::Null),
                        },
                        v => {
                            return fail(
                                span,
                                format!("Cannot access child value on {}.", json_type(v)),
                            );
                        }
                    },
                    _ => (*j).clone(),
                };
                cast(ty, Value::Json(Arc::new(token)), span)?
            }
            Func::JsonToString => {
                let Value::Json(j) = recv else {
                    return Err(EvalError::null(span));
                };
                let indented = args.first().is_none_or(truthy);
                Value::string(dotnet::json_to_string(&j, indented))
            }
            Func::JsonCount => {
                let Value::Json(j) = recv else {
                    return Err(EvalError::null(span));
                };
                Value::Int(len32(match &*j {
                    serde_json::Value::Array(a) => a.len(),
                    serde_json::Value::Object(m) => m.len(),
                    _ => 0,
                }))
            }
            Func::JsonContainsKey => {
                let Value::Json(j) = recv else {
                    return Err(EvalError::null(span));
                };
                let k = s(&args[0]).unwrap_or_default();
                Value::Bool(j.as_object().is_some_and(|m| m.contains_key(k)))
            }
            Func::JwtClaim(c) => with_jwt(recv, span, |j| {
                j.claim_str(c).map(|t| Value::string(t.into()))
            })?,
            Func::JwtHeader(h) => with_jwt(recv, span, |j| {
                j.header_str(h).map(|t| Value::string(t.into()))
            })?,
            Func::JwtAudiences => with_jwt(recv, span, |j| {
                Some(Value::Array(Arc::new(
                    j.audiences().into_iter().map(Value::string).collect(),
                )))
            })?,
            Func::JwtDate(c) => with_jwt(recv, span, |j| j.date(c).map(Value::DateTime))?,
            Func::JwtClaims => match recv {
                Value::Jwt(j) => Value::Dict(Dict::Claims(j)),
                _ => return Err(EvalError::null(span)),
            },
            Func::DictGet(ty) => {
                let Value::Dict(d) = recv else {
                    return Err(EvalError::null(span));
                };
                let key = s(&args[0]).ok_or_else(null_arg)?;
                match dict_get(&d, key, true) {
                    Some(v) if *ty == Ty::Object || !v.is_null() => {
                        let v = if matches!(v, Value::Json(_)) && *ty != Ty::Object && !ty.is_json()
                        {
                            cast(ty, v, span)?
                        } else {
                            v
                        };
                        check_type(ty, v, span)?
                    }
                    _ => args.get_mut(1).map(std::mem::take).unwrap_or_default(),
                }
            }
            Func::DictContainsKey => {
                let Value::Dict(d) = recv else {
                    return Err(EvalError::null(span));
                };
                Value::Bool(dict_get(&d, s(&args[0]).ok_or_else(null_arg)?, false).is_some())
            }
            Func::DictIndex => {
                let Value::Dict(d) = recv else {
                    return Err(EvalError::null(span));
                };
                let key = s(&args[0]).ok_or_else(null_arg)?;
                match dict_get(&d, key, false) {
                    Some(v) => v,
                    None => {
                        return fail(
                            span,
                            format!("The given key '{key}' was not present in the dictionary."),
                        );
                    }
                }
            }
            Func::DictCount => {
                let Value::Dict(d) = recv else {
                    return Err(EvalError::null(span));
                };
                Value::Int(len32(dict_entries(&d).len()))
            }
            Func::PairKey | Func::PairValue => match recv {
                Value::Pair(p) => {
                    if *func == Func::PairKey {
                        p.0.clone()
                    } else {
                        p.1.clone()
                    }
                }
                _ => return Err(EvalError::null(span)),
            },
            Func::ArrLength => Value::Int(len32(match &recv {
                Value::Array(a) => a.len(),
                Value::Bytes(b) => b.len(),
                _ => return Err(EvalError::null(span)),
            })),
            Func::ArrIndex => {
                let i = usize::try_from(int(&args[0])).ok();
                let got = match (&recv, i) {
                    (Value::Array(a), Some(i)) => a.get(i).cloned(),
                    (Value::Bytes(b), Some(i)) => b.get(i).map(|x| Value::Int(i32::from(*x))),
                    _ => None,
                };
                got.ok_or_else(|| {
                    EvalError::new(span, "Index was outside the bounds of the array.")
                })?
            }
            Func::BodyAs(of, ty) => {
                let body = match of {
                    BodyOf::Request => self.ctx.request.body,
                    BodyOf::Response => self.ctx.response.and_then(|r| r.body),
                };
                body_as(body.unwrap_or_default(), ty, span)?
            }
            Func::ResponseBodyAs(ty) => match &recv {
                Value::Response(r) => body_as(&r.body, ty, span)?.into_owned(),
                _ => return Err(EvalError::null(span)),
            },
            Func::ResponseStatus | Func::ResponseReason | Func::ResponseHeaders => {
                let Value::Response(r) = recv else {
                    return Err(EvalError::null(span));
                };
                match func {
                    Func::ResponseStatus => Value::Int(r.status),
                    Func::ResponseReason => Value::string(r.reason.clone()),
                    _ => Value::Dict(Dict::ResponseHeaders(r)),
                }
            }
            Func::RegexIsMatch(p) | Func::RegexMatch(p) | Func::RegexReplace(p) => {
                let input = s(&args[0]).ok_or_else(null_arg)?;
                let compiled;
                let pattern = match p {
                    Some(p) => p,
                    None => {
                        let replace = matches!(func, Func::RegexReplace(_));
                        let options = args.get(if replace { 3 } else { 2 }).map_or(0, int);
                        let text = s(&args[1]).ok_or_else(null_arg)?;
                        compiled = crate::regex::Pattern::compile(text, options)
                            .map_err(|m| EvalError::new(span, m))?;
                        &compiled
                    }
                };
                match func {
                    Func::RegexIsMatch(_) => Value::Bool(pattern.is_match(input)),
                    Func::RegexMatch(_) => Value::Match(Arc::new(pattern.first(input))),
                    _ => {
                        let with = s(&args[2]).ok_or_else(null_arg)?;
                        Value::string(pattern.replace(input, with))
                    }
                }
            }
            Func::MatchSuccess | Func::MatchValue | Func::MatchGroups | Func::MatchGroup => {
                let Value::Match(m) = &recv else {
                    return Err(EvalError::null(span));
                };
                match func {
                    Func::MatchSuccess => Value::Bool(m.success()),
                    Func::MatchValue => Value::string(m.value().to_string()),
                    Func::MatchGroups => Value::Match(m.clone()),
                    _ => Value::Match(Arc::new(match &args[0] {
                        Value::Int(i) => m.group(usize::try_from(*i).ok(), None),
                        other => m.group(None, other.as_str()),
                    })),
                }
            }
            Func::ResponseBody => match recv {
                Value::Response(r) => Value::Response(r),
                _ => return Err(EvalError::null(span)),
            },
        })
    }
}

/// A body read `As<T>()`: text, or JSON of the kind asked for.
fn body_as<'a>(body: &'a [u8], ty: &Ty, span: Span) -> R<Value<'a>> {
    match ty {
        Ty::Str => Ok(Value::Str(String::from_utf8_lossy(body))),
        _ => {
            let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
                EvalError::new(
                    span,
                    format!("Unexpected character encountered while parsing value: {e}"),
                )
            })?;
            json_kind(ty, v, span)
        }
    }
}

/// Methods that take a null receiver without failing.
fn accepts_null(f: &Func) -> bool {
    matches!(f, Func::DictGet(_))
}

fn default_of(f: &TryFunc) -> Value<'static> {
    match f {
        TryFunc::Parse(Ty::Int) => Value::Int(0),
        TryFunc::Parse(Ty::Long) => Value::Long(0),
        TryFunc::Parse(Ty::Double) => Value::Double(0.0),
        TryFunc::Parse(Ty::Bool) => Value::Bool(false),
        _ => Value::Null,
    }
}

fn try_func<'a>(
    f: &TryFunc,
    recv: Option<Value<'a>>,
    arg: Value<'a>,
    span: Span,
) -> R<Option<Value<'a>>> {
    Ok(match f {
        TryFunc::Parse(ty) => arg.as_str().and_then(|t| parse_as(ty, t)),
        TryFunc::Jwt => match recv {
            Some(Value::Str(t)) => Jwt::decode(&t).map(|j| Value::Jwt(Arc::new(j))),
            Some(_) => None,
            None => return Err(EvalError::null(span)),
        },
        TryFunc::GetValue => match recv {
            Some(Value::Dict(d)) => {
                let key = arg
                    .as_str()
                    .ok_or_else(|| EvalError::new(span, "Value cannot be null."))?;
                dict_get(&d, key, false)
            }
            _ => return Err(EvalError::null(span)),
        },
    })
}

fn with_jwt<'a>(
    recv: Value<'a>,
    span: Span,
    f: impl FnOnce(&Jwt) -> Option<Value<'a>>,
) -> R<Value<'a>> {
    match recv {
        Value::Jwt(j) => Ok(f(&j).unwrap_or(Value::Null)),
        _ => Err(EvalError::null(span)),
    }
}

fn int(v: &Value<'_>) -> i32 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

fn len32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A value as a JSON token, as Newtonsoft's `JToken.FromObject` gives it
/// for the types of the surface.
fn to_json(v: &Value<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Long(i) => J::from(*i),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::Json(j) => (**j).clone(),
        Value::Array(xs) => J::Array(xs.iter().map(to_json).collect()),
        Value::Bytes(b) => J::String(STANDARD.encode(b.as_slice())),
        other => J::String(other.to_string()),
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Object(_) => "Newtonsoft.Json.Linq.JObject",
        serde_json::Value::Array(_) => "Newtonsoft.Json.Linq.JArray",
        _ => "Newtonsoft.Json.Linq.JValue",
    }
}

fn json_kind<'a>(ty: &Ty, v: serde_json::Value, span: Span) -> R<Value<'a>> {
    let ok = match ty {
        Ty::JObject => v.is_object(),
        Ty::JArray => v.is_array(),
        _ => true,
    };
    if !ok {
        return fail(
            span,
            format!(
                "Error reading {ty} from JsonReader: the value is {}.",
                json_type(&v)
            ),
        );
    }
    Ok(Value::Json(Arc::new(v)))
}

/// A value from a dictionary of `object` asked for as `ty`.
fn check_type<'a>(ty: &Ty, v: Value<'a>, span: Span) -> R<Value<'a>> {
    let ok = match (ty, &v) {
        (Ty::Object, _) | (_, Value::Null) => true,
        (Ty::Str, Value::Str(_)) | (Ty::Bool, Value::Bool(_)) | (Ty::Int, Value::Int(_)) => true,
        (Ty::Long, Value::Long(_) | Value::Int(_)) | (Ty::Double, Value::Double(_)) => true,
        (Ty::Jwt, Value::Jwt(_))
        | (Ty::Response, Value::Response(_))
        | (Ty::Guid, Value::Guid(_))
        | (Ty::DateTime, Value::DateTime(_)) => true,
        (t, Value::Json(_)) if t.is_json() => true,
        (Ty::Array(_), Value::Array(_)) => true,
        (Ty::Str, Value::Array(_)) => true,
        _ => false,
    };
    if !ok {
        return fail(
            span,
            format!(
                "Unable to cast object of type '{}' to type '{}'.",
                type_name(&v),
                ty
            ),
        );
    }
    Ok(match (ty, v) {
        (Ty::Long, Value::Int(i)) => Value::Long(i64::from(i)),
        (Ty::Str, Value::Array(a)) => Value::string(
            a.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        (_, v) => v,
    })
}

/// The .NET type name of a value, for cast messages.
fn type_name(v: &Value<'_>) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "System.Boolean",
        Value::Int(_) => "System.Int32",
        Value::Long(_) => "System.Int64",
        Value::Double(_) => "System.Double",
        Value::Char(_) => "System.Char",
        Value::Str(_) => "System.String",
        Value::DateTime(_) => "System.DateTime",
        Value::TimeSpan(_) => "System.TimeSpan",
        Value::Guid(_) => "System.Guid",
        Value::Json(j) => json_type(j),
        Value::Jwt(_) => "Jwt",
        Value::Match(_) => "System.Text.RegularExpressions.Match",
        Value::Response(_) => "IResponse",
        Value::Bytes(_) => "System.Byte[]",
        Value::Array(_) => "System.String[]",
        Value::Pair(_) => "KeyValuePair",
        Value::Dict(_) => "IReadOnlyDictionary",
    }
}

/// `(ty)v`.
fn cast<'a>(ty: &Ty, v: Value<'a>, span: Span) -> R<Value<'a>> {
    use serde_json::Value as J;
    let bad = |v: &Value<'_>| {
        EvalError::new(
            span,
            format!(
                "Unable to cast object of type '{}' to type '{ty}'.",
                type_name(v)
            ),
        )
    };
    Ok(match (ty, v) {
        (Ty::Object, v) => v,
        (_, Value::Null) if ty.nullable() => Value::Null,
        (_, Value::Null) => return Err(EvalError::null(span)),
        (Ty::Str, Value::Str(s)) => Value::Str(s),
        (Ty::Int, Value::Int(i)) => Value::Int(i),
        (Ty::Int, Value::Long(i)) => Value::Int(i as i32),
        (Ty::Int, Value::Double(d)) => Value::Int(d as i32),
        (Ty::Int, Value::Char(c)) => Value::Int(u32::from(c) as i32),
        (Ty::Char, Value::Int(i)) => Value::Char(char::from_u32(i as u32).unwrap_or('\u{fffd}')),
        (Ty::Long, Value::Int(i)) => Value::Long(i64::from(i)),
        (Ty::Long, Value::Long(i)) => Value::Long(i),
        (Ty::Long, Value::Double(d)) => Value::Long(d as i64),
        (Ty::Double, v @ (Value::Int(_) | Value::Long(_) | Value::Double(_))) => {
            Value::Double(v.to_double().unwrap_or_default())
        }
        (Ty::Bool, Value::Bool(b)) => Value::Bool(b),
        (Ty::Jwt, Value::Jwt(j)) => Value::Jwt(j),
        (Ty::Response, Value::Response(r)) => Value::Response(r),
        (Ty::JObject | Ty::JArray | Ty::JToken, Value::Json(j)) => {
            let ok = match ty {
                Ty::JObject => j.is_object(),
                Ty::JArray => j.is_array(),
                _ => true,
            };
            if !ok {
                return Err(bad(&Value::Json(j)));
            }
            Value::Json(j)
        }
        (Ty::Str, Value::Json(j)) => match &*j {
            J::String(s) => Value::string(s.clone()),
            J::Null => Value::Null,
            J::Number(n) => Value::string(n.to_string()),
            J::Bool(b) => Value::string(if *b { "True" } else { "False" }.into()),
            _ => return Err(bad(&Value::Json(j))),
        },
        (Ty::Int | Ty::Long | Ty::Double, Value::Json(j)) => match (&*j, ty) {
            (J::Number(n), Ty::Int) => Value::Int(
                n.as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(|| bad(&Value::Json(j.clone())))?,
            ),
            (J::Number(n), Ty::Long) => {
                Value::Long(n.as_i64().ok_or_else(|| bad(&Value::Json(j.clone())))?)
            }
            (J::Number(n), _) => Value::Double(n.as_f64().unwrap_or_default()),
            (J::String(s), t) => parse_as(t, s)
                .ok_or_else(|| EvalError::new(span, parse_message(t, s)))?
                .into_owned(),
            (J::Null, _) => return Err(EvalError::null(span)),
            _ => return Err(bad(&Value::Json(j))),
        },
        (Ty::Bool, Value::Json(j)) => match &*j {
            J::Bool(b) => Value::Bool(*b),
            J::String(s) => parse_as(&Ty::Bool, s)
                .ok_or_else(|| EvalError::new(span, parse_message(&Ty::Bool, s)))?
                .into_owned(),
            _ => return Err(bad(&Value::Json(j))),
        },
        (Ty::Array(_), v @ Value::Array(_)) => v,
        (Ty::DateTime, v @ Value::DateTime(_))
        | (Ty::TimeSpan, v @ Value::TimeSpan(_))
        | (Ty::Guid, v @ Value::Guid(_)) => v,
        (_, v) => return Err(bad(&v)),
    })
}

fn parse_as(ty: &Ty, text: &str) -> Option<Value<'static>> {
    let t = text.trim();
    Some(match ty {
        Ty::Int => Value::Int(t.parse().ok()?),
        Ty::Long => Value::Long(t.parse().ok()?),
        Ty::Double => Value::Double(t.parse().ok()?),
        Ty::Bool if t.eq_ignore_ascii_case("true") => Value::Bool(true),
        Ty::Bool if t.eq_ignore_ascii_case("false") => Value::Bool(false),
        _ => return None,
    })
}

fn parse_message(ty: &Ty, text: &str) -> String {
    match ty {
        Ty::Bool => format!("String '{text}' was not recognized as a valid Boolean."),
        _ if !text.trim().is_empty()
            && text
                .trim()
                .trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit()) =>
        {
            format!("Value was either too large or too small for an {ty}.")
        }
        _ => format!("The input string '{text}' was not in a correct format."),
    }
}

fn convert_to<'a>(ty: &Ty, v: Value<'a>, span: Span) -> R<Value<'a>> {
    Ok(match (ty, v) {
        (Ty::Str, Value::Null) => Value::string(String::new()),
        (Ty::Str, v) => Value::string(v.to_string()),
        (_, Value::Null) => match ty {
            Ty::Int => Value::Int(0),
            Ty::Long => Value::Long(0),
            Ty::Double => Value::Double(0.0),
            _ => Value::Bool(false),
        },
        (t, Value::Str(s)) => {
            parse_as(t, &s).ok_or_else(|| EvalError::new(span, parse_message(t, &s)))?
        }
        (Ty::Int, Value::Double(d)) => Value::Int(d.round_ties_even() as i32),
        (Ty::Long, Value::Double(d)) => Value::Long(d.round_ties_even() as i64),
        (Ty::Bool, v) if v.to_double().is_some() => Value::Bool(v.to_double() != Some(0.0)),
        (Ty::Int | Ty::Long | Ty::Double, Value::Bool(b)) => {
            cast(ty, Value::Int(i32::from(b)), span)?
        }
        (t, v) => cast(t, v, span)?,
    })
}

fn arith<'a>(op: Arith, num: Num, a: &Value<'a>, b: &Value<'a>, span: Span) -> R<Value<'a>> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let zero = || {
        let divisor_zero = b.to_double() == Some(0.0);
        EvalError::new(
            span,
            if divisor_zero {
                "Attempted to divide by zero."
            } else {
                "Arithmetic operation resulted in an overflow."
            },
        )
    };
    Ok(match num {
        Num::Int => {
            let (x, y) = (int(a), int(b));
            Value::Int(match op {
                Arith::Add => x.wrapping_add(y),
                Arith::Sub => x.wrapping_sub(y),
                Arith::Mul => x.wrapping_mul(y),
                Arith::Div => x.checked_div(y).ok_or_else(zero)?,
                Arith::Rem => x.checked_rem(y).ok_or_else(zero)?,
            })
        }
        Num::Long => {
            let (x, y) = (
                a.to_long().unwrap_or_default(),
                b.to_long().unwrap_or_default(),
            );
            Value::Long(match op {
                Arith::Add => x.wrapping_add(y),
                Arith::Sub => x.wrapping_sub(y),
                Arith::Mul => x.wrapping_mul(y),
                Arith::Div => x.checked_div(y).ok_or_else(zero)?,
                Arith::Rem => x.checked_rem(y).ok_or_else(zero)?,
            })
        }
        Num::Double => {
            let (x, y) = (
                a.to_double().unwrap_or_default(),
                b.to_double().unwrap_or_default(),
            );
            Value::Double(match op {
                Arith::Add => x + y,
                Arith::Sub => x - y,
                Arith::Mul => x * y,
                Arith::Div => x / y,
                Arith::Rem => x % y,
            })
        }
    })
}

fn date_arith<'a>(op: Arith, a: Value<'a>, b: Value<'a>, span: Span) -> R<Value<'a>> {
    let out = match (a, op, b) {
        (Value::Null, ..) | (_, _, Value::Null) => return Ok(Value::Null),
        (Value::DateTime(d), Arith::Add, Value::TimeSpan(t)) => {
            d.checked_add(t).map(Value::DateTime)
        }
        (Value::DateTime(d), Arith::Sub, Value::TimeSpan(t)) => {
            d.checked_sub(t).map(Value::DateTime)
        }
        (Value::DateTime(a), Arith::Sub, Value::DateTime(b)) => Some(Value::TimeSpan(a - b)),
        (Value::TimeSpan(a), Arith::Add, Value::TimeSpan(b)) => {
            a.checked_add(b).map(Value::TimeSpan)
        }
        (Value::TimeSpan(a), Arith::Sub, Value::TimeSpan(b)) => {
            a.checked_sub(b).map(Value::TimeSpan)
        }
        _ => None,
    };
    out.ok_or_else(|| {
        EvalError::new(
            span,
            "The added or subtracted value results in an un-representable DateTime.",
        )
    })
}

/// Ordering of keys (numbers, text, dates); values of other types tie.
fn order(a: &Value<'_>, b: &Value<'_>) -> Ordering {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::DateTime(x), Value::DateTime(y)) => x.cmp(y),
        (Value::TimeSpan(x), Value::TimeSpan(y)) => x.cmp(y),
        (Value::Char(x), Value::Char(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (x, y) => match (x.to_long(), y.to_long()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .to_double()
                .zip(y.to_double())
                .and_then(|(x, y)| x.partial_cmp(&y))
                .unwrap_or(Ordering::Equal),
        },
    }
}

fn compare(cmp: Cmp, a: &Value<'_>, b: &Value<'_>) -> bool {
    match cmp {
        Cmp::Eq => a == b,
        Cmp::Ne => a != b,
        // Lifted: an ordering against null is false.
        _ if a.is_null() || b.is_null() => false,
        Cmp::Lt => order(a, b) == Ordering::Less,
        Cmp::Le => order(a, b) != Ordering::Greater,
        Cmp::Gt => order(a, b) == Ordering::Greater,
        Cmp::Ge => order(a, b) != Ordering::Less,
    }
}

// ---- text, without allocating ----

fn fold(c: char) -> impl Iterator<Item = char> {
    c.to_lowercase()
}

fn str_eq(a: &str, b: &str, ignore_case: bool) -> bool {
    if !ignore_case {
        return a == b;
    }
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().flat_map(fold).eq(b.chars().flat_map(fold))
}

fn starts_with(text: &str, prefix: &str, ic: bool) -> bool {
    if !ic {
        return text.starts_with(prefix);
    }
    text.get(..prefix.len())
        .is_some_and(|t| str_eq(t, prefix, true))
        || (!text.is_ascii() && find(text, prefix, true) == Some(0))
}

fn ends_with(text: &str, suffix: &str, ic: bool) -> bool {
    if !ic {
        return text.ends_with(suffix);
    }
    text.len()
        .checked_sub(suffix.len())
        .and_then(|i| text.get(i..))
        .is_some_and(|t| str_eq(t, suffix, true))
}

/// Byte offset of the first match.
fn find(text: &str, needle: &str, ic: bool) -> Option<usize> {
    if !ic {
        return text.find(needle);
    }
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .find(|&i| {
            let rest = &text[i..];
            let mut r = rest.chars().flat_map(fold);
            needle.chars().flat_map(fold).all(|c| r.next() == Some(c))
        })
}

fn rfind(text: &str, needle: &str, ic: bool) -> Option<usize> {
    if !ic {
        return text.rfind(needle);
    }
    let mut last = None;
    let mut from = 0;
    while let Some(i) = find(&text[from..], needle, true) {
        last = Some(from + i);
        match text[from + i..].chars().next() {
            Some(c) => from += i + c.len_utf8(),
            None => break,
        }
    }
    last
}

/// `Split` with several separators, empties kept (as .NET without options).
/// `string.Split` as .NET does it: at most `limit` pieces (the last keeps
/// the rest), empty ones dropped with `remove_empty`, each trimmed with
/// `trim` (RemoveEmptyEntries, TrimEntries).
fn split<'t>(
    text: &'t str,
    seps: &[String],
    limit: Option<usize>,
    remove_empty: bool,
    trim: bool,
) -> Vec<&'t str> {
    let mut out = Vec::new();
    if limit == Some(0) {
        return out;
    }
    let keep = |piece: &'t str, out: &mut Vec<&'t str>| {
        let piece = if trim { piece.trim() } else { piece };
        if !(remove_empty && piece.is_empty()) {
            out.push(piece);
        }
    };
    let mut start = 0;
    let mut i = 0;
    'scan: while i < text.len() {
        if limit.is_some_and(|l| out.len() + 1 >= l) {
            break;
        }
        for sep in seps.iter().filter(|s| !s.is_empty()) {
            if text[i..].starts_with(sep.as_str()) {
                keep(&text[start..i], &mut out);
                i += sep.len();
                start = i;
                continue 'scan;
            }
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    keep(&text[start..], &mut out);
    out
}

// ---- dictionaries ----

/// A header's values as text: one value is borrowed, several are joined.
fn header_text<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<Value<'a>> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    let text = |v: &'a http::HeaderValue| -> Cow<'a, str> {
        match v.to_str() {
            Ok(t) => Cow::Borrowed(t),
            Err(_) => Cow::Owned(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        }
    };
    let mut out = text(first);
    for more in all {
        let joined = out.into_owned() + "," + &text(more);
        out = Cow::Owned(joined);
    }
    Some(Value::Str(out))
}

fn header_values<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<Value<'a>> {
    let values: Vec<Value<'a>> = headers
        .get_all(name)
        .iter()
        .map(|v| match v.to_str() {
            Ok(t) => Value::str(t),
            Err(_) => Value::string(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        })
        .collect();
    (!values.is_empty()).then(|| Value::Array(Arc::new(values)))
}

/// `d[key]`; `as_text` gives a header's or claim's values as one string
/// (`GetValueOrDefault`) rather than a string[] (the indexer).
fn dict_get<'a>(d: &Dict<'a>, key: &str, as_text: bool) -> Option<Value<'a>> {
    match d {
        // An invalid header name finds nothing (http does not panic on it).
        Dict::Headers(h) => {
            if as_text {
                header_text(h, key)
            } else {
                header_values(h, key)
            }
        }
        Dict::Pairs(p) => p.iter().find(|(k, _)| k == key).map(|(_, v)| Value::str(v)),
        Dict::Variables(vars) => vars.get(key).map(lend),
        Dict::ResponseHeaders(r) => if as_text {
            header_text(&r.headers, key)
        } else {
            header_values(&r.headers, key)
        }
        .map(Value::into_owned),
        Dict::Claims(j) => {
            let values = j.claim_values(key)?;
            Some(if as_text {
                Value::string(values.join(","))
            } else {
                Value::Array(Arc::new(values.into_iter().map(Value::string).collect()))
            })
        }
    }
}

/// A value held by the context, its text borrowed rather than copied.
fn lend<'a>(v: &'a Value<'a>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Borrowed(s)),
        other => other.clone(),
    }
}

/// Every entry of a dictionary, as pairs.
pub(crate) fn dict_entries<'a>(d: &Dict<'a>) -> Vec<Value<'a>> {
    let pair = |k: Value<'a>, v: Value<'a>| Value::Pair(Arc::new((k, v)));
    match d {
        Dict::Headers(h) => h
            .keys()
            .map(|k| {
                pair(
                    Value::str(k.as_str()),
                    header_values(h, k.as_str()).unwrap_or_default(),
                )
            })
            .collect(),
        Dict::Pairs(p) => p
            .iter()
            .map(|(k, v)| pair(Value::str(k), Value::str(v)))
            .collect(),
        Dict::Variables(vars) => vars
            .iter()
            .map(|(k, v)| pair(Value::str(k), v.clone()))
            .collect(),
        Dict::ResponseHeaders(r) => r
            .headers
            .keys()
            .map(|k| {
                pair(
                    Value::string(k.as_str().into()),
                    header_values(&r.headers, k.as_str())
                        .unwrap_or_default()
                        .into_owned(),
                )
            })
            .collect(),
        Dict::Claims(j) => j
            .claims
            .keys()
            .map(|k| {
                let values = j.claim_values(k).unwrap_or_default();
                pair(
                    Value::string(k.clone()),
                    Value::Array(Arc::new(values.into_iter().map(Value::string).collect())),
                )
            })
            .collect(),
    }
}

/// What LINQ enumerates.
fn elements<'a>(v: &Value<'a>) -> Vec<Value<'a>> {
    match v {
        Value::Array(a) => a.to_vec(),
        Value::Bytes(b) => b.iter().map(|x| Value::Int(i32::from(*x))).collect(),
        Value::Dict(d) => dict_entries(d),
        Value::Json(j) => match &**j {
            serde_json::Value::Array(a) => {
                a.iter().map(|x| Value::Json(Arc::new(x.clone()))).collect()
            }
            serde_json::Value::Object(m) => m
                .iter()
                .map(|(k, x)| {
                    Value::Pair(Arc::new((
                        Value::string(k.clone()),
                        Value::Json(Arc::new(x.clone())),
                    )))
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
