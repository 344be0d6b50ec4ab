//! Interpolated strings, `$"a{x}b{y:yyyy-MM-dd}"` (and `$@"..."`): the
//! lexer keeps the text between the quotes; the parser splits it here into
//! `string.Format`'s format and the holes' texts, which it parses as
//! expressions. So `$"..."` means exactly what `string.Format` does.

/// The text of an interpolated string after its opening quote, up to the
/// closing quote (not included), and how many bytes that took with the
/// quote; `None` when it is not closed (or a plain one spans a line).
pub fn scan(rest: &str, verbatim: bool) -> Option<(String, usize)> {
    let bytes = rest.as_bytes();
    let mut i = 0;
    // Nesting inside a hole; 0 in the literal text.
    let mut depth = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        if depth == 0 {
            match c {
                b'"' if verbatim && bytes.get(i + 1) == Some(&b'"') => i += 2,
                b'"' => return Some((rest[..i].to_string(), i + 1)),
                b'\\' if !verbatim => i += 2,
                b'\n' if !verbatim => return None,
                b'{' | b'}' if bytes.get(i + 1) == Some(&c) => i += 2,
                b'{' => {
                    depth = 1;
                    i += 1;
                }
                _ => i += 1,
            }
        } else {
            match c {
                b'"' | b'\'' => i = skip_literal(bytes, i)?,
                b'{' | b'(' | b'[' => {
                    depth += 1;
                    i += 1;
                }
                b'}' | b')' | b']' => {
                    depth -= 1;
                    i += 1;
                }
                b'\n' if !verbatim => return None,
                _ => i += 1,
            }
        }
    }
    None
}

/// Past a string or char literal that starts at `i`.
fn skip_literal(bytes: &[u8], i: usize) -> Option<usize> {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'\n' => return None,
            c if c == quote => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// A piece of an interpolated string.
#[derive(Debug, PartialEq)]
pub enum Part<'a> {
    /// Literal text as written (escapes not yet decoded; `{{` and `}}` kept,
    /// as `string.Format` reads them).
    Text(&'a str),
    /// A hole: the expression's text, where it starts in the string (a
    /// byte offset), and its `,alignment` and `:format` as written.
    Hole {
        expr: &'a str,
        at: usize,
        spec: &'a str,
    },
}

/// The pieces of what `scan` returned; `Err` names a lone `}` or an
/// empty hole.
pub fn parts(raw: &str) -> Result<Vec<Part<'_>>, &'static str> {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut text_start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'{' | b'}' if bytes.get(i + 1) == Some(&bytes[i]) => i += 2,
            b'}' => return Err("a `}` outside a hole; write `}}` for a brace"),
            b'{' => {
                if text_start < i {
                    out.push(Part::Text(&raw[text_start..i]));
                }
                let start = i + 1;
                let (end, spec_at) = hole_end(bytes, start);
                let expr = &raw[start..spec_at];
                if expr.trim().is_empty() {
                    return Err("an empty hole `{}`; put an expression inside it");
                }
                out.push(Part::Hole {
                    expr,
                    at: start,
                    spec: &raw[spec_at..end],
                });
                i = end + 1;
                text_start = i;
            }
            _ => i += 1,
        }
    }
    if text_start < bytes.len() {
        out.push(Part::Text(&raw[text_start..]));
    }
    Ok(out)
}

/// Where the hole starting at `start` ends (its `}`), and where its
/// `,alignment` or `:format` starts (the end when it has none). As in C#, a
/// `:` or `,` outside brackets ends the expression: a conditional inside a
/// hole is written in parentheses.
fn hole_end(bytes: &[u8], start: usize) -> (usize, usize) {
    let (mut i, mut depth, mut spec) = (start, 0usize, None);
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' if spec.is_none() => {
                i = skip_literal(bytes, i).unwrap_or(bytes.len());
                continue;
            }
            b'(' | b'[' | b'{' if spec.is_none() => depth += 1,
            b')' | b']' if spec.is_none() => depth = depth.saturating_sub(1),
            b'}' if depth == 0 => return (i, spec.unwrap_or(i)),
            b'}' if spec.is_none() => depth -= 1,
            b':' | b',' if depth == 0 && spec.is_none() => spec = Some(i),
            _ => {}
        }
        i += 1;
    }
    (bytes.len(), spec.unwrap_or(bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_to_the_closing_quote_past_holes_with_strings() {
        let cases: &[(&str, bool, Option<&str>)] = &[
            (r#"a{b}c" rest"#, false, Some("a{b}c")),
            (r#"{h["x"]}" + 1"#, false, Some(r#"{h["x"]}"#)),
            (r#"a\"b"x"#, false, Some(r#"a\"b"#)),
            (r#"{{"x"#, false, Some("{{")),
            ("a\nb\"", false, None),
            ("a\nb\"", true, Some("a\nb")),
            (r#"say ""hi"""x"#, true, Some(r#"say ""hi"""#)),
            (r#"{new[] {1}.Length}""#, false, Some("{new[] {1}.Length}")),
            ("open", false, None),
        ];
        for (text, verbatim, want) in cases {
            assert_eq!(
                scan(text, *verbatim).map(|(s, _)| s).as_deref(),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn splits_text_holes_and_format_specs() {
        use Part::*;
        assert_eq!(
            parts("a{x}b{d:yyyy-MM-dd}{n,5}").unwrap(),
            [
                Text("a"),
                Hole {
                    expr: "x",
                    at: 2,
                    spec: ""
                },
                Text("b"),
                Hole {
                    expr: "d",
                    at: 6,
                    spec: ":yyyy-MM-dd"
                },
                Hole {
                    expr: "n",
                    at: 20,
                    spec: ",5"
                },
            ]
        );
        assert_eq!(
            parts(r#"{{{f(a, "}")}}}"#).unwrap(),
            [
                Text("{{"),
                Hole {
                    expr: r#"f(a, "}")"#,
                    at: 3,
                    spec: ""
                },
                Text("}}"),
            ]
        );
        assert!(parts("a}b").is_err());
        assert!(parts("a{ }b").is_err());
    }
}
