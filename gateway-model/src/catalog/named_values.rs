//! Named values: `{{name}}` in policy settings, replaced at load time;
//! with them, the policy fragments `include-fragment` expands (what a
//! policy document refers to by name, resolved when it is loaded).

use std::collections::HashMap;

/// The named values of a catalog.
#[derive(Default)]
pub struct NamedValues {
    values: HashMap<String, NamedValue>,
    /// Policy fragments, by name.
    pub fragments: super::fragments::Fragments,
}

struct NamedValue {
    value: String,
    secret: bool,
}

// Secret values never appear in debug output (and so never in logs).
impl std::fmt::Debug for NamedValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (name, v) in &self.values {
            map.entry(name, &if v.secret { "<secret>" } else { &v.value });
        }
        map.finish()
    }
}

impl NamedValues {
    pub fn insert(&mut self, name: &str, value: &str, secret: bool) -> Result<(), String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "named value \"{name}\": use letters, digits, '-', '_' or '.'"
            ));
        }
        let value = NamedValue {
            value: value.into(),
            secret,
        };
        if self.values.insert(name.into(), value).is_some() {
            return Err(format!("named value \"{name}\" is defined twice"));
        }
        Ok(())
    }

    /// Replaces every `{{name}}` of a defined named value in `text` and
    /// leaves other `{{...}}` as written: a Liquid template's own output
    /// tags (`{{body.name}}`) share the syntax.
    pub fn substitute_known(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else { break };
            out.push_str(&rest[..start]);
            match self.values.get(after[..end].trim()) {
                Some(v) => out.push_str(&v.value),
                None => out.push_str(&rest[start..start + 2 + end + 2]),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// Replaces every `{{name}}` in `text`; an unknown name is an error
    /// naming it.
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("\"{{{{\" without a closing \"}}}}\" in \"{text}\""))?;
            let name = after[..end].trim();
            let value = self.values.get(name).ok_or_else(|| {
                format!("unknown named value \"{{{{{name}}}}}\"; define it under named_values")
            })?;
            out.push_str(&value.value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_and_hides_secrets() {
        let mut nv = NamedValues::default();
        nv.insert("tenant", "contoso", false).unwrap();
        nv.insert("token", "s3cr3t", true).unwrap();
        assert_eq!(
            nv.substitute("{{tenant}}-{{ token }}!").unwrap(),
            "contoso-s3cr3t!"
        );
        assert!(
            nv.substitute("{{nope}}")
                .unwrap_err()
                .contains("\"{{nope}}\"")
        );
        assert!(nv.substitute("{{tenant").is_err());
        let shown = format!("{nv:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("contoso"),
            "{shown}"
        );
        assert!(nv.insert("tenant", "x", false).is_err());
    }
}
