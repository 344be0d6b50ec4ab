//! Changing JSON held in a local variable, as Newtonsoft's JObject and
//! JArray do: `x["a"][0] = v;`, `x.Add("name", v)`, `x.Add(v)`,
//! `x.Add(new JProperty(...))`, `x.Remove("name")` and `x["a"].Remove()`.
//! The checker allows them only where no other name shares the JSON
//! (`check/json_edit.rs`), so changing the variable's own copy is what C#
//! would do to the one object.

use serde_json::Value as J;

/// One step into JSON: a property name or an array index.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Name(String),
    At(i32),
}

/// What is done at the place the path leads to.
#[derive(Debug)]
pub enum Edit {
    /// The path's last key is set to the value.
    Set(J),
    /// To the object the path leads to: a property (`Add(name, v)`, or a
    /// JProperty's one entry); to an array: an item.
    Add(Option<String>, J),
    /// `Remove("name")` on the object the path leads to.
    RemoveName(String),
    /// `Remove()`: the token the path leads to, from its parent.
    RemoveSelf,
}

const NULL_REF: &str = "Object reference not set to an instance of an object.";

fn kind(v: &J) -> &'static str {
    match v {
        J::Object(_) => "Newtonsoft.Json.Linq.JObject",
        J::Array(_) => "Newtonsoft.Json.Linq.JArray",
        _ => "Newtonsoft.Json.Linq.JValue",
    }
}

/// The child of `v` at `key`, made if it is a missing property only when
/// `make` (the last step of a `Set`).
fn child<'v>(v: &'v mut J, key: &Key, make: bool) -> Result<Option<&'v mut J>, String> {
    match (v, key) {
        (J::Object(m), Key::Name(n)) => Ok(if make {
            Some(m.entry(n.clone()).or_insert(J::Null))
        } else {
            m.get_mut(n)
        }),
        (J::Array(a), Key::At(i)) => {
            let len = a.len();
            usize::try_from(*i)
                .ok()
                .and_then(|i| a.get_mut(i))
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "Index was out of range. Must be non-negative and less than the size of the collection. (index {i}, count {len})"
                    )
                })
        }
        (J::Object(_), Key::At(i)) => Err(format!(
            "Accessed JObject values with invalid key value: {i}. Object property name expected."
        )),
        (J::Array(_), Key::Name(n)) => Err(format!(
            "Accessed JArray values with invalid key value: \"{n}\". Int32 array index expected."
        )),
        (other, _) => Err(format!("Cannot access child value on {}.", kind(other))),
    }
}

/// Follows `path` from `root`; a missing step is C#'s null reference.
fn walk<'v>(root: &'v mut J, path: &[Key]) -> Result<&'v mut J, String> {
    let mut at = root;
    for key in path {
        at = child(at, key, false)?.ok_or(NULL_REF)?;
        if at.is_null() {
            return Err(NULL_REF.into());
        }
    }
    Ok(at)
}

/// Applies `edit` at `path` inside `root`; the error is the message C#
/// would throw.
pub fn apply(root: &mut J, path: &[Key], edit: Edit) -> Result<(), String> {
    match edit {
        Edit::Set(value) => {
            let (last, parents) = path.split_last().ok_or(NULL_REF)?;
            let parent = walk(root, parents)?;
            *child(parent, last, true)?.ok_or(NULL_REF)? = value;
        }
        Edit::Add(name, value) => match (walk(root, path)?, name) {
            (J::Object(m), Some(n)) => {
                if m.contains_key(&n) {
                    return Err(format!(
                        "Can not add property {n} to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object."
                    ));
                }
                m.insert(n, value);
            }
            (J::Object(m), None) => match value {
                J::Object(p) if p.len() == 1 => {
                    let (n, v) = p.into_iter().next().expect("one entry");
                    if m.contains_key(&n) {
                        return Err(format!(
                            "Can not add property {n} to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object."
                        ));
                    }
                    m.insert(n, v);
                }
                other => {
                    return Err(format!(
                        "Can not add {} to Newtonsoft.Json.Linq.JObject.",
                        kind(&other)
                    ));
                }
            },
            (J::Array(a), None) => a.push(value),
            (other, _) => {
                return Err(format!("Can not add a value to {}.", kind(other)));
            }
        },
        Edit::RemoveName(name) => match walk(root, path)? {
            J::Object(m) => {
                m.shift_remove(&name);
            }
            other => {
                return Err(format!("Cannot access child value on {}.", kind(other)));
            }
        },
        Edit::RemoveSelf => {
            let (last, parents) = path.split_last().ok_or("The parent is missing.")?;
            match (walk(root, parents)?, last) {
                (J::Object(m), Key::Name(n)) => {
                    m.shift_remove(n).ok_or(NULL_REF)?;
                }
                (J::Array(a), Key::At(i)) => {
                    let i = usize::try_from(*i)
                        .ok()
                        .filter(|&i| i < a.len())
                        .ok_or(NULL_REF)?;
                    a.remove(i);
                }
                (other, key) => {
                    child(other, key, false)?;
                    return Err(NULL_REF.into());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn name(n: &str) -> Key {
        Key::Name(n.into())
    }

    #[test]
    fn edits_as_newtonsoft() {
        let start = json!({"model": "a", "messages": [{"role": "user"}], "n": 1});
        let cases: Vec<(Vec<Key>, Edit, Result<J, &str>)> = vec![
            (
                vec![name("model")],
                Edit::Set(json!("b")),
                Ok(json!({"model": "b", "messages": [{"role": "user"}], "n": 1})),
            ),
            (
                vec![name("new")],
                Edit::Set(json!(true)),
                Ok(json!({"model": "a", "messages": [{"role": "user"}], "n": 1, "new": true})),
            ),
            (
                vec![name("messages"), Key::At(0), name("role")],
                Edit::Set(json!("system")),
                Ok(json!({"model": "a", "messages": [{"role": "system"}], "n": 1})),
            ),
            (
                vec![name("messages"), Key::At(1)],
                Edit::Set(json!(1)),
                Err("Index was out of range"),
            ),
            (
                vec![name("missing"), name("x")],
                Edit::Set(json!(1)),
                Err("Object reference not set"),
            ),
            (
                vec![name("messages"), name("x")],
                Edit::Set(json!(1)),
                Err("Int32 array index expected"),
            ),
            (
                vec![Key::At(0)],
                Edit::Set(json!(1)),
                Err("Object property name expected"),
            ),
            (
                vec![name("n"), name("x")],
                Edit::Set(json!(1)),
                Err("Cannot access child value on Newtonsoft.Json.Linq.JValue"),
            ),
            (
                vec![],
                Edit::Add(Some("x".into()), json!(2)),
                Ok(json!({"model": "a", "messages": [{"role": "user"}], "n": 1, "x": 2})),
            ),
            (
                vec![],
                Edit::Add(Some("n".into()), json!(2)),
                Err("Property with the same name already exists"),
            ),
            (
                vec![],
                Edit::Add(None, json!({"p": 3})),
                Ok(json!({"model": "a", "messages": [{"role": "user"}], "n": 1, "p": 3})),
            ),
            (
                vec![],
                Edit::Add(None, json!(3)),
                Err("Can not add Newtonsoft.Json.Linq.JValue to Newtonsoft.Json.Linq.JObject"),
            ),
            (
                vec![name("messages")],
                Edit::Add(None, json!({"role": "x"})),
                Ok(json!({"model": "a", "messages": [{"role": "user"}, {"role": "x"}], "n": 1})),
            ),
            (
                vec![name("n")],
                Edit::Add(None, json!(1)),
                Err("Can not add a value to Newtonsoft.Json.Linq.JValue"),
            ),
            (
                vec![],
                Edit::RemoveName("model".into()),
                Ok(json!({"messages": [{"role": "user"}], "n": 1})),
            ),
            (vec![], Edit::RemoveName("absent".into()), Ok(start.clone())),
            (
                vec![name("messages"), Key::At(0)],
                Edit::RemoveSelf,
                Ok(json!({"model": "a", "messages": [], "n": 1})),
            ),
            (
                vec![name("n")],
                Edit::RemoveSelf,
                Ok(json!({"model": "a", "messages": [{"role": "user"}]})),
            ),
            (
                vec![name("absent")],
                Edit::RemoveSelf,
                Err("Object reference not set"),
            ),
            (vec![], Edit::RemoveSelf, Err("The parent is missing")),
        ];
        for (path, edit, want) in cases {
            let mut v = start.clone();
            let shown = format!("{path:?} {edit:?}");
            match (apply(&mut v, &path, edit), want) {
                (Ok(()), Ok(want)) => assert_eq!(v, want, "{shown}"),
                (Err(e), Err(want)) => assert!(e.contains(want), "{shown}: {e}"),
                (got, want) => panic!("{shown}: got {got:?} {v}, want {want:?}"),
            }
        }
    }
}
