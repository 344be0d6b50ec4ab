//! The checked tree the evaluator runs: every name resolved (context
//! members to `Prop`, methods to `Func`, locals to slots), every operator
//! typed. Built once at load; never re-parsed.

use crate::{ast::Span, model::Prop, types::Ty, value::Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Num {
    Int,
    Long,
    Double,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linq {
    Where,
    Select,
    Any,
    All,
    First,
    FirstOrDefault,
    Count,
    OrderBy,
    OrderByDescending,
    Contains,
    ToArray,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
    Days,
}

/// `Trim`, `TrimStart`, `TrimEnd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    Both,
    Start,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatePart {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

/// Built-in functions; a method's receiver is passed before its arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Func {
    // string, static
    IsNullOrEmpty,
    IsNullOrWhiteSpace,
    Format,
    Concat,
    /// `string.Join(sep, array)` or `string.Join(sep, a, b, ...)`.
    Join,
    StrEqualsStatic,
    // string, instance
    Length,
    ToLower,
    ToUpper,
    Trim(Trim),
    StartsWith,
    EndsWith,
    Contains,
    StrEquals,
    IndexOf,
    LastIndexOf,
    /// `Random.Next([min,] [max])`: from the OS's generator.
    RandomNext,
    RandomDouble,
    /// `GetHashCode()` of text or a GUID: a hash (.NET's differs per process too).
    HashCode,
    /// `BitConverter.ToString(bytes)`: `0A-1B-...`.
    BitConverterToString,
    /// The digest of the argument by the receiver's algorithm (its key).
    ComputeHash(crate::ast::HashKind),
    /// Separators, then a count and flags when these are set.
    Split {
        count: bool,
        options: bool,
    },
    Substring,
    Replace,
    CharAt,
    PadLeft,
    PadRight,
    AsJwt,
    /// `ToString()` of any value, .NET's text.
    ToString,
    // parsing and conversion
    Parse(Ty),
    ConvertTo(Ty),
    ToBase64,
    FromBase64,
    Utf8GetBytes,
    Utf8GetString,
    // dates
    UtcNow,
    DtFormat,
    DtAdd(Unit),
    DtPart(DatePart),
    TsFrom(Unit),
    TsTotal(Unit),
    NewGuid,
    GuidFormat,
    // Math
    Min(Num),
    Max(Num),
    Abs(Num),
    Round,
    Floor,
    Ceiling,
    Pow,
    // JSON
    JsonParse(Ty),
    JsonIndex,
    /// `Value<T>()` or `Value<T>(key)`.
    JsonValue(Ty),
    JsonToString,
    JsonCount,
    JsonContainsKey,
    // JWT
    JwtClaim(&'static str),
    JwtHeader(&'static str),
    JwtAudiences,
    JwtDate(&'static str),
    JwtClaims,
    // dictionaries and pairs
    /// `GetValueOrDefault(key[, default])`, converted to the type given.
    DictGet(Ty),
    DictContainsKey,
    DictIndex,
    DictCount,
    PairKey,
    PairValue,
    // arrays
    ArrLength,
    ArrIndex,
    // bodies
    BodyAs(crate::model::BodyOf, Ty),
    // Regex (a literal pattern is compiled at load)
    RegexIsMatch(Option<crate::regex::Pattern>),
    RegexMatch(Option<crate::regex::Pattern>),
    RegexReplace(Option<crate::regex::Pattern>),
    MatchSuccess,
    MatchValue,
    MatchGroups,
    MatchGroup,
    // responses kept by send-request (IResponse)
    ResponseStatus,
    ResponseReason,
    ResponseHeaders,
    /// `r.Body`: the response itself, typed as its body.
    ResponseBody,
    ResponseBodyAs(Ty),
    // construction
    /// `new JProperty(name, value)`: a one-member object.
    NewJProperty,
    /// `new JObject(properties...)`
    NewJObject,
    /// `new JArray(items...)`; one array argument gives its items.
    NewJArray,
    /// `new T[] { ... }`
    NewArray,
    // URLs and HTML
    UrlEncode,
    UrlDecode,
    HtmlEncode,
    HtmlDecode,
    EscapeDataString,
    UnescapeDataString,
}

/// Functions that return a bool and set an `out` variable.
#[derive(Clone, Debug, PartialEq)]
pub enum TryFunc {
    Parse(Ty),
    Jwt,
    GetValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A literal that is not text.
    Lit(Value<'static>),
    /// A text literal, lent to the request's values.
    Str(String),
    Local(u16),
    Prop {
        prop: Prop,
        null_safe: bool,
        span: Span,
    },
    Not(Box<Node>),
    Neg(Num, Box<Node>, Span),
    Arith(Arith, Num, Box<Node>, Box<Node>, Span),
    /// `DateTime ± TimeSpan`, `DateTime - DateTime`, `TimeSpan ± TimeSpan`.
    DateArith(Arith, Box<Node>, Box<Node>, Span),
    Concat(Box<Node>, Box<Node>),
    Compare(Cmp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Coalesce(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Cast(Ty, Box<Node>, Span),
    Call {
        func: Func,
        recv: Option<Box<Node>>,
        args: Vec<Node>,
        null_safe: bool,
        span: Span,
    },
    Try {
        func: TryFunc,
        recv: Option<Box<Node>>,
        args: Vec<Node>,
        out: u16,
        span: Span,
    },
    Linq {
        op: Linq,
        recv: Box<Node>,
        slot: u16,
        /// The lambda's body, or `Contains`'s value.
        body: Option<Box<Node>>,
        null_safe: bool,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum IrStmt {
    Set(u16, Node),
    Expr(Node),
    If(Node, Vec<IrStmt>, Vec<IrStmt>),
    Return(Node),
    /// The body; on a failure the handler, the message in the slot.
    Try(Vec<IrStmt>, Option<u16>, Vec<IrStmt>),
    /// Each element of the node in the slot, then the body.
    Foreach(u16, Node, Vec<IrStmt>),
    /// A change to the JSON in a local, at the place the keys lead to.
    EditJson {
        slot: u16,
        path: Vec<Node>,
        edit: IrEdit,
        span: Span,
    },
}

/// What `EditJson` does there (`json_edit::Edit`, values still to evaluate).
#[derive(Clone, Debug, PartialEq)]
pub enum IrEdit {
    Set(Node),
    Add(Option<Node>, Node),
    RemoveName(Node),
    RemoveSelf,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Expr(Node),
    Block(Vec<IrStmt>),
}
