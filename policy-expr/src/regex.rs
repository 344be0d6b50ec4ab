//! .NET's `System.Text.RegularExpressions.Regex` (`IsMatch`, `Match`,
//! `Replace`) over the `regex` crate. Its engine runs in linear time, so
//! a pattern cannot backtrack catastrophically (.NET's match timeout
//! argument is accepted and has nothing to stop); .NET constructs it
//! lacks (look-around, back-references) are refused when the pattern is
//! compiled, at load for a literal pattern.

use std::sync::Arc;

/// `RegexOptions` flags, with .NET's values.
pub const IGNORE_CASE: i32 = 1;
pub const MULTILINE: i32 = 2;
pub const SINGLELINE: i32 = 16;
pub const IGNORE_PATTERN_WHITESPACE: i32 = 32;

/// `RegexOptions.NAME`'s value; the ones that change nothing here
/// (`Compiled`, `CultureInvariant`, `ExplicitCapture`' s unnamed groups
/// aside) are accepted as 0.
pub fn option(name: &str) -> Option<i32> {
    Some(match name {
        "None" | "Compiled" | "CultureInvariant" | "ECMAScript" => 0,
        "IgnoreCase" => IGNORE_CASE,
        "Multiline" => MULTILINE,
        "Singleline" => SINGLELINE,
        "IgnorePatternWhitespace" => IGNORE_PATTERN_WHITESPACE,
        _ => return None,
    })
}

/// A compiled pattern (equal when written the same).
#[derive(Clone, Debug)]
pub struct Pattern(pub Arc<regex::Regex>, i32);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str() && self.1 == other.1
    }
}

impl Pattern {
    /// The pattern with `options`; the error is one line.
    pub fn compile(pattern: &str, options: i32) -> Result<Pattern, String> {
        regex::RegexBuilder::new(pattern)
            .case_insensitive(options & IGNORE_CASE != 0)
            .multi_line(options & MULTILINE != 0)
            .dot_matches_new_line(options & SINGLELINE != 0)
            .ignore_whitespace(options & IGNORE_PATTERN_WHITESPACE != 0)
            .size_limit(1 << 20)
            .build()
            .map(|re| Pattern(Arc::new(re), options))
            .map_err(|e| {
                let text = e.to_string();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("error:"))
                    .unwrap_or(&text);
                format!(
                    "the pattern `{pattern}` is not one this gateway runs: {}",
                    last.trim()
                )
            })
    }

    pub fn is_match(&self, input: &str) -> bool {
        self.0.is_match(input)
    }

    /// The first match, as `Regex.Match` gives it (unsuccessful: none).
    pub fn first(&self, input: &str) -> Found {
        let names = self
            .0
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (n.to_string(), i)))
            .collect();
        let groups = match self.0.captures(input) {
            Some(c) => c
                .iter()
                .map(|g| g.map(|m| m.as_str().to_string()))
                .collect(),
            None => vec![None],
        };
        Found { groups, names }
    }

    /// `Regex.Replace`: every match replaced; `$1`, `${name}`, `$0` and
    /// `$$` in the replacement as in .NET.
    pub fn replace(&self, input: &str, replacement: &str) -> String {
        self.0.replace_all(input, replacement).into_owned()
    }
}

/// A match (or one of its groups, then with that group alone).
#[derive(Debug, PartialEq)]
pub struct Found {
    /// Group 0 is the whole match; `None`: did not take part.
    pub groups: Vec<Option<String>>,
    pub names: Vec<(String, usize)>,
}

impl Found {
    pub fn success(&self) -> bool {
        self.groups.first().is_some_and(Option::is_some)
    }

    /// `.Value`: the text, "" when unsuccessful.
    pub fn value(&self) -> &str {
        self.groups.first().and_then(Option::as_deref).unwrap_or("")
    }

    /// `Groups[i]` or `Groups["name"]`: an unknown group is an
    /// unsuccessful one, as in .NET.
    pub fn group(&self, index: Option<usize>, name: Option<&str>) -> Found {
        let i = index.or_else(|| {
            let name = name?;
            self.names
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, i)| *i)
                .or_else(|| name.parse().ok())
        });
        let group = i.and_then(|i| self.groups.get(i).cloned()).flatten();
        Found {
            groups: vec![group],
            names: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outcomes as .NET documents them for the same calls.
    #[test]
    fn dotnet_semantics() {
        let p = Pattern::compile(r"max-age=(?<maxAge>\d+)", 0).unwrap();
        let m = p.first("public, max-age=60");
        assert!(m.success());
        assert_eq!(m.value(), "max-age=60");
        assert_eq!(m.group(None, Some("maxAge")).value(), "60");
        assert_eq!(m.group(Some(1), None).value(), "60");
        assert!(!m.group(Some(7), None).success());
        assert!(!p.first("no-cache").success());
        assert_eq!(p.first("no-cache").value(), "");
        let ci = Pattern::compile(r"^/bo-nodo/?$", IGNORE_CASE).unwrap();
        assert!(ci.is_match("/BO-NODO/"));
        assert!(
            !Pattern::compile(r"^/bo-nodo$", 0)
                .unwrap()
                .is_match("/BO-NODO")
        );
        let r = Pattern::compile(r"(\w+)@(\w+)", 0).unwrap();
        assert_eq!(r.replace("a@b c@d", "$2 at $1"), "b at a d at c");
        assert_eq!(r.replace("a@b", "$$"), "$");
        for (bad, says) in [
            ("(?=x)", "look-around"),
            ("(a", "unclosed group"),
            (r"(a)\1", "backreferences"),
        ] {
            let e = Pattern::compile(bad, 0).unwrap_err();
            assert!(e.contains(says) && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
