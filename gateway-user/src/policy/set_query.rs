//! `set-query-parameter`: sets, appends, skips or deletes a query parameter
//! of the request sent to the backend.

use gateway_model::policy::set_query::SetQuerySpec;

use super::context::{Query, percent_encode};

pub struct SetQuery {
    name: String,
    value: Option<String>,
    action: String,
}

impl std::fmt::Debug for SetQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetQuery({}, {})", self.name, self.action)
    }
}

impl SetQuery {
    pub fn new(spec: &SetQuerySpec) -> Self {
        SetQuery {
            name: spec.name.clone(),
            value: spec.value.as_deref().map(percent_encode),
            action: spec.action.clone(),
        }
    }

    pub fn apply(&self, query: &mut Query) {
        let present = query.get(&self.name).is_some();
        let pair = || (percent_encode(&self.name), self.value.clone());
        match self.action.as_str() {
            "delete" => query.remove(&self.name),
            "skip" if present => {}
            "append" => query.0.push(pair()),
            _ => {
                query.remove(&self.name);
                query.0.push(pair());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(args: &str, q: &str) -> String {
        let mut query = Query::parse(Some(q));
        SetQuery::new(&SetQuerySpec::parse(serde_yaml::from_str(args).unwrap()).unwrap())
            .apply(&mut query);
        query.to_suffix()
    }

    #[test]
    fn each_exists_action() {
        assert_eq!(apply("{name: v, value: 'a b'}", "v=1&x=2"), "?x=2&v=a%20b");
        assert_eq!(
            apply("{name: v, value: 2, exists_action: skip}", "v=1"),
            "?v=1"
        );
        assert_eq!(
            apply("{name: v, value: 2, exists_action: skip}", ""),
            "?v=2"
        );
        assert_eq!(
            apply("{name: v, value: 2, exists_action: append}", "v=1"),
            "?v=1&v=2"
        );
        assert_eq!(apply("{name: v, exists_action: delete}", "v=1&w"), "?w");
    }
}
