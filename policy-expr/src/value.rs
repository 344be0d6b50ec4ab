//! Run-time values. Text read from the request is borrowed, not copied:
//! comparing a header with a literal allocates nothing.

use std::{borrow::Cow, fmt, sync::Arc};

use time::{Duration, OffsetDateTime};

use crate::jwt::Jwt;

#[derive(Clone, Debug, Default)]
pub enum Value<'a> {
    #[default]
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Char(char),
    Str(Cow<'a, str>),
    DateTime(OffsetDateTime),
    TimeSpan(Duration),
    Guid(u128),
    /// JObject, JArray or JToken.
    Json(Arc<serde_json::Value>),
    Jwt(Arc<Jwt>),
    /// A `Regex.Match` result, or one of its groups.
    Match(Arc<crate::regex::Found>),
    /// A response `send-request` kept (`IResponse`).
    Response(Arc<KeptResponse>),
    Bytes(Arc<Vec<u8>>),
    Array(Arc<Vec<Value<'a>>>),
    /// A key and its value while enumerating a dictionary.
    Pair(Arc<(Value<'a>, Value<'a>)>),
    /// A dictionary read from the context (headers, query, variables,
    /// claims), named by where it lives; looked up in place.
    Dict(Dict<'a>),
}

/// Dictionaries of the context, borrowed where they live.
#[derive(Clone, Debug)]
pub enum Dict<'a> {
    Headers(&'a http::HeaderMap),
    Pairs(&'a [(String, String)]),
    Variables(&'a crate::Variables<'a>),
    Claims(Arc<Jwt>),
    /// The headers of a kept response.
    ResponseHeaders(Arc<KeptResponse>),
}

/// A whole response: what `send-request` keeps in its variable.
#[derive(Debug)]
pub struct KeptResponse {
    pub status: i32,
    pub reason: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl<'a> Value<'a> {
    pub fn str(s: &'a str) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }

    pub fn string(s: String) -> Value<'a> {
        Value::Str(Cow::Owned(s))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value with nothing borrowed, to keep past the request (a
    /// `set-variable`).
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Long(i) => Value::Long(i),
            Value::Double(d) => Value::Double(d),
            Value::Char(c) => Value::Char(c),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::DateTime(d) => Value::DateTime(d),
            Value::TimeSpan(d) => Value::TimeSpan(d),
            Value::Guid(g) => Value::Guid(g),
            Value::Json(j) => Value::Json(j),
            Value::Jwt(j) => Value::Jwt(j),
            Value::Response(r) => Value::Response(r),
            Value::Match(m) => Value::Match(m),
            Value::Bytes(b) => Value::Bytes(b),
            Value::Array(a) => {
                Value::Array(Arc::new(a.iter().map(|v| v.clone().into_owned()).collect()))
            }
            Value::Pair(p) => Value::Pair(Arc::new((
                p.0.clone().into_owned(),
                p.1.clone().into_owned(),
            ))),
            // A dictionary of the request becomes its entries.
            Value::Dict(d) => Value::Array(Arc::new(
                crate::eval::dict_entries(&d)
                    .into_iter()
                    .map(|v| v.into_owned())
                    .collect(),
            )),
        }
    }
}

/// Equality as C#'s `==` for the types the checker lets meet: strings
/// by content (ordinal), numbers by value across int/long/double.
impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (Char(a), Char(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Int(_) | Long(_), Int(_) | Long(_)) => self.to_long() == other.to_long(),
            (Int(_) | Long(_) | Double(_), Int(_) | Long(_) | Double(_)) => {
                self.to_double() == other.to_double()
            }
            (DateTime(a), DateTime(b)) => a == b,
            (TimeSpan(a), TimeSpan(b)) => a == b,
            (Guid(a), Guid(b)) => a == b,
            (Json(a), Json(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Jwt(a), Jwt(b)) => Arc::ptr_eq(a, b),
            (Response(a), Response(b)) => Arc::ptr_eq(a, b),
            (Match(a), Match(b)) => a == b,
            _ => false,
        }
    }
}

impl Value<'_> {
    pub(crate) fn to_long(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(i64::from(*i)),
            Value::Long(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn to_double(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(f64::from(*i)),
            Value::Long(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }
}

/// `ToString()` as .NET writes each type.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Long(i) => write!(f, "{i}"),
            Value::Double(d) => f.write_str(&crate::dotnet::double_to_string(*d)),
            Value::Char(c) => write!(f, "{c}"),
            Value::Str(s) => f.write_str(s),
            Value::DateTime(d) => f.write_str(&crate::dotnet::datetime_default(*d)),
            Value::TimeSpan(d) => f.write_str(&crate::dotnet::timespan_to_string(*d)),
            Value::Guid(g) => f.write_str(&crate::dotnet::guid_to_string(*g)),
            Value::Json(j) => f.write_str(&crate::dotnet::json_to_string(j, true)),
            Value::Jwt(_) => f.write_str("Jwt"),
            Value::Response(_) => f.write_str("IResponse"),
            Value::Match(m) => f.write_str(m.value()),
            Value::Bytes(_) => f.write_str("System.Byte[]"),
            Value::Array(_) => f.write_str("System.String[]"),
            Value::Pair(p) => write!(f, "[{}, {}]", p.0, p.1),
            Value::Dict(_) => f.write_str("System.Collections.Generic.Dictionary"),
        }
    }
}
