//! URL templates of operations: `/orders/{id}`, `/files/*`.
//!
//! A template is a list of segments; matching a path yields the template
//! parameters, and a specificity key so the router can prefer
//! `/orders/latest` over `/orders/{id}` over `/orders/*`.

/// Template parameters and their values, in template order.
pub type Params = Vec<(String, String)>;

/// Orders matches: smaller is more specific.
pub type Specificity = Vec<u8>;

/// One segment of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    /// `*`: the rest of the path (zero or more segments); only last.
    CatchAll,
}

/// A parsed URL template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlTemplate {
    pub text: String,
    segments: Vec<Segment>,
}

impl UrlTemplate {
    /// Parses `/a/{b}/*`; the error says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<UrlTemplate, String> {
        if !text.starts_with('/') {
            return Err(format!("url template \"{text}\" must start with '/'"));
        }
        let trimmed = text.trim_matches('/');
        let mut segments = Vec::new();
        if !trimmed.is_empty() {
            let parts: Vec<&str> = trimmed.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let segment = if *part == "*" {
                    if i + 1 != parts.len() {
                        return Err(format!(
                            "url template \"{text}\": '*' is only allowed as the last segment"
                        ));
                    }
                    Segment::CatchAll
                } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
                {
                    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(format!(
                            "url template \"{text}\": parameter \"{part}\" needs a name of letters, digits or '_', e.g. {{id}}"
                        ));
                    }
                    Segment::Param(name.into())
                } else if part.is_empty() || part.contains(['{', '}', '?', '#', '*', ' ']) {
                    return Err(format!(
                        "url template \"{text}\": segment \"{part}\" is not a literal, {{name}} or '*'"
                    ));
                } else {
                    Segment::Literal((*part).into())
                };
                segments.push(segment);
            }
        }
        Ok(UrlTemplate {
            text: text.into(),
            segments,
        })
    }

    /// Matches `path` (relative to the API prefix); on success returns the
    /// parameters and a key where smaller means more specific.
    pub fn matches(&self, path: &str) -> Option<(Params, Specificity)> {
        let trimmed = path.trim_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let mut params = Vec::new();
        let mut key = Vec::with_capacity(self.segments.len() + 1);
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::CatchAll => {
                    key.push(2);
                    return Some((params, key));
                }
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                    key.push(0);
                }
                Segment::Param(name) => {
                    let value = parts.get(i)?;
                    params.push((name.clone(), (*value).to_string()));
                    key.push(1);
                }
            }
        }
        // An exact-length match beats any catch-all that also matched.
        key.push(0);
        (parts.len() == self.segments.len()).then_some((params, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str, p: &str) -> Option<Vec<(String, String)>> {
        UrlTemplate::parse(t).unwrap().matches(p).map(|(p, _)| p)
    }

    #[test]
    fn matches_literals_params_and_catch_all() {
        assert_eq!(m("/orders/{id}", "/orders/42").unwrap()[0].1, "42");
        assert!(m("/orders/{id}", "/orders").is_none());
        assert!(m("/orders/{id}", "/orders/1/x").is_none());
        assert!(m("/orders/*", "/orders").is_some());
        assert!(m("/orders/*", "/orders/1/2/3").is_some());
        assert!(m("/*", "/").is_some());
        assert!(m("/", "/").is_some());
        assert!(m("/", "/x").is_none());
    }

    #[test]
    fn literal_beats_param_beats_catch_all() {
        let key = |t: &str, p: &str| UrlTemplate::parse(t).unwrap().matches(p).unwrap().1;
        assert!(key("/orders/latest", "/orders/latest") < key("/orders/{id}", "/orders/latest"));
        assert!(key("/orders/{id}", "/orders/latest") < key("/orders/*", "/orders/latest"));
        assert!(key("/orders/{id}/items", "/orders/1/items") < key("/orders/*", "/orders/1/items"));
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in ["orders", "/a/*/b", "/a/{}", "/a/{b c}", "/a//b"] {
            assert!(UrlTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
