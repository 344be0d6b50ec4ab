//! The parts of an OpenAPI document the import uses, read straight from
//! its text: everything else (schemas, examples, descriptions) is skipped
//! unread, so a number of any size or a keyword of any shape there cannot
//! refuse the document. Maps keep document order.

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};

/// The HTTP methods a path item holds, as OpenAPI spells them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[derive(Debug, Default, Deserialize)]
pub struct Document {
    /// "3.0.x" or "3.1.x" (a number when written unquoted in YAML).
    #[serde(default)]
    pub openapi: Option<Scalar>,
    /// Present in Swagger 2.0 documents.
    #[serde(default)]
    pub swagger: Option<Scalar>,
    #[serde(default)]
    pub servers: Option<Vec<Server>>,
    #[serde(default)]
    pub paths: Option<Ordered<PathItem>>,
    #[serde(default)]
    pub components: Option<Components>,
    /// 3.1: requests the API sends; counted, not imported.
    #[serde(default)]
    pub webhooks: Option<Ordered<IgnoredAny>>,
    #[serde(default)]
    pub security: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Components {
    /// 3.1: path items that `paths` refer to with `$ref`.
    #[serde(default, rename = "pathItems")]
    pub path_items: Option<Ordered<PathItem>>,
    #[serde(default, rename = "securitySchemes")]
    pub security_schemes: Option<Ordered<IgnoredAny>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PathItem {
    #[serde(default, rename = "$ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub servers: Option<Vec<Server>>,
    /// Parameters of every operation of the path; read for their count only
    /// (the gateway routes on method and path).
    #[serde(default)]
    pub parameters: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    pub get: Option<Operation>,
    #[serde(default)]
    pub put: Option<Operation>,
    #[serde(default)]
    pub post: Option<Operation>,
    #[serde(default)]
    pub delete: Option<Operation>,
    #[serde(default)]
    pub options: Option<Operation>,
    #[serde(default)]
    pub head: Option<Operation>,
    #[serde(default)]
    pub patch: Option<Operation>,
    #[serde(default)]
    pub trace: Option<Operation>,
    /// 3.2's QUERY method and other methods: reported, not imported.
    #[serde(default)]
    pub query: Option<Operation>,
    #[serde(default, rename = "additionalOperations")]
    pub additional_operations: Option<Ordered<Operation>>,
}

impl PathItem {
    /// The operations of the item, in `METHODS` order.
    pub fn operations(&self) -> Vec<(&'static str, &Operation)> {
        let slots = [
            &self.get,
            &self.put,
            &self.post,
            &self.delete,
            &self.options,
            &self.head,
            &self.patch,
            &self.trace,
        ];
        METHODS
            .iter()
            .zip(slots)
            .filter_map(|(m, op)| op.as_ref().map(|op| (*m, op)))
            .collect()
    }

    /// `self` over `base`: fields set here win (a path item that refers
    /// to another and adds or replaces some of its operations).
    pub fn over(self, base: &PathItem) -> PathItem {
        PathItem {
            reference: None,
            servers: self.servers.or_else(|| base.servers.clone()),
            parameters: self.parameters.or_else(|| base.parameters.clone()),
            get: self.get.or_else(|| base.get.clone()),
            put: self.put.or_else(|| base.put.clone()),
            post: self.post.or_else(|| base.post.clone()),
            delete: self.delete.or_else(|| base.delete.clone()),
            options: self.options.or_else(|| base.options.clone()),
            head: self.head.or_else(|| base.head.clone()),
            patch: self.patch.or_else(|| base.patch.clone()),
            trace: self.trace.or_else(|| base.trace.clone()),
            query: self.query.or_else(|| base.query.clone()),
            additional_operations: self
                .additional_operations
                .or_else(|| base.additional_operations.clone()),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Operation {
    #[serde(default, rename = "operationId")]
    pub operation_id: Option<Scalar>,
    #[serde(default)]
    pub servers: Option<Vec<Server>>,
    /// 3.x: requests the API sends back; reported, not imported.
    #[serde(default)]
    pub callbacks: Option<Ordered<IgnoredAny>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Server {
    pub url: String,
    #[serde(default)]
    pub variables: Option<Ordered<Variable>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Variable {
    #[serde(default)]
    pub default: Option<Scalar>,
}

/// A string, number or boolean, as text: `openapi: 3.0` and
/// `operationId: 123` are read as their spelling.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.into()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(format!("{v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A map with string keys, in document order.
#[derive(Clone, Debug)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<T> Ordered<T> {
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Scalar, T>()? {
                    out.push((k.0, v));
                }
                Ok(Ordered(out))
            }
            fn visit_unit<E>(self) -> Result<Ordered<T>, E> {
                Ok(Ordered(Vec::new()))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}
