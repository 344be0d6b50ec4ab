//! Types used for their static members (`string.Format`, `Math.Max`,
//! `DateTime.UtcNow`, ...).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    String,
    Int,
    Long,
    Bool,
    Double,
    Convert,
    Encoding,
    DateTime,
    TimeSpan,
    Guid,
    Math,
    JObject,
    JArray,
    JToken,
    StringComparison,
    Formatting,
    WebUtility,
    Uri,
    Regex,
    RegexOptions,
    StringSplitOptions,
    BitConverter,
    /// `SHA256.Create()`, ...
    Hash(crate::ast::HashKind),
}

impl Class {
    pub fn from_ident(name: &str) -> Option<Class> {
        Some(match name {
            "string" | "String" => Class::String,
            "int" | "Int32" => Class::Int,
            "long" | "Int64" => Class::Long,
            "bool" | "Boolean" => Class::Bool,
            "double" | "Double" => Class::Double,
            "Convert" => Class::Convert,
            "Encoding" => Class::Encoding,
            "DateTime" => Class::DateTime,
            "TimeSpan" => Class::TimeSpan,
            "Guid" => Class::Guid,
            "Math" => Class::Math,
            "JObject" => Class::JObject,
            "JArray" => Class::JArray,
            "JToken" => Class::JToken,
            "StringComparison" => Class::StringComparison,
            "Formatting" => Class::Formatting,
            "WebUtility" => Class::WebUtility,
            "Uri" => Class::Uri,
            "Regex" => Class::Regex,
            "RegexOptions" => Class::RegexOptions,
            "StringSplitOptions" => Class::StringSplitOptions,
            "BitConverter" => Class::BitConverter,
            other => Class::Hash(crate::ast::HashKind::from_ident(other)?),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::String => "string",
            Class::Int => "int",
            Class::Long => "long",
            Class::Bool => "bool",
            Class::Double => "double",
            Class::Convert => "Convert",
            Class::Encoding => "Encoding",
            Class::DateTime => "DateTime",
            Class::TimeSpan => "TimeSpan",
            Class::Guid => "Guid",
            Class::Math => "Math",
            Class::JObject => "JObject",
            Class::JArray => "JArray",
            Class::JToken => "JToken",
            Class::StringComparison => "StringComparison",
            Class::Formatting => "Formatting",
            Class::WebUtility => "WebUtility",
            Class::Uri => "Uri",
            Class::Regex => "Regex",
            Class::RegexOptions => "RegexOptions",
            Class::StringSplitOptions => "StringSplitOptions",
            Class::BitConverter => "BitConverter",
            Class::Hash(k) => k.name(),
        }
    }

    /// Its members, for the refusal of an unknown one.
    pub fn members(self) -> &'static str {
        match self {
            Class::String => {
                "Empty, IsNullOrEmpty, IsNullOrWhiteSpace, Format, Concat, Join, Equals"
            }
            Class::Int | Class::Long | Class::Bool | Class::Double => "Parse, TryParse",
            Class::Convert => {
                "ToBase64String, FromBase64String, ToInt32, ToInt64, ToDouble, ToBoolean, ToString"
            }
            Class::Encoding => "UTF8 (GetBytes, GetString)",
            Class::DateTime => "UtcNow, Now",
            Class::TimeSpan => "FromMilliseconds, FromSeconds, FromMinutes, FromHours, FromDays",
            Class::Guid => "NewGuid",
            Class::Math => "Min, Max, Abs, Round, Floor, Ceiling, Pow",
            Class::JObject | Class::JArray | Class::JToken => "Parse",
            Class::StringComparison => {
                "Ordinal, OrdinalIgnoreCase, InvariantCulture, InvariantCultureIgnoreCase, CurrentCulture, CurrentCultureIgnoreCase"
            }
            Class::Formatting => "None, Indented",
            Class::WebUtility => "UrlEncode, UrlDecode, HtmlEncode, HtmlDecode",
            Class::Uri => "EscapeDataString, UnescapeDataString",
            Class::Regex => "IsMatch, Match, Replace",
            Class::RegexOptions => {
                "None, IgnoreCase, Multiline, Singleline, IgnorePatternWhitespace, Compiled, CultureInvariant"
            }
            Class::StringSplitOptions => "None, RemoveEmptyEntries, TrimEntries",
            Class::BitConverter => "ToString",
            Class::Hash(_) => {
                "Create (SHA1, SHA256, SHA512); HMACs are made with new HMACSHA256(key)"
            }
        }
    }
}

/// `StringSplitOptions.*` as .NET's flags.
pub fn split_option(name: &str) -> Option<i32> {
    Some(match name {
        "None" => 0,
        "RemoveEmptyEntries" => 1,
        "TrimEntries" => 2,
        _ => return None,
    })
}

/// Namespaces a type may be qualified with (`System.Text.Encoding.UTF8`,
/// `System.Net.WebUtility.UrlEncode(...)`): the name after one of these
/// is looked up as if it stood alone.
pub fn is_namespace(name: &str) -> bool {
    matches!(
        name,
        "System"
            | "Text"
            | "Net"
            | "Newtonsoft"
            | "Json"
            | "Linq"
            | "Collections"
            | "Generic"
            | "RegularExpressions"
            | "Security"
            | "Cryptography"
    )
}

/// `StringComparison.*` as a flag: whether case is ignored.
pub fn comparison(name: &str) -> Option<bool> {
    Some(match name {
        "Ordinal" | "InvariantCulture" | "CurrentCulture" => false,
        "OrdinalIgnoreCase" | "InvariantCultureIgnoreCase" | "CurrentCultureIgnoreCase" => true,
        _ => return None,
    })
}
