//! How .NET writes values as text (invariant culture): `ToString()` of
//! numbers, dates, time spans and GUIDs, DateTime format strings,
//! `string.Format` and Newtonsoft's JSON text.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use std::fmt::Write;

use time::{Duration, OffsetDateTime};

pub fn double_to_string(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "∞" } else { "-∞" }.into()
    } else {
        format!("{d}")
    }
}

/// `DateTime.ToString()` in the invariant culture.
pub fn datetime_default(d: OffsetDateTime) -> String {
    datetime_format(d, "G").unwrap_or_default()
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// `DateTime.ToString(format)`: the standard formats o, O, s, u, r, R,
/// d, D, t, T, g, G and custom patterns; `Err` names what is not known.
pub fn datetime_format(d: OffsetDateTime, format: &str) -> Result<String, String> {
    let pattern = match format {
        "o" | "O" => "yyyy-MM-dd'T'HH:mm:ss.fffffffK",
        "s" => "yyyy-MM-dd'T'HH:mm:ss",
        "u" => "yyyy-MM-dd HH:mm:ss'Z'",
        "r" | "R" => "ddd, dd MMM yyyy HH:mm:ss 'GMT'",
        "d" => "MM/dd/yyyy",
        "D" => "dddd, dd MMMM yyyy",
        "t" => "HH:mm",
        "T" => "HH:mm:ss",
        "g" => "MM/dd/yyyy HH:mm",
        "G" | "" => "MM/dd/yyyy HH:mm:ss",
        f if f.chars().count() == 1 => {
            return Err(format!("the date format \"{f}\" is not known"));
        }
        f => f,
    };
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let hour12 = match d.hour() % 12 {
            0 => 12,
            h => h,
        };
        match c {
            'y' => match n {
                1 => write!(out, "{}", d.year() % 100),
                2 => write!(out, "{:02}", d.year() % 100),
                _ => write!(out, "{:0n$}", d.year()),
            }
            .expect("writing to a String"),
            'M' => {
                let m = u8::from(d.month());
                match n {
                    1 => write!(out, "{m}"),
                    2 => write!(out, "{m:02}"),
                    3 => write!(out, "{}", &MONTHS[usize::from(m) - 1][..3]),
                    _ => write!(out, "{}", MONTHS[usize::from(m) - 1]),
                }
                .expect("writing to a String")
            }
            'd' => {
                let wd = usize::from(d.weekday().number_days_from_monday());
                match n {
                    1 => write!(out, "{}", d.day()),
                    2 => write!(out, "{:02}", d.day()),
                    3 => write!(out, "{}", &DAYS[wd][..3]),
                    _ => write!(out, "{}", DAYS[wd]),
                }
                .expect("writing to a String")
            }
            'H' => two(&mut out, d.hour(), n),
            'h' => two(&mut out, hour12, n),
            'm' => two(&mut out, d.minute(), n),
            's' => two(&mut out, d.second(), n),
            'f' | 'F' => {
                let digits = format!("{:09}", d.nanosecond());
                let take = &digits[..n.min(7)];
                if c == 'F' {
                    out.push_str(take.trim_end_matches('0'));
                } else {
                    out.push_str(take);
                }
            }
            't' => out.push_str(
                if d.hour() < 12 { "AM" } else { "PM" }
                    .get(..n.min(2))
                    .unwrap_or(""),
            ),
            'K' | 'z' => {
                let offset = d.offset();
                if c == 'K' && offset.is_utc() {
                    out.push('Z');
                } else {
                    let (h, m, _) = offset.as_hms();
                    let sign = if offset.is_negative() { '-' } else { '+' };
                    match (c, n) {
                        ('z', 1) => write!(out, "{sign}{}", h.abs()),
                        ('z', 2) => write!(out, "{sign}{:02}", h.abs()),
                        _ => write!(out, "{sign}{:02}:{:02}", h.abs(), m.abs()),
                    }
                    .expect("writing to a String");
                }
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&q| q == c)
                    .ok_or_else(|| format!("the date format \"{format}\" has an unclosed quote"))?;
                out.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
                continue;
            }
            '\\' => {
                if let Some(next) = chars.get(i + 1) {
                    out.push(*next);
                }
                i += 2;
                continue;
            }
            other => {
                for _ in 0..n {
                    out.push(other);
                }
            }
        }
        i += n;
    }
    Ok(out)
}

fn two(out: &mut String, v: u8, n: usize) {
    if n == 1 {
        write!(out, "{v}")
    } else {
        write!(out, "{v:02}")
    }
    .expect("writing to a String")
}

/// `TimeSpan.ToString()`: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn timespan_to_string(t: Duration) -> String {
    let neg = t.is_negative();
    let t = t.abs();
    let days = t.whole_days();
    let secs = t.whole_seconds() - days * 86_400;
    let ticks = t.subsec_nanoseconds() / 100;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if days > 0 {
        write!(out, "{days}.").expect("writing to a String");
    }
    write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
    .expect("writing to a String");
    if ticks > 0 {
        write!(out, ".{ticks:07}").expect("writing to a String");
    }
    out
}

/// `Guid.ToString(format)`: D (default), N, B, P.
pub fn guid_format(g: u128, format: &str) -> Option<String> {
    let hex = format!("{g:032x}");
    let d = || {
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    };
    Some(match format {
        "" | "D" | "d" => d(),
        "N" | "n" => hex,
        "B" | "b" => format!("{{{}}}", d()),
        "P" | "p" => format!("({})", d()),
        _ => return None,
    })
}

pub fn guid_to_string(g: u128) -> String {
    guid_format(g, "D").unwrap_or_default()
}

/// A random (version 4) GUID, as `Guid.NewGuid()`.
/// A random number from the OS's generator (the time if it cannot be
/// reached, as for GUIDs).
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    }
    u64::from_le_bytes(bytes)
}

pub fn new_guid() -> u128 {
    let mut bytes = [0u8; 16];
    // The OS's generator only fails when it cannot be reached at all;
    // then the time keeps GUIDs of one gateway apart.
    if getrandom::fill(&mut bytes).is_err() {
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
        bytes = now.to_le_bytes();
    }
    let g = u128::from_be_bytes(bytes);
    (g & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62)
}

/// Newtonsoft's `ToString()`: indented with two spaces, or on one line
/// (`Formatting.None`); a string token is its text.
pub fn json_to_string(v: &serde_json::Value, indented: bool) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        other if indented => serde_json::to_string_pretty(other).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// An integer by a standard numeric format: `D4` (zero-padded), `X`/`x`
/// (hexadecimal), `N0` (thousands separators); others are refused.
fn number_format(n: i64, format: &str) -> Result<String, &'static str> {
    const BAD: &str = "Format specifier was invalid.";
    let (kind, digits) = format.split_at(format.len().min(1));
    let digits: usize = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| BAD)?
    };
    Ok(match kind {
        "D" | "d" => {
            let sign = if n < 0 { "-" } else { "" };
            format!("{sign}{:0digits$}", n.unsigned_abs())
        }
        "X" => format!("{n:0digits$X}"),
        "x" => format!("{n:0digits$x}"),
        "N" | "n" if digits == 0 => {
            let plain = n.unsigned_abs().to_string();
            let mut grouped = String::new();
            for (i, c) in plain.chars().enumerate() {
                if i > 0 && (plain.len() - i).is_multiple_of(3) {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            if n < 0 {
                format!("-{grouped}")
            } else {
                grouped
            }
        }
        _ => return Err(BAD),
    })
}

/// `string.Format`: `{0}`, `{1}`, ... replaced by the arguments,
/// `{0,5}`/`{0,-5}` padded, `{0:F}` formats (dates, GUIDs, integers),
/// `{{` and `}}` literal braces.
pub fn string_format(
    format: &str,
    args: &[crate::value::Value<'_>],
) -> Result<String, &'static str> {
    const BAD: &str = "Input string was not in a correct format.";
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let inner: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let (index, spec) = match inner.split_once(':') {
                    Some((i, s)) => (i, Some(s)),
                    None => (inner.as_str(), None),
                };
                let (index, width) = match index.split_once(',') {
                    Some((i, w)) => (i, w.trim().parse::<i32>().map_err(|_| BAD)?),
                    None => (index, 0),
                };
                let index: usize = index.trim().parse().map_err(|_| BAD)?;
                let arg = args.get(index).ok_or(
                    "Index (zero based) must be greater than or equal to zero and less than the size of the argument list.",
                )?;
                let text = match (arg, spec) {
                    (crate::value::Value::DateTime(d), Some(f)) => {
                        datetime_format(*d, f).map_err(|_| BAD)?
                    }
                    (crate::value::Value::Guid(g), Some(f)) => guid_format(*g, f).ok_or(BAD)?,
                    (crate::value::Value::Int(n), Some(f)) => number_format(i64::from(*n), f)?,
                    (crate::value::Value::Long(n), Some(f)) => number_format(*n, f)?,
                    (v, _) => v.to_string(),
                };
                // `{0,5}` pads on the left to 5 characters, `{0,-5}` on the right.
                let pad = (width.unsigned_abs() as usize).saturating_sub(text.chars().count());
                if width > 0 {
                    out.extend(std::iter::repeat_n(' ', pad));
                }
                out.push_str(&text);
                if width < 0 {
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            '}' => return Err(BAD),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `WebUtility.UrlEncode`: letters, digits and `-_.!*()` stay, a space is
/// `+`, every other UTF-8 byte `%XX` (upper-case hex).
pub fn url_encode(text: &str) -> String {
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'!')
        .remove(b'*')
        .remove(b'(')
        .remove(b')')
        .remove(b' ');
    utf8_percent_encode(text, KEEP)
        .to_string()
        .replace(' ', "+")
}

/// `WebUtility.UrlDecode`: `+` is a space, `%XX` a byte; invalid UTF-8
/// becomes U+FFFD.
pub fn url_decode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `Uri.EscapeDataString`: RFC 3986's unreserved characters stay.
pub fn escape_data_string(text: &str) -> String {
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(text, KEEP).to_string()
}

/// `Uri.UnescapeDataString` (`+` stays `+`).
pub fn unescape_data_string(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// `WebUtility.HtmlEncode`: `< > & " '` and U+00A0..U+00FF as entities,
/// characters past the Basic Multilingual Plane as numeric references.
pub fn html_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{a0}'..='\u{ff}' | '\u{10000}'.. => {
                out.push_str(&format!("&#{};", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// `WebUtility.HtmlDecode` for numeric references and the entities
/// `HtmlEncode` writes (plus `&apos;` and `&nbsp;`); others stay as text.
pub fn html_decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let c = match &rest[1..end] {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => '\u{a0}',
                n => {
                    let code = match n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => n.strip_prefix('#')?.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn url_and_html_encoding_as_dotnet() {
        // (input, UrlEncode, EscapeDataString, HtmlEncode), as .NET gives them.
        let cases = [
            (
                "a b&c=d/e",
                "a+b%26c%3Dd%2Fe",
                "a%20b%26c%3Dd%2Fe",
                "a b&amp;c=d/e",
            ),
            ("-_.!*()~", "-_.!*()%7E", "-_.%21%2A%28%29~", "-_.!*()~"),
            (
                "<p class='x'>\"",
                "%3Cp+class%3D%27x%27%3E%22",
                "%3Cp%20class%3D%27x%27%3E%22",
                "&lt;p class=&#39;x&#39;&gt;&quot;",
            ),
            (
                "é€😀",
                "%C3%A9%E2%82%AC%F0%9F%98%80",
                "%C3%A9%E2%82%AC%F0%9F%98%80",
                "&#233;€&#128512;",
            ),
            ("", "", "", ""),
        ];
        for (text, url, data, html) in cases {
            assert_eq!(super::url_encode(text), url, "UrlEncode {text:?}");
            assert_eq!(
                super::escape_data_string(text),
                data,
                "EscapeDataString {text:?}"
            );
            assert_eq!(super::html_encode(text), html, "HtmlEncode {text:?}");
            assert_eq!(super::url_decode(url), text, "UrlDecode {url:?}");
            assert_eq!(
                super::unescape_data_string(data),
                text,
                "UnescapeDataString {data:?}"
            );
            assert_eq!(super::html_decode(html), text, "HtmlDecode {html:?}");
        }
        // Decoding leaves what is not an escape alone.
        assert_eq!(super::url_decode("100%"), "100%");
        assert_eq!(super::unescape_data_string("a+b"), "a+b");
        assert_eq!(
            super::html_decode("a & b &unknown; &#x41;"),
            "a & b &unknown; A"
        );
    }
    use super::*;
    use crate::value::Value;

    fn at(secs: i64, nanos: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(secs) * 1_000_000_000 + i128::from(nanos),
        )
        .unwrap()
    }

    #[test]
    fn date_formats_as_dotnet_invariant() {
        // 2024-02-29T13:05:09.1234567Z, a Thursday.
        let d = at(1_709_211_909, 123_456_700);
        let cases = [
            ("o", "2024-02-29T13:05:09.1234567Z"),
            ("s", "2024-02-29T13:05:09"),
            ("u", "2024-02-29 13:05:09Z"),
            ("r", "Thu, 29 Feb 2024 13:05:09 GMT"),
            ("d", "02/29/2024"),
            ("G", "02/29/2024 13:05:09"),
            ("yyyy-MM-dd'T'HH:mm:ss.fffK", "2024-02-29T13:05:09.123Z"),
            ("dddd d MMMM yy", "Thursday 29 February 24"),
            ("h:m:s tt", "1:5:9 PM"),
            ("HH\\h mm", "13h 05"),
            ("FFFFFFF", "1234567"),
        ];
        for (f, want) in cases {
            assert_eq!(datetime_format(d, f).unwrap(), want, "{f}");
        }
        assert!(datetime_format(d, "Q").is_err());
        assert!(datetime_format(d, "'open").is_err());
    }

    #[test]
    fn time_spans_and_guids() {
        assert_eq!(
            timespan_to_string(Duration::milliseconds(1500)),
            "00:00:01.5000000"
        );
        assert_eq!(timespan_to_string(Duration::hours(50)), "2.02:00:00");
        assert_eq!(timespan_to_string(Duration::seconds(-61)), "-00:01:01");
        let g = 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff;
        assert_eq!(
            guid_format(g, "D").unwrap(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        assert_eq!(
            guid_format(g, "B").unwrap(),
            "{00112233-4455-6677-8899-aabbccddeeff}"
        );
        assert_eq!(
            guid_format(g, "N").unwrap(),
            "00112233445566778899aabbccddeeff"
        );
        assert!(guid_format(g, "Z").is_none());
        let v4 = guid_to_string(new_guid());
        assert_eq!(&v4[14..15], "4", "{v4}");
        assert!(matches!(&v4[19..20], "8" | "9" | "a" | "b"), "{v4}");
    }

    #[test]
    fn string_format_as_dotnet() {
        let args = [Value::str("a"), Value::Int(2), Value::Null];
        assert_eq!(string_format("{0}-{1}:{2}.", &args).unwrap(), "a-2:.");
        assert_eq!(string_format("{{{0}}}", &args).unwrap(), "{a}");
        assert!(string_format("{3}", &args).is_err());
        assert!(string_format("{x}", &args).is_err());
        assert!(string_format("a}b", &args).is_err());
        // Alignment and integer formats (outputs of .NET's String.Format).
        let n = [Value::Int(42), Value::Long(-1234567)];
        let cases = [
            ("[{0,5}]", "[   42]"),
            ("[{0,-5}]", "[42   ]"),
            ("{0:D5}", "00042"),
            ("{1:D9}", "-001234567"),
            ("{0:X}", "2A"),
            ("{0:x4}", "002a"),
            ("{1:N0}", "-1,234,567"),
            ("[{0,6:D3}]", "[   042]"),
        ];
        for (f, want) in cases {
            assert_eq!(string_format(f, &n).unwrap(), want, "{f}");
        }
        assert!(string_format("{0:Q}", &n).is_err());
        assert!(string_format("{0,x}", &n).is_err());
    }

    #[test]
    fn json_text_as_newtonsoft() {
        let v: serde_json::Value = serde_json::from_str(r#"{"a":[1,"x"]}"#).unwrap();
        assert_eq!(json_to_string(&v, false), r#"{"a":[1,"x"]}"#);
        assert_eq!(
            json_to_string(&v, true),
            "{\n  \"a\": [\n    1,\n    \"x\"\n  ]\n}"
        );
        assert_eq!(json_to_string(&serde_json::json!("t"), true), "t");
        assert_eq!(json_to_string(&serde_json::json!(true), true), "True");
    }
}
