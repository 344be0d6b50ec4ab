//! Printing a tree and parsing the print gives the same tree: for random
//! trees (proptest) and for every expression of the case tables.

use edgegw_policy_expr::{
    ast::{Arg, ArgValue, BinOp, Expr, ExprKind, Source, Span, Stmt, TypeName, UnOp},
    parser, print,
};
use proptest::prelude::*;

fn e(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

/// Identifiers that are not keywords or type names.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("not a keyword or a type", |n| {
        !matches!(
            n.as_str(),
            "true"
                | "false"
                | "null"
                | "new"
                | "var"
                | "out"
                | "if"
                | "else"
                | "return"
                | "for"
                | "foreach"
                | "while"
                | "do"
                | "switch"
                | "try"
                | "throw"
                | "goto"
                | "break"
                | "continue"
                | "using"
        ) && TypeName::from_ident(n).is_none()
    })
}

fn type_name() -> impl Strategy<Value = TypeName> {
    prop_oneof![
        Just(TypeName::String),
        Just(TypeName::Int),
        Just(TypeName::Long),
        Just(TypeName::Bool),
        Just(TypeName::Double),
        Just(TypeName::Jwt),
        Just(TypeName::JObject),
        Just(TypeName::Object),
        Just(TypeName::Array(Box::new(TypeName::String))),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(e(ExprKind::Null)),
        any::<bool>().prop_map(|b| e(ExprKind::Bool(b))),
        (0..=i32::MAX).prop_map(|i| e(ExprKind::Int(i))),
        (0..=i64::MAX).prop_map(|i| e(ExprKind::Long(i))),
        (0.0..1e300f64).prop_map(|d| e(ExprKind::Double(d))),
        any::<char>().prop_map(|c| e(ExprKind::Char(c))),
        ".{0,12}".prop_map(|s| e(ExprKind::Str(s))),
        name().prop_map(|n| e(ExprKind::Name(n))),
    ]
}

fn binop() -> impl Strategy<Value = BinOp> {
    prop_oneof![
        Just(BinOp::Add),
        Just(BinOp::Sub),
        Just(BinOp::Mul),
        Just(BinOp::Div),
        Just(BinOp::Rem),
        Just(BinOp::Eq),
        Just(BinOp::Ne),
        Just(BinOp::Lt),
        Just(BinOp::Le),
        Just(BinOp::Gt),
        Just(BinOp::Ge),
        Just(BinOp::And),
        Just(BinOp::Or),
        Just(BinOp::Coalesce),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let b = |x: Expr| Box::new(x);
        let arg = prop_oneof![
            4 => inner.clone().prop_map(|x| Arg { name: None, value: ArgValue::Expr(x) }),
            1 => (name(), inner.clone()).prop_map(|(n, x)| Arg { name: Some(n), value: ArgValue::Expr(x) }),
            1 => name().prop_map(|n| Arg { name: None, value: ArgValue::OutDecl(None, n, Span::default()) }),
            1 => (type_name(), name()).prop_map(|(t, n)| Arg { name: None, value: ArgValue::OutDecl(Some(t), n, Span::default()) }),
            1 => name().prop_map(|n| Arg { name: None, value: ArgValue::Out(n, Span::default()) }),
        ];
        prop_oneof![
            (inner.clone(), name(), any::<bool>()).prop_map(move |(r, n, ns)| e(ExprKind::Member {
                recv: b(r),
                name: n,
                type_args: vec![],
                null_safe: ns
            })),
            (inner.clone(), name(), prop::collection::vec(type_name(), 0..2), any::<bool>(), prop::collection::vec(arg, 0..3))
                .prop_map(move |(r, n, targs, ns, args)| e(ExprKind::Call {
                    callee: b(e(ExprKind::Member { recv: b(r), name: n, type_args: targs, null_safe: ns })),
                    args
                })),
            (inner.clone(), inner.clone()).prop_map(move |(r, i)| e(ExprKind::Index { recv: b(r), index: b(i) })),
            inner.clone().prop_map(move |x| e(ExprKind::Unary(UnOp::Not, b(x)))),
            inner.clone().prop_map(move |x| e(ExprKind::Unary(UnOp::Neg, b(x)))),
            (binop(), inner.clone(), inner.clone()).prop_map(move |(op, x, y)| e(ExprKind::Binary(op, b(x), b(y)))),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(move |(c, x, y)| e(ExprKind::Cond(b(c), b(x), b(y)))),
            (type_name(), inner.clone()).prop_map(move |(t, x)| e(ExprKind::Cast(t, b(x)))),
            (name(), inner.clone()).prop_map(move |(p, x)| e(ExprKind::Lambda { param: p, body: b(x) })),
            (prop::sample::select(vec!["JObject", "JProperty", "JArray"]), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(move |(c, xs)| e(ExprKind::New {
                    class: c.to_string(),
                    args: xs.into_iter().map(|x| Arg { name: None, value: ArgValue::Expr(x) }).collect()
                })),
            (proptest::option::of(type_name().prop_filter("one rank", |t| !matches!(t, TypeName::Array(_)))), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(move |(t, xs)| e(ExprKind::NewArray { elem: t, items: xs })),
        ]
    })
}

fn stmts() -> impl Strategy<Value = Vec<Stmt>> {
    let sp = Span::default;
    let simple = prop_oneof![
        (name(), expr()).prop_map(move |(n, x)| Stmt::Decl {
            ty: None,
            name: n,
            init: Some(x),
            span: sp()
        }),
        (type_name(), name(), proptest::option::of(expr())).prop_map(move |(t, n, x)| Stmt::Decl {
            ty: Some(t),
            name: n,
            init: x,
            span: sp()
        }),
        (name(), expr()).prop_map(move |(n, x)| Stmt::Assign {
            name: n,
            value: x,
            span: sp()
        }),
        expr().prop_map(move |x| Stmt::Return(x, sp())),
    ];
    let stmt = simple.prop_recursive(3, 12, 3, move |inner| {
        (
            expr(),
            prop::collection::vec(inner.clone(), 0..3),
            proptest::option::of(prop::collection::vec(inner, 0..3)),
        )
            .prop_map(move |(c, t, o)| Stmt::If {
                cond: c,
                then: t,
                otherwise: o,
                span: sp(),
            })
    });
    prop::collection::vec(stmt, 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn expressions_print_and_reparse_to_the_same_tree(x in expr()) {
        let tree = Source::Expr(x);
        let printed = print::source(&tree);
        let back = parser::parse(&printed);
        prop_assert_eq!(back.as_ref().ok(), Some(&tree), "printed: {}\nparsed: {:?}", printed, back);
    }

    #[test]
    fn blocks_print_and_reparse_to_the_same_tree(body in stmts()) {
        let tree = Source::Block(body);
        let printed = print::source(&tree);
        let back = parser::parse(&printed);
        prop_assert_eq!(back.as_ref().ok(), Some(&tree), "printed: {}\nparsed: {:?}", printed, back);
    }
}

/// The expressions of the case tables, written by hand: parse, print,
/// parse again — the same tree.
#[test]
fn case_tables_reparse_to_the_same_tree() {
    let text = include_str!("cases.rs");
    let mut checked = 0;
    for line in text.lines() {
        let Some(start) = line.find("(\"@") else {
            continue;
        };
        // The Rust string literal that holds the expression.
        let lit = &line[start + 1..];
        let Some(end) = lit[1..].find("\", ").or_else(|| lit[1..].find("\",")) else {
            continue;
        };
        let Ok(src) = serde_json::from_str::<String>(&lit[..end + 2]) else {
            continue;
        };
        let Ok(tree) = parser::parse(&src) else {
            continue;
        };
        let printed = print::source(&tree);
        assert_eq!(
            parser::parse(&printed).ok(),
            Some(tree),
            "{src}\nprinted: {printed}"
        );
        checked += 1;
    }
    assert!(
        checked > 150,
        "only {checked} expressions found in cases.rs"
    );
}

/// Found by the fuzzer: 38 nested `!` parse, and so must their print
/// (which parenthesises each); nesting past the limit is refused both ways.
#[test]
fn nesting_limit_is_the_same_for_the_print() {
    // `context.Request.Headers.GetVa` is four levels.
    for n in [38, 60, 61, 200] {
        let src = format!("@({}context.Request.Headers.GetVa)", "!".repeat(n));
        let tree = parser::parse(&src);
        if n <= 60 {
            let tree = tree.unwrap_or_else(|e| panic!("{n}: {e}"));
            let printed = print::source(&tree);
            assert_eq!(parser::parse(&printed).ok(), Some(tree), "{n}");
        } else {
            assert!(tree.unwrap_err().problem.contains("nests deeper"), "{n}");
        }
    }
    let deep = format!("@({}1{})", "(".repeat(5000), ")".repeat(5000));
    assert!(
        parser::parse(&deep)
            .unwrap_err()
            .problem
            .contains("nests deeper")
    );
}
