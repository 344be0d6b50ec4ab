//! Prints a tree back as source that parses to the same tree: operators
//! are fully parenthesised, literals escaped. Used in messages (the
//! expression at fault, as the checker saw it) and by the round-trip
//! property test.

use std::fmt::Write;

use crate::ast::{Arg, ArgValue, Expr, ExprKind, Source, Stmt, UnOp};

pub fn source(s: &Source) -> String {
    match s {
        Source::Expr(e) => format!("@({})", expr(e)),
        Source::Block(stmts) => {
            let mut out = String::from("@{\n");
            for st in stmts {
                stmt(&mut out, st, 1);
            }
            out.push('}');
            out
        }
    }
}

fn block(out: &mut String, stmts: &[Stmt], depth: usize) {
    out.push_str("{\n");
    for st in stmts {
        stmt(out, st, depth + 1);
    }
    out.push_str(&"    ".repeat(depth));
    out.push('}');
}

fn stmt(out: &mut String, s: &Stmt, depth: usize) {
    out.push_str(&"    ".repeat(depth));
    match s {
        Stmt::Decl { ty, name, init, .. } => {
            match ty {
                Some(t) => write!(out, "{t} {name}"),
                None => write!(out, "var {name}"),
            }
            .expect("writing to a String");
            if let Some(e) = init {
                write!(out, " = {}", expr(e)).expect("writing to a String");
            }
            out.push_str(";\n");
        }
        Stmt::Assign { name, value, .. } => {
            writeln!(out, "{name} = {};", expr(value)).expect("writing to a String")
        }
        Stmt::SetIndex { target, value, .. } => {
            writeln!(out, "{} = {};", expr(target), expr(value)).expect("writing to a String")
        }
        Stmt::Expr(e) => writeln!(out, "{};", expr(e)).expect("writing to a String"),
        Stmt::Return(e, _) => writeln!(out, "return {};", expr(e)).expect("writing to a String"),
        Stmt::If {
            cond,
            then,
            otherwise,
            ..
        } => {
            write!(out, "if ({}) ", expr(cond)).expect("writing to a String");
            block(out, then, depth);
            if let Some(o) = otherwise {
                out.push_str(" else ");
                block(out, o, depth);
            }
            out.push('\n');
        }
        Stmt::Try {
            body,
            name,
            handler,
            ..
        } => {
            out.push_str("try ");
            block(out, body, depth);
            match name {
                Some(n) => write!(out, " catch (Exception {n}) "),
                None => write!(out, " catch "),
            }
            .expect("writing to a String");
            block(out, handler, depth);
            out.push('\n');
        }
        Stmt::Foreach {
            ty,
            name,
            source,
            body,
            ..
        } => {
            match ty {
                Some(t) => write!(out, "foreach ({t} {name} in {}) ", expr(source)),
                None => write!(out, "foreach (var {name} in {}) ", expr(source)),
            }
            .expect("writing to a String");
            block(out, body, depth);
            out.push('\n');
        }
    }
}

pub fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

fn write_expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Null => out.push_str("null"),
        ExprKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ExprKind::Int(i) => write!(out, "{i}").expect("writing to a String"),
        ExprKind::Long(i) => write!(out, "{i}L").expect("writing to a String"),
        ExprKind::Double(d) => write!(out, "{d:?}").expect("writing to a String"),
        ExprKind::Char(c) => {
            out.push('\'');
            escape(out, *c, '\'');
            out.push('\'');
        }
        ExprKind::Str(s) => {
            out.push('"');
            for c in s.chars() {
                escape(out, c, '"');
            }
            out.push('"');
        }
        ExprKind::Name(n) => out.push_str(n),
        ExprKind::Member {
            recv,
            name,
            type_args,
            null_safe,
        } => {
            write_expr(out, recv);
            out.push_str(if *null_safe { "?." } else { "." });
            out.push_str(name);
            if !type_args.is_empty() {
                let args: Vec<String> = type_args.iter().map(|t| t.to_string()).collect();
                write!(out, "<{}>", args.join(", ")).expect("writing to a String");
            }
        }
        ExprKind::Call { callee, args } => {
            write_expr(out, callee);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                arg(out, a);
            }
            out.push(')');
        }
        ExprKind::Index { recv, index } => {
            write_expr(out, recv);
            out.push('[');
            write_expr(out, index);
            out.push(']');
        }
        ExprKind::Unary(op, inner) => {
            out.push_str(match op {
                UnOp::Not => "(!",
                UnOp::Neg => "(-",
            });
            write_expr(out, inner);
            out.push(')');
        }
        ExprKind::Binary(op, a, b) => {
            out.push('(');
            write_expr(out, a);
            write!(out, " {} ", op.symbol()).expect("writing to a String");
            write_expr(out, b);
            out.push(')');
        }
        ExprKind::Cond(c, a, b) => {
            out.push('(');
            write_expr(out, c);
            out.push_str(" ? ");
            write_expr(out, a);
            out.push_str(" : ");
            write_expr(out, b);
            out.push(')');
        }
        ExprKind::Cast(ty, inner) => {
            write!(out, "(({ty})").expect("writing to a String");
            write_expr(out, inner);
            out.push(')');
        }
        ExprKind::Lambda { param, body } => {
            write!(out, "({param} => ").expect("writing to a String");
            write_expr(out, body);
            out.push(')');
        }
        ExprKind::New { class, args } => {
            write!(out, "new {class}(").expect("writing to a String");
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                arg(out, a);
            }
            out.push(')');
        }
        ExprKind::NewArray { elem, items } => {
            match elem {
                Some(t) => write!(out, "new {t}[] {{ ").expect("writing to a String"),
                None => out.push_str("new[] { "),
            }
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, x);
            }
            out.push_str(" }");
        }
    }
}

fn arg(out: &mut String, a: &Arg) {
    if let Some(n) = &a.name {
        write!(out, "{n}: ").expect("writing to a String");
    }
    match &a.value {
        ArgValue::Expr(e) => write_expr(out, e),
        ArgValue::OutDecl(None, n, _) => write!(out, "out var {n}").expect("writing to a String"),
        ArgValue::OutDecl(Some(t), n, _) => {
            write!(out, "out {t} {n}").expect("writing to a String")
        }
        ArgValue::Out(n, _) => write!(out, "out {n}").expect("writing to a String"),
    }
}

fn escape(out: &mut String, c: char, quote: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_control() => write!(out, "\\u{:04x}", u32::from(c)).expect("writing to a String"),
        c => out.push(c),
    }
}
