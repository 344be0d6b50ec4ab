//! The parsed tree, as written: names are not resolved yet (the checker
//! does that). Printing it (`print.rs`) and parsing the print gives the
//! same tree.

use std::fmt;

/// Where a node starts (1-based), for messages. Not part of a node's
/// identity: two trees that differ only in layout compare equal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub line: u32,
    pub column: u32,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Span {
    pub fn new(line: u32, column: u32) -> Span {
        Span { line, column }
    }

    /// This span, for a source that starts at `base` in the document.
    pub fn offset(self, base: (u32, u32)) -> Span {
        if self.line == 1 {
            Span::new(base.0, base.1 + self.column - 1)
        } else {
            Span::new(base.0 + self.line - 1, self.column)
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A type as written in a cast, a declaration or a generic argument.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeName {
    String,
    Int,
    Long,
    Bool,
    Double,
    Char,
    Object,
    DateTime,
    TimeSpan,
    Guid,
    Jwt,
    /// `IResponse`: a response `send-request` kept in a variable.
    IResponse,
    JObject,
    JArray,
    JToken,
    /// `SHA256`, `HMACSHA256`, ... (System.Security.Cryptography).
    Hash(HashKind),
    /// `byte[]`
    Bytes,
    Array(Box<TypeName>),
}

/// The hash algorithms of System.Security.Cryptography the surface has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashKind {
    Sha1,
    Sha256,
    Sha512,
    HmacSha1,
    HmacSha256,
    HmacSha512,
}

impl HashKind {
    pub fn from_ident(name: &str) -> Option<HashKind> {
        Some(match name {
            "SHA1" => HashKind::Sha1,
            "SHA256" => HashKind::Sha256,
            "SHA512" => HashKind::Sha512,
            "HMACSHA1" => HashKind::HmacSha1,
            "HMACSHA256" => HashKind::HmacSha256,
            "HMACSHA512" => HashKind::HmacSha512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            HashKind::Sha1 => "SHA1",
            HashKind::Sha256 => "SHA256",
            HashKind::Sha512 => "SHA512",
            HashKind::HmacSha1 => "HMACSHA1",
            HashKind::HmacSha256 => "HMACSHA256",
            HashKind::HmacSha512 => "HMACSHA512",
        }
    }

    /// Whether it takes a key (`new HMACSHA256(key)`); the others are made
    /// with `SHA256.Create()`.
    pub fn keyed(self) -> bool {
        matches!(
            self,
            HashKind::HmacSha1 | HashKind::HmacSha256 | HashKind::HmacSha512
        )
    }
}

impl TypeName {
    pub fn from_ident(name: &str) -> Option<TypeName> {
        Some(match name {
            "string" | "String" => TypeName::String,
            "int" | "Int32" => TypeName::Int,
            "long" | "Int64" => TypeName::Long,
            "bool" | "Boolean" => TypeName::Bool,
            "double" | "Double" => TypeName::Double,
            "char" | "Char" => TypeName::Char,
            "object" | "Object" => TypeName::Object,
            "DateTime" => TypeName::DateTime,
            "TimeSpan" => TypeName::TimeSpan,
            "Guid" => TypeName::Guid,
            "Jwt" => TypeName::Jwt,
            "IResponse" => TypeName::IResponse,
            "JObject" => TypeName::JObject,
            "JArray" => TypeName::JArray,
            "JToken" => TypeName::JToken,
            other => TypeName::Hash(HashKind::from_ident(other)?),
        })
    }
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TypeName::String => "string",
            TypeName::Int => "int",
            TypeName::Long => "long",
            TypeName::Bool => "bool",
            TypeName::Double => "double",
            TypeName::Char => "char",
            TypeName::Object => "object",
            TypeName::DateTime => "DateTime",
            TypeName::TimeSpan => "TimeSpan",
            TypeName::Guid => "Guid",
            TypeName::Jwt => "Jwt",
            TypeName::IResponse => "IResponse",
            TypeName::JObject => "JObject",
            TypeName::JArray => "JArray",
            TypeName::JToken => "JToken",
            TypeName::Hash(k) => k.name(),
            TypeName::Bytes => "byte[]",
            TypeName::Array(inner) => return write!(f, "{inner}[]"),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Coalesce,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Coalesce => "??",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Char(char),
    Str(String),
    Name(String),
    /// `recv.name<T>` or `recv?.name`.
    Member {
        recv: Box<Expr>,
        name: String,
        type_args: Vec<TypeName>,
        null_safe: bool,
    },
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    Index {
        recv: Box<Expr>,
        index: Box<Expr>,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Cast(TypeName, Box<Expr>),
    Lambda {
        param: String,
        body: Box<Expr>,
    },
    /// `new JObject(...)`, `new JProperty(name, value)`, `new JArray(...)`.
    New {
        class: String,
        args: Vec<Arg>,
    },
    /// `new T[] { a, b }` or `new[] { a, b }`.
    NewArray {
        elem: Option<TypeName>,
        items: Vec<Expr>,
    },
}

/// A call argument: `x`, `name: x`, `out var x`, `out T x` or `out x`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: ArgValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    Expr(Expr),
    /// `out var x` (type `None`) or `out T x`: declares x.
    OutDecl(Option<TypeName>, String, Span),
    /// `out x`: an already declared local.
    Out(String, Span),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `var x = e;`, `T x = e;` or `T x;`.
    Decl {
        ty: Option<TypeName>,
        name: String,
        init: Option<Expr>,
        span: Span,
    },
    Assign {
        name: String,
        value: Expr,
        span: Span,
    },
    /// `x["a"][0] = e;`: changes the JSON in local `x` at that place.
    SetIndex {
        target: Expr,
        value: Expr,
        span: Span,
    },
    Expr(Expr),
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Option<Vec<Stmt>>,
        span: Span,
    },
    Return(Expr, Span),
    /// `try { } catch [(Exception [name])] { }`: any failure of the body
    /// runs the handler, with the message in `name`.
    Try {
        body: Vec<Stmt>,
        name: Option<String>,
        handler: Vec<Stmt>,
        span: Span,
    },
    /// `foreach (var x in e) { }` over anything LINQ enumerates.
    Foreach {
        ty: Option<TypeName>,
        name: String,
        source: Expr,
        body: Vec<Stmt>,
        span: Span,
    },
}

/// A whole policy expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `@(expression)`
    Expr(Expr),
    /// `@{ statements }`
    Block(Vec<Stmt>),
}
