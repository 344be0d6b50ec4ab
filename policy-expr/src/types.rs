//! Static types of the checker.

use std::fmt;

use crate::ast::TypeName;

#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// The `null` literal: converts to any reference type.
    Null,
    /// `object`: what `context.Variables` holds; cast it to use it.
    Object,
    Bool,
    Int,
    Long,
    Double,
    Char,
    Str,
    DateTime,
    TimeSpan,
    Guid,
    JObject,
    JArray,
    JToken,
    /// `new JProperty(name, value)`: an argument of `new JObject(...)`.
    JProperty,
    Jwt,
    /// `IResponse`: a response kept in a variable (`send-request`).
    Response,
    /// The `Body` of an `IResponse`: read with `As<T>()`.
    ResponseBody,
    /// `byte[]`
    Bytes,
    Array(Box<Ty>),
    /// Headers: a dictionary of string to string[].
    Headers,
    /// A read-only dictionary of string to the given type (Variables:
    /// object; Query and MatchedParameters: string; Claims: string[]).
    Dict(Box<Ty>),
    /// `KeyValuePair<string, T>` while enumerating a dictionary.
    Pair(Box<Ty>),
    /// An object of the context model, e.g. `context.Request`.
    Model(crate::model::Kind),
    /// A type used for its static members: `string`, `Math`, ...
    Static(crate::builtins::Class),
    /// `StringComparison.*`
    Comparison,
    /// `Formatting.*` (JSON indentation)
    Formatting,
    /// `Encoding.UTF8`
    Encoding,
    /// `RegexOptions.*` (flags, as an int).
    RegexOptions,
    /// `StringSplitOptions.*` (flags, as an int).
    SplitOptions,
    /// `new Random()` (the value is nothing: every call draws afresh).
    Random,
    /// A hash algorithm (its key, for HMACs, is the value).
    Hash(crate::ast::HashKind),
    /// A `Regex.Match` result.
    RegexMatch,
    /// Its `Groups`.
    RegexGroups,
    /// One group.
    RegexGroup,
    /// A caught exception (`catch (Exception e)`): its `Message`.
    Exception,
    /// A statement with no value.
    Void,
}

impl Ty {
    pub fn from_name(name: &TypeName) -> Ty {
        match name {
            TypeName::String => Ty::Str,
            TypeName::Int => Ty::Int,
            TypeName::Long => Ty::Long,
            TypeName::Bool => Ty::Bool,
            TypeName::Double => Ty::Double,
            TypeName::Char => Ty::Char,
            TypeName::Object => Ty::Object,
            TypeName::DateTime => Ty::DateTime,
            TypeName::TimeSpan => Ty::TimeSpan,
            TypeName::Guid => Ty::Guid,
            TypeName::Jwt => Ty::Jwt,
            TypeName::IResponse => Ty::Response,
            TypeName::JObject => Ty::JObject,
            TypeName::JArray => Ty::JArray,
            TypeName::JToken => Ty::JToken,
            TypeName::Hash(k) => Ty::Hash(*k),
            TypeName::Bytes => Ty::Bytes,
            TypeName::Array(inner) if **inner == TypeName::Char => Ty::Array(Box::new(Ty::Char)),
            TypeName::Array(inner) => Ty::Array(Box::new(Ty::from_name(inner))),
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Long | Ty::Double)
    }

    pub fn is_json(&self) -> bool {
        matches!(self, Ty::JObject | Ty::JArray | Ty::JToken)
    }

    /// Whether `null` is a value of this type (C#'s reference types; the
    /// value types here are never null).
    pub fn nullable(&self) -> bool {
        !matches!(
            self,
            Ty::Bool
                | Ty::Int
                | Ty::Long
                | Ty::Double
                | Ty::Char
                | Ty::DateTime
                | Ty::TimeSpan
                | Ty::Guid
                | Ty::Void
        )
    }

    /// Whether a value of `self` may be used where `want` is expected
    /// (identity and C#'s implicit conversions).
    pub fn fits(&self, want: &Ty) -> bool {
        if self == want || *want == Ty::Object && *self != Ty::Void {
            return true;
        }
        match (self, want) {
            (Ty::Null, w) => w.nullable(),
            (Ty::Int, Ty::Long | Ty::Double) | (Ty::Long, Ty::Double) => true,
            (Ty::JObject | Ty::JArray | Ty::JProperty, Ty::JToken) => true,
            (Ty::Array(a), Ty::Array(b)) => a.fits(b),
            _ => false,
        }
    }

    /// The type both branches of `?:` or `??` have.
    pub fn unify(a: &Ty, b: &Ty) -> Option<Ty> {
        if b.fits(a) && *a != Ty::Null {
            Some(a.clone())
        } else if a.fits(b) {
            Some(b.clone())
        } else if a.is_json() && b.is_json() {
            Some(Ty::JToken)
        } else {
            None
        }
    }

    /// What enumerating a value of this type yields (LINQ's element).
    pub fn element(&self) -> Option<Ty> {
        Some(match self {
            Ty::Array(e) => (**e).clone(),
            Ty::JArray | Ty::JToken => Ty::JToken,
            Ty::JObject => Ty::Pair(Box::new(Ty::JToken)),
            Ty::Headers => Ty::Pair(Box::new(Ty::Array(Box::new(Ty::Str)))),
            Ty::Dict(v) => Ty::Pair(v.clone()),
            Ty::Bytes => Ty::Int,
            _ => return None,
        })
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Null => f.write_str("null"),
            Ty::Object => f.write_str("object"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Long => f.write_str("long"),
            Ty::Double => f.write_str("double"),
            Ty::Char => f.write_str("char"),
            Ty::Str => f.write_str("string"),
            Ty::DateTime => f.write_str("DateTime"),
            Ty::TimeSpan => f.write_str("TimeSpan"),
            Ty::Guid => f.write_str("Guid"),
            Ty::JObject => f.write_str("JObject"),
            Ty::JArray => f.write_str("JArray"),
            Ty::JToken => f.write_str("JToken"),
            Ty::JProperty => f.write_str("JProperty"),
            Ty::Jwt => f.write_str("Jwt"),
            Ty::Response => f.write_str("IResponse"),
            Ty::ResponseBody => f.write_str("IMessageBody"),
            Ty::Bytes => f.write_str("byte[]"),
            Ty::Array(e) => write!(f, "{e}[]"),
            Ty::Headers => f.write_str("IReadOnlyDictionary<string, string[]>"),
            Ty::Dict(v) => write!(f, "IReadOnlyDictionary<string, {v}>"),
            Ty::Pair(v) => write!(f, "KeyValuePair<string, {v}>"),
            Ty::Model(k) => write!(f, "{}", k.name()),
            Ty::Static(c) => write!(f, "{}", c.name()),
            Ty::Comparison => f.write_str("StringComparison"),
            Ty::Formatting => f.write_str("Formatting"),
            Ty::Encoding => f.write_str("Encoding"),
            Ty::RegexOptions => f.write_str("RegexOptions"),
            Ty::SplitOptions => f.write_str("StringSplitOptions"),
            Ty::Hash(k) => f.write_str(k.name()),
            Ty::Random => f.write_str("Random"),
            Ty::RegexMatch => f.write_str("Match"),
            Ty::RegexGroups => f.write_str("GroupCollection"),
            Ty::RegexGroup => f.write_str("Group"),
            Ty::Exception => f.write_str("Exception"),
            Ty::Void => f.write_str("void"),
        }
    }
}
