//! A YAML file of the declarative folder read as JSON, with the line of
//! every value (by JSON pointer), so problems found anywhere — here, or by
//! the control plane, which only sees JSON — are reported by file and line.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

/// A document and where its parts are.
#[derive(Debug)]
pub struct Located {
    pub value: Value,
    /// Line (1-based) of each value by JSON pointer; for a mapping entry,
    /// the line of its key. `""` is the document.
    pub lines: HashMap<String, u64>,
}

impl Located {
    /// The line of `pointer`, or of its nearest ancestor that has one.
    pub fn line_of(&self, pointer: &str) -> u64 {
        let mut at = pointer;
        loop {
            if let Some(line) = self.lines.get(at) {
                return *line;
            }
            match at.rfind('/') {
                Some(i) => at = &at[..i],
                None => return 1,
            }
        }
    }

    /// The line of the deepest key or scalar equal to `text` (a name a
    /// message quotes), if any.
    pub fn line_of_text(&self, text: &str) -> Option<u64> {
        let mut stack = vec![(String::new(), &self.value)];
        let mut found = Vec::new();
        while let Some((pointer, value)) = stack.pop() {
            match value {
                Value::String(s) if s == text => found.push(pointer),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        stack.push((format!("{pointer}/{i}"), item));
                    }
                }
                Value::Object(map) => {
                    for (key, item) in map {
                        let child = format!("{pointer}/{}", escape(key));
                        if key == text {
                            found.push(child.clone());
                        }
                        stack.push((child, item));
                    }
                }
                _ => {}
            }
        }
        found
            .iter()
            .max_by_key(|p| (p.matches('/').count(), std::cmp::Reverse(p.as_str())))
            .and_then(|p| self.lines.get(p.as_str()).copied())
    }
}

/// A JSON pointer segment (`~` and `/` escaped).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A parse failure: its line (when known) and message.
#[derive(Debug)]
pub struct YamlError {
    pub line: u64,
    pub message: String,
}

/// Reads `text` (YAML 1.2: only `true`/`false` are booleans, `0755` stays
/// a string, duplicate keys are refused).
pub fn parse(text: &str) -> Result<Located, YamlError> {
    let node: Spanned<Node> =
        serde_saphyr::from_str_with_options(text, options()).map_err(|e| {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            let message = e
                .without_snippet()
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let message = match message.rfind(" at line ") {
                Some(at) => message[..at].trim_end_matches(',').to_string(),
                None => message,
            };
            YamlError { line, message }
        })?;
    let mut lines = HashMap::new();
    let mut duplicates = Vec::new();
    let value = flatten(node, String::new(), &mut lines, &mut duplicates);
    if let Some((line, key)) = duplicates.into_iter().next() {
        return Err(YamlError {
            line,
            message: format!("key \"{key}\" appears twice; give each key once"),
        });
    }
    Ok(Located { value, lines })
}

fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options.with_snippet = false;
    options
}

/// A YAML node with the places of its children.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Number(Number),
    Text(String),
    List(Vec<Spanned<Node>>),
    Mapping(Vec<(Spanned<String>, Spanned<Node>)>),
}

fn flatten(
    node: Spanned<Node>,
    pointer: String,
    lines: &mut HashMap<String, u64>,
    duplicates: &mut Vec<(u64, String)>,
) -> Value {
    lines
        .entry(pointer.clone())
        .or_insert(node.referenced.line());
    match node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Number(n) => Value::Number(n),
        Node::Text(s) => Value::String(s),
        Node::List(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| flatten(item, format!("{pointer}/{i}"), lines, duplicates))
                .collect(),
        ),
        Node::Mapping(entries) => {
            let mut map = Map::new();
            for (key, item) in entries {
                let child = format!("{pointer}/{}", escape(&key.value));
                if map.contains_key(&key.value) {
                    duplicates.push((key.referenced.line(), key.value));
                    continue;
                }
                lines.insert(child.clone(), key.referenced.line());
                let value = flatten(item, child, lines, duplicates);
                map.insert(key.value, value);
            }
            Value::Object(map)
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Number::from_f64(v)
            .map(Node::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Text(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Text(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Mapping(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_its_line() {
        let doc = parse(
            "name: orders\npath: /orders\noperations:\n  - name: get\n    method: GET\n  - name: put\n    policies:\n      inbound:\n        - rate-limt: {calls: 1}\n",
        )
        .unwrap();
        assert_eq!(doc.value["operations"][1]["name"], "put");
        assert_eq!(doc.line_of("/path"), 2);
        assert_eq!(doc.line_of("/operations/1/name"), 6);
        assert_eq!(doc.line_of("/operations/1/policies/inbound/0"), 9);
        assert_eq!(doc.line_of("/operations/1/nope/deeper"), 6);
        assert_eq!(doc.line_of_text("rate-limt"), Some(9));
        assert_eq!(doc.line_of_text("GET"), Some(5));
    }

    #[test]
    fn yaml_12_scalars_and_problems_with_lines() {
        let doc = parse("a: yes\nb: 0755\nc: true\nd: 1.5\ne: ~\n").unwrap();
        assert_eq!(doc.value["a"], "yes");
        assert_eq!(doc.value["b"], "0755");
        assert_eq!(doc.value["c"], true);
        assert_eq!(doc.value["d"], 1.5);
        assert_eq!(doc.value["e"], Value::Null);
        let bad = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(bad.line >= 2, "{bad:?}");
        let twice = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(twice.line, 3, "{twice:?}");
    }
}
