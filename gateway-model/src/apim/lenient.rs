//! APIM reads policy expressions leniently: inside `@(...)` and `@{...}`
//! a document may use the characters XML reserves, as real documents do:
//!
//! ```xml
//! <when condition="@(context.Request.Headers.GetValueOrDefault("x", "") != "")">
//! <set-body>@{ if (n < 3 && ok) { return "<a/>"; } return ""; }</set-body>
//! ```
//!
//! Before the XML parser sees a document, each expression in an attribute
//! value or in element text has `<`, `>`, `&` and the attribute's quote
//! written as entities, so that the parser hands the expression back
//! exactly as written. Entities already in an expression stay as they are.
//! Line breaks in an expression attribute are kept too (XML would make
//! them spaces, and a `// comment` would swallow the rest of the block):
//! each is read back followed by one space. Lines are kept (columns after
//! an escaped character shift).

use std::borrow::Cow;

/// `text` with its expressions' reserved characters written as entities;
/// borrowed when nothing needed escaping.
pub fn escape_expressions(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    let b = text.as_bytes();
    while i < b.len() {
        // Bytes, not characters: every marker is ASCII, so each index
        // sliced at below is a character boundary.
        let at = &b[i..];
        if at.starts_with(b"<!--") {
            i = skip_past(text, i, "-->");
        } else if at.starts_with(b"<![CDATA[") {
            i = skip_past(text, i, "]]>");
        } else if at.starts_with(b"<?") {
            i = skip_past(text, i, "?>");
        } else if b[i] == b'<' {
            i = tag(text, i + 1, &mut out, &mut copied);
        } else if at.starts_with(b"@(") || at.starts_with(b"@{") {
            // An expression in element text: ends with its bracket.
            match expression_end(text, i + 1) {
                Some(end) => {
                    out.push_str(&text[copied..i]);
                    escape(&text[i..end], None, &mut out);
                    copied = end;
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Index just past `end` after `from`, or the text's end.
fn skip_past(text: &str, from: usize, end: &str) -> usize {
    text[from..]
        .find(end)
        .map_or(text.len(), |at| from + at + end.len())
}

/// Reads a tag from after its `<`; escapes expression attribute values.
/// Returns the index after the tag's `>`.
fn tag(text: &str, mut i: usize, out: &mut String, copied: &mut usize) -> usize {
    let b = text.as_bytes();
    while i < b.len() {
        match b[i] {
            b'>' => return i + 1,
            q @ (b'"' | b'\'') => {
                let start = i + 1;
                let value = &text[start..];
                if (value.starts_with("@(") || value.starts_with("@{"))
                    && let Some(end) = expression_end(text, start + 1)
                    && b.get(end) == Some(&q)
                {
                    out.push_str(&text[*copied..start]);
                    escape(&text[start..end], Some(q), out);
                    *copied = end;
                    i = end + 1;
                    continue;
                }
                // A literal value (or an unbalanced expression, left for
                // the parser to report): to its closing quote.
                i = text[start..]
                    .find(q as char)
                    .map_or(b.len(), |at| start + at + 1);
            }
            _ => i += 1,
        }
    }
    i
}

/// The character an entity reference at the start of `s` stands for, and
/// its length.
fn entity(s: &str) -> Option<(char, usize)> {
    let end = s.bytes().take(12).position(|c| c == b';')?;
    let name = &s[1..end];
    let c = match name {
        "quot" => '"',
        "apos" => '\'',
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                name.strip_prefix('#')?.parse().ok()?
            };
            char::from_u32(code)?
        }
    };
    Some((c, end + 1))
}

/// Where the expression whose opening bracket is at `open` ends (the index
/// after its closing bracket), following C# strings, characters and
/// comments; entities count as the characters they stand for.
fn expression_end(text: &str, open: usize) -> Option<usize> {
    #[derive(PartialEq)]
    enum In {
        Code,
        Str { verbatim: bool },
        Char,
        LineComment,
        BlockComment,
    }
    let mut state = In::Code;
    let mut depth = 0usize;
    let mut i = open;
    let mut prev = '\0';
    while i < text.len() {
        let (c, len) = match text[i..].chars().next()? {
            '&' => entity(&text[i..]).unwrap_or(('&', 1)),
            c => (c, c.len_utf8()),
        };
        let next = text[i + len..].chars().next().unwrap_or('\0');
        match state {
            In::Code => match c {
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(i + len);
                    }
                }
                // A closing tag: the text was no expression after all.
                '<' if next == '/' => return None,
                '"' => {
                    state = In::Str {
                        verbatim: prev == '@',
                    }
                }
                '\'' => state = In::Char,
                '/' if next == '/' => state = In::LineComment,
                '/' if next == '*' => state = In::BlockComment,
                _ => {}
            },
            In::Str { verbatim } => match c {
                '\\' if !verbatim => {
                    // Skip the escaped character.
                    i += len;
                    let skipped = match text[i..].chars().next() {
                        Some('&') => entity(&text[i..]).map_or(1, |e| e.1),
                        Some(c) => c.len_utf8(),
                        None => return None,
                    };
                    i += skipped;
                    prev = '\0';
                    continue;
                }
                '"' if verbatim && next == '"' => {
                    i += len + 1;
                    continue;
                }
                '"' => state = In::Code,
                _ => {}
            },
            In::Char => match c {
                '\\' => {
                    i += len + next.len_utf8();
                    continue;
                }
                '\'' => state = In::Code,
                _ => {}
            },
            In::LineComment => {
                if c == '\n' {
                    state = In::Code;
                }
            }
            In::BlockComment => {
                if c == '*' && next == '/' {
                    state = In::Code;
                    i += len + 1;
                    continue;
                }
            }
        }
        prev = c;
        i += len;
    }
    None
}

/// Appends `expr` with `<`, `>`, a bare `&` and the quote `quote` (inside an
/// attribute) written as entities; entities already there are kept.
fn escape(expr: &str, quote: Option<u8>, out: &mut String) {
    let mut i = 0;
    while i < expr.len() {
        let c = expr[i..].chars().next().unwrap();
        match c {
            '&' => match entity(&expr[i..]) {
                Some((_, len)) => {
                    out.push_str(&expr[i..i + len]);
                    i += len;
                    continue;
                }
                None => out.push_str("&amp;"),
            },
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // XML turns a line break in an attribute value into a space,
            // which would end a `//` comment's line nowhere; a character
            // reference survives. The break itself stays (read back as a
            // space after it) so that lines keep their numbers.
            '\n' if quote.is_some() => out.push_str("&#10;\n"),
            '"' if quote == Some(b'"') => out.push_str("&quot;"),
            '\'' if quote == Some(b'\'') => out.push_str("&apos;"),
            c => out.push(c),
        }
        i += c.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    use super::escape_expressions;

    /// The text an XML parser reads back from the escaped document.
    fn read_back(doc: &str) -> (String, Vec<String>) {
        let escaped = escape_expressions(doc);
        let parsed = roxmltree::Document::parse(&escaped)
            .unwrap_or_else(|e| panic!("{e}\nescaped: {escaped}"));
        let root = parsed.root_element();
        let text = root.text().unwrap_or_default().to_string();
        let attrs = root.attributes().map(|a| a.value().to_string()).collect();
        (text, attrs)
    }

    #[test]
    fn expressions_read_back_exactly_as_written() {
        let cases: &[(&str, &str, &[&str])] = &[
            // (document, element text, attribute values)
            (
                r#"<when condition="@(context.Request.Headers.GetValueOrDefault("x", "") != "")"/>"#,
                "",
                &[r#"@(context.Request.Headers.GetValueOrDefault("x", "") != "")"#],
            ),
            (
                r#"<when condition="@(context.Response.StatusCode < 500 && ok)"/>"#,
                "",
                &["@(context.Response.StatusCode < 500 && ok)"],
            ),
            (
                r#"<v>@{ if (n < 3 && m > 1) { return "<a/>"; } return "}"; }</v>"#,
                r#"@{ if (n < 3 && m > 1) { return "<a/>"; } return "}"; }"#,
                &[],
            ),
            // A string with an escaped quote and a bracket inside.
            (r#"<v k="@("a\")" + ")")"/>"#, "", &[r#"@("a\")" + ")")"#]),
            // Verbatim strings, characters and comments hide brackets.
            (
                r#"<v>@{ var s = @"(""x"; var c = ')'; // )
return s; /* } */ }</v>"#,
                "@{ var s = @\"(\"\"x\"; var c = ')'; // )\nreturn s; /* } */ }",
                &[],
            ),
            // Entities already written stay what they stand for.
            (
                r#"<when condition="@(a &lt; b &amp;&amp; c == &quot;)&quot;)"/>"#,
                "",
                &[r#"@(a < b && c == ")")"#],
            ),
            // Single-quoted attribute with double quotes inside.
            (r#"<v k='@(x == "y")'/>"#, "", &[r#"@(x == "y")"#]),
            // Liquid templates and plain text are left alone.
            (
                r#"<set-body template="liquid">{{body.a}} &amp; {% if x %}y{% endif %}</set-body>"#,
                "{{body.a}} & {% if x %}y{% endif %}",
                &["liquid"],
            ),
        ];
        for (doc, text, attrs) in cases {
            let (got_text, got_attrs) = read_back(doc);
            assert_eq!(&got_text, text, "{doc}");
            assert_eq!(&got_attrs, attrs, "{doc}");
        }
    }

    #[test]
    fn documents_without_expressions_are_borrowed_and_comments_skipped() {
        for doc in [
            r#"<policies><inbound><base /></inbound></policies>"#,
            r#"<!-- @(a < b) --><p a="x"/>"#,
            r#"<p><![CDATA[@(a < b)]]></p>"#,
            r#"<?xml version="1.0"?><p>mail@(none</p>"#,
            r#"<p><v>@(a</v><w>)</w></p>"#,
            // Found by the fuzz target: multi-byte characters.
            "N\u{69e}",
        ] {
            assert!(
                matches!(escape_expressions(doc), std::borrow::Cow::Borrowed(_)),
                "{doc}"
            );
        }
        // Found by the fuzz target: a bare `&` before multi-byte characters
        // (it panicked on a char boundary).
        let doc = "<p a=\"@(&\u{69e}\u{69e})\"/>";
        assert_eq!(escape_expressions(doc), "<p a=\"@(&amp;\u{69e}\u{69e})\"/>");
    }

    #[test]
    fn line_breaks_in_expression_attributes_survive() {
        // A `//` comment ends at its line break, which XML would have
        // turned into a space; CRLF files too.
        for (doc, want) in [
            (
                "<v value=\"@{\n// c\nreturn 1; }\"/>",
                "@{\n // c\n return 1; }",
            ),
            (
                "<v value=\"@{\r\n// c\r\nreturn 1; }\"/>",
                "@{ \n // c \n return 1; }",
            ),
            // Literal values are XML's business: normalised as usual.
            ("<v value=\"a\nb\"/>", "a b"),
        ] {
            assert_eq!(read_back(doc).1, [want], "{doc:?}");
        }
    }

    #[test]
    fn lines_are_kept() {
        let doc = "<p>\n<w c=\"@(a < \"b\")\"/>\n<x>@(1 > 2)</x>\n</p>";
        let escaped = escape_expressions(doc);
        assert_eq!(escaped.lines().count(), doc.lines().count());
    }
}
