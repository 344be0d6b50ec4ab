//! Checking changes to JSON in local variables (`json_edit.rs` applies
//! them). edgegw keeps a JSON value per variable where C# shares one
//! object between every name that refers to it, so a change is allowed
//! only where no other name could see it: the changed variable holds JSON
//! of its own (parsed, read from a body or made with `new`), no other
//! variable is set from it, and it is not a `foreach` variable.

use std::collections::HashSet;

use super::{Checker, R, err};
use crate::{
    ast::{Arg, ArgValue, BinOp, Expr, ExprKind, Span, Stmt},
    ir::{IrEdit, IrStmt, Node},
    types::Ty,
};

fn is_json(t: &Ty) -> bool {
    matches!(t, Ty::JObject | Ty::JArray | Ty::JToken)
}

/// The variable a place such as `x["a"][0]` or `((JObject)x)["a"]` is in.
pub(super) fn root(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Name(n) => Some(n),
        ExprKind::Index { recv, .. } | ExprKind::Cast(_, recv) => root(recv),
        _ => None,
    }
}

/// The receiver and arguments of a statement `recv.Add(...)`/`Remove(...)`.
fn edit_call(e: &Expr) -> Option<(&Expr, &str, &[Arg])> {
    let ExprKind::Call { callee, args } = &e.kind else {
        return None;
    };
    match &callee.kind {
        ExprKind::Member { recv, name, .. } if matches!(name.as_str(), "Add" | "Remove") => {
            Some((recv, name, args))
        }
        _ => None,
    }
}

/// The names of the variables `stmts` change anywhere inside them.
pub(super) fn edited(stmts: &[Stmt]) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut walk = vec![stmts];
    while let Some(stmts) = walk.pop() {
        for s in stmts {
            match s {
                Stmt::SetIndex { target, .. } => out.extend(root(target).map(str::to_string)),
                Stmt::Expr(e) => {
                    if let Some((recv, ..)) = edit_call(e) {
                        out.extend(root(recv).map(str::to_string));
                    }
                }
                Stmt::If {
                    then, otherwise, ..
                } => {
                    walk.push(then);
                    walk.extend(otherwise.as_deref());
                }
                Stmt::Try { body, handler, .. } => walk.extend([&body[..], &handler[..]]),
                Stmt::Foreach { body, .. } => walk.push(body),
                _ => {}
            }
        }
    }
    out
}

/// Whether `e` makes JSON of its own rather than naming JSON that
/// something else holds.
fn fresh(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Call { .. } | ExprKind::New { .. } | ExprKind::Null => true,
        ExprKind::Cast(_, x) => fresh(x),
        ExprKind::Binary(BinOp::Coalesce, a, b) | ExprKind::Cond(_, a, b) => fresh(a) && fresh(b),
        _ => false,
    }
}

impl Checker {
    /// Refuses `name = value` (a declaration, an assignment or a `foreach`
    /// variable when `value` is `None`) where two names would share JSON
    /// that one of them changes.
    pub(super) fn refuse_shared(
        &self,
        name: &str,
        value: Option<&Expr>,
        ty: &Ty,
        span: Span,
    ) -> R<()> {
        if !is_json(ty) && *ty != Ty::Object {
            return Ok(());
        }
        let hint = "edgegw keeps JSON by value: change it through the one variable that reads or parses it, or copy it with .DeepClone()";
        let Some(value) = value else {
            if self.edited.contains(name) {
                return Err(crate::error::LoadError::new(
                    span,
                    name,
                    format!(
                        "`{name}` is a foreach variable; changing it would change the JSON it was taken from"
                    ),
                    "change the JSON through the variable that holds the whole document, e.g. body[\"items\"][0][\"x\"] = ...",
                ));
            }
            return Ok(());
        };
        if self.edited.contains(name) && !fresh(value) {
            return Err(err(
                value,
                format!("`{name}` is changed below but takes JSON that something else holds"),
                hint,
            ));
        }
        if let Some(r) = root(value).filter(|r| self.edited.contains(*r) && self.local(r).is_some())
        {
            return Err(err(
                value,
                format!("`{name}` would share the JSON of `{r}`, which is changed"),
                hint,
            ));
        }
        Ok(())
    }

    fn local(&self, name: &str) -> Option<(u16, Ty)> {
        self.scope
            .iter()
            .rev()
            .find(|(n, ..)| n == name)
            .map(|(_, slot, ty)| (*slot, ty.clone()))
    }

    /// The local a place is in and the keys that lead there.
    fn place(&mut self, e: &Expr) -> R<(u16, Vec<Node>)> {
        match &e.kind {
            ExprKind::Name(n) => match self.local(n) {
                Some((slot, ty)) if is_json(&ty) => Ok((slot, Vec::new())),
                Some((_, ty)) => Err(err(
                    e,
                    format!("`{n}` holds {ty}, not JSON"),
                    "change JSON held in a variable: var body = context.Request.Body.As<JObject>();",
                )),
                None => Err(err(
                    e,
                    "only JSON held in a local variable can be changed",
                    "read it into one first: var body = context.Request.Body.As<JObject>();",
                )),
            },
            ExprKind::Cast(_, inner) => self.place(inner),
            ExprKind::Index { recv, index } => {
                let (slot, mut path) = self.place(recv)?;
                let (key, kt) = self.expr(index)?;
                if kt != Ty::Str && kt != Ty::Int {
                    return Err(err(
                        index,
                        format!("a JSON index is a string or an int, not {kt}"),
                        "write obj[\"name\"] or arr[0]",
                    ));
                }
                path.push(key);
                Ok((slot, path))
            }
            _ => Err(err(
                e,
                "only JSON held in a local variable can be changed",
                "read it into one first: var body = context.Request.Body.As<JObject>(); body[\"x\"] = ...;",
            )),
        }
    }

    /// `x["a"] = v;`
    pub(super) fn set_index(&mut self, target: &Expr, value: &Expr, span: Span) -> R<IrStmt> {
        if !matches!(target.kind, ExprKind::Index { .. }) {
            return Err(err(
                target,
                "only a variable or an indexer can be assigned",
                "write `name = value;` or `json[\"key\"] = value;`",
            ));
        }
        let (slot, path) = self.place(target)?;
        let (v, t) = self.expr(value)?;
        if t == Ty::Void {
            return Err(err(value, "the expression has no value", "assign a value"));
        }
        Ok(IrStmt::EditJson {
            slot,
            path,
            edit: IrEdit::Set(v),
            span,
        })
    }

    /// `x.Add(...)` or `x.Remove(...)` as a statement, when `x` is JSON;
    /// `None` for any other call.
    pub(super) fn edit_stmt(&mut self, e: &Expr) -> R<Option<IrStmt>> {
        let Some((recv, name, args)) = edit_call(e) else {
            return Ok(None);
        };
        let (_, recv_ty) = self.expr(recv)?;
        if !is_json(&recv_ty) {
            return Ok(None);
        }
        let (slot, path) = self.place(recv)?;
        let mut values = Vec::new();
        for a in args {
            let ArgValue::Expr(x) = &a.value else {
                return Err(err(e, "out arguments are not taken here", "pass values"));
            };
            values.push((x, self.expr(x)?));
        }
        let text = |values: &[(&Expr, (Node, Ty))], i: usize| -> R<Node> {
            let (x, (n, t)) = &values[i];
            if *t != Ty::Str {
                return Err(err(
                    x,
                    format!("a property name is a string, not {t}"),
                    "pass the name as a string",
                ));
            }
            Ok(n.clone())
        };
        let edit = match (name, values.len()) {
            ("Add", 1) => IrEdit::Add(None, values[0].1.0.clone()),
            ("Add", 2) => IrEdit::Add(Some(text(&values, 0)?), values[1].1.0.clone()),
            ("Remove", 1) => IrEdit::RemoveName(text(&values, 0)?),
            ("Remove", 0) => IrEdit::RemoveSelf,
            _ => {
                return Err(err(
                    e,
                    format!("{name} takes other arguments"),
                    "write obj.Add(\"name\", value), obj.Add(new JProperty(...)), arr.Add(value), obj.Remove(\"name\") or token.Remove()",
                ));
            }
        };
        Ok(Some(IrStmt::EditJson {
            slot,
            path,
            edit,
            span: e.span,
        }))
    }
}
