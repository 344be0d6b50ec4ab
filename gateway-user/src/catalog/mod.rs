//! The API-management catalog (`catalog.yaml`): API-management settings of
//! the gateway's APIs and operations, products, subscriptions with hashed
//! keys, named values, and policies at every scope.
//!
//! The file is parsed (`file`), then validated into `Catalog`; validation
//! collects every problem with its place instead of stopping at the first.
//! APIs themselves (path, backend, operations) are declared in the gateway
//! configuration; the catalog refers to them by name.

mod file;
mod named_values;
mod subscriptions;

pub use named_values::NamedValues;
pub use subscriptions::{Scope, State, Subscription, Subscriptions, hash_key, to_hex};

use std::{collections::HashMap, path::Path, sync::Arc};

/// Maps by API or operation name, looked up on every call: hashed with
/// foldhash rather than SipHash, as the names come from the configuration,
/// never from the caller.
type Names<T> = HashMap<String, T, foldhash::fast::RandomState>;

use hyper::header::HeaderName;

use crate::{
    config::Api,
    policy::{Pipeline, ScopePolicies, parse_scope},
};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog file {path}: {source}; check the path and its permissions")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    /// Every problem found, each with its place.
    #[error("{}", .problems.join("; "))]
    Invalid { problems: Vec<String> },
}

/// A product: a bundle of APIs.
#[derive(Debug)]
pub struct Product {
    pub name: String,
    pub subscription_required: bool,
    pub apis: Vec<String>,
}

/// API-management settings of one API, with its composed pipelines.
#[derive(Debug)]
pub struct ManagedApi {
    /// False when the API says so or belongs to an open product.
    pub subscription_required: bool,
    pub key_header: HeaderName,
    pub key_query: String,
    /// The product whose policies apply to calls without a key: the first
    /// open product listing the API.
    pub open_product: Option<usize>,
    /// Pipelines by product: index 0 without a product, i + 1 for
    /// product i (only products that list the API).
    pipelines: Vec<Option<Arc<Pipeline>>>,
    /// Same, for operations that have their own policies.
    operations: Names<Vec<Option<Arc<Pipeline>>>>,
}

static NO_POLICIES: Pipeline = Pipeline::EMPTY;

impl ManagedApi {
    /// The pipeline for an operation (or the API) reached through a product.
    pub fn pipeline(&self, operation: Option<&str>, product: Option<usize>) -> &Pipeline {
        let by_product = operation
            .and_then(|o| self.operations.get(o))
            .unwrap_or(&self.pipelines);
        let slot = product.map_or(0, |p| p + 1);
        by_product
            .get(slot)
            .and_then(Option::as_deref)
            .or_else(|| by_product.first().and_then(Option::as_deref))
            .unwrap_or(&NO_POLICIES)
    }
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub named_values: NamedValues,
    pub subscriptions: Subscriptions,
    pub products: Vec<Product>,
    apis: Names<ManagedApi>,
    /// Global policies, for APIs the catalog does not list.
    unmanaged: Arc<Pipeline>,
}

impl Catalog {
    /// Reads and validates a catalog; with `apis` (the gateway's), API and
    /// operation names are checked against them.
    pub fn load(path: &Path, apis: Option<&[Api]>) -> Result<Catalog, CatalogError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&shown, &text, apis)
    }

    pub fn parse(path: &str, text: &str, apis: Option<&[Api]>) -> Result<Catalog, CatalogError> {
        let file: file::CatalogFile =
            crate::config::yaml::from_str(text).map_err(|e| CatalogError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?;
        let mut problems = Vec::new();
        let catalog = build(file, apis, &mut problems);
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(CatalogError::Invalid {
                problems: problems
                    .into_iter()
                    .map(|p| format!("{path}: {p}"))
                    .collect(),
            })
        }
    }

    /// The settings of an API the catalog lists.
    pub fn api(&self, name: &str) -> Option<&ManagedApi> {
        self.apis.get(name)
    }

    /// Global policies only, for APIs the catalog does not list.
    pub fn unmanaged(&self) -> &Pipeline {
        &self.unmanaged
    }

    /// Every backend a `set-backend-service` policy may switch to.
    pub fn backends(&self) -> Vec<crate::config::Backend> {
        let mut out: Vec<crate::config::Backend> = Vec::new();
        let pipelines = self
            .apis
            .values()
            .flat_map(|a| a.pipelines.iter().chain(a.operations.values().flatten()))
            .flatten()
            .chain(std::iter::once(&self.unmanaged));
        for pipeline in pipelines {
            for b in pipeline.backends() {
                if !out.contains(b) {
                    out.push(b.clone());
                }
            }
        }
        out
    }

    /// Whether subscription `sub` may call `api`; the product it goes
    /// through, if any.
    pub fn grants(&self, sub: &Subscription, api: &str) -> Option<Option<usize>> {
        match &sub.scope {
            Scope::All => Some(None),
            Scope::Api(a) => (a == api).then_some(None),
            Scope::Product(p) => {
                let index = self.products.iter().position(|x| x.name == *p)?;
                self.products[index]
                    .apis
                    .iter()
                    .any(|a| a == api)
                    .then_some(Some(index))
            }
        }
    }
}

fn build(file: file::CatalogFile, known: Option<&[Api]>, problems: &mut Vec<String>) -> Catalog {
    let mut catalog = Catalog::default();
    for nv in &file.named_values {
        if let Err(m) = catalog.named_values.insert(&nv.name, &nv.value, nv.secret) {
            problems.push(m);
        }
    }
    let named = &catalog.named_values;
    let global = parse_scope(file.policies.as_ref(), "global policies", named, problems);

    // Products and their policies.
    let mut product_scopes = Vec::new();
    for (i, p) in file.products.iter().enumerate() {
        let at = format!("product \"{}\"", p.name);
        if p.name.is_empty() || file.products[..i].iter().any(|o| o.name == p.name) {
            problems.push(format!("{at}: name is empty or used twice"));
        }
        for api in &p.apis {
            if !file.apis.iter().any(|a| a.name == *api) {
                problems.push(format!(
                    "{at}: api \"{api}\" is not in the catalog's apis; add it there first"
                ));
            }
        }
        product_scopes.push(parse_scope(p.policies.as_ref(), &at, named, problems));
        catalog.products.push(Product {
            name: p.name.clone(),
            subscription_required: p.subscription_required,
            apis: p.apis.clone(),
        });
    }

    // APIs, operations, and the composed pipelines.
    for (i, a) in file.apis.iter().enumerate() {
        let at = format!("api \"{}\"", a.name);
        if file.apis[..i].iter().any(|o| o.name == a.name) {
            problems.push(format!("{at}: listed twice"));
        }
        let gateway_api = known.map(|apis| apis.iter().find(|g| *g.name == *a.name));
        if let Some(None) = gateway_api {
            problems.push(format!(
                "{at}: no API of that name in the gateway configuration; add an [[apis]] entry or fix the name"
            ));
        }
        let key_header = HeaderName::from_bytes(a.subscription_key.header.as_bytes())
            .unwrap_or_else(|_| {
                problems.push(format!(
                    "{at}: subscription_key.header \"{}\" is not a valid header name",
                    a.subscription_key.header
                ));
                HeaderName::from_static("ocp-apim-subscription-key")
            });
        if a.subscription_key.query.is_empty() {
            problems.push(format!("{at}: subscription_key.query is empty"));
        }
        let api_scope = parse_scope(a.policies.as_ref(), &at, named, problems);
        let in_products: Vec<usize> = (0..catalog.products.len())
            .filter(|&p| catalog.products[p].apis.contains(&a.name))
            .collect();
        let open_product = in_products
            .iter()
            .copied()
            .find(|&p| !catalog.products[p].subscription_required);
        let pipelines_for = |inner: Option<&ScopePolicies>| {
            let mut slots = vec![None; catalog.products.len() + 1];
            let mut scopes = vec![&global];
            scopes.push(&api_scope);
            scopes.extend(inner);
            slots[0] = Some(Arc::new(Pipeline::new(&scopes)));
            for &p in &in_products {
                let mut scopes = vec![&global, &product_scopes[p], &api_scope];
                scopes.extend(inner);
                slots[p + 1] = Some(Arc::new(Pipeline::new(&scopes)));
            }
            slots
        };
        let mut operations = Names::default();
        for (j, op) in a.operations.iter().enumerate() {
            let op_at = format!("{at}: operation \"{}\"", op.name);
            if a.operations[..j].iter().any(|o| *o.name == *op.name) {
                problems.push(format!("{op_at}: listed twice"));
            }
            if let Some(Some(g)) = gateway_api
                && !g.operations.iter().any(|o| *o.name == *op.name)
            {
                problems.push(format!(
                    "{op_at}: the API has no operation of that name in the gateway configuration"
                ));
            }
            let op_scope = parse_scope(op.policies.as_ref(), &op_at, named, problems);
            operations.insert(op.name.clone(), pipelines_for(Some(&op_scope)));
        }
        let managed = ManagedApi {
            subscription_required: a.subscription_required && open_product.is_none(),
            key_header,
            key_query: a.subscription_key.query.clone(),
            open_product,
            pipelines: pipelines_for(None),
            operations,
        };
        catalog.apis.insert(a.name.clone(), managed);
    }
    catalog.unmanaged = Arc::new(Pipeline::new(&[&global]));

    // Subscriptions.
    for s in &file.subscriptions {
        let at = format!("subscription \"{}\"", s.id);
        let scope = match s.scope.split_once(':') {
            None if s.scope == "all" => Some(Scope::All),
            Some(("product", p)) if catalog.products.iter().any(|x| x.name == p) => {
                Some(Scope::Product(p.into()))
            }
            Some(("api", a)) if catalog.apis.contains_key(a) => Some(Scope::Api(a.into())),
            _ => {
                problems.push(format!(
                    "{at}: scope \"{}\" must be \"all\", \"product:NAME\" or \"api:NAME\" of a product or API in this catalog",
                    s.scope
                ));
                None
            }
        };
        let state = match s.state.as_deref() {
            None | Some("active") => Some(State::Active),
            Some("suspended") => Some(State::Suspended),
            Some("expired") => Some(State::Expired),
            Some(other) => {
                problems.push(format!(
                    "{at}: state \"{other}\" is unknown; use active, suspended or expired"
                ));
                None
            }
        };
        let mut keys = Vec::new();
        for (field, hex) in [
            ("primary_key_sha256", Some(&s.primary_key_sha256)),
            ("secondary_key_sha256", s.secondary_key_sha256.as_ref()),
        ] {
            match hex.map(|h| subscriptions::parse_hex(h)) {
                None => {}
                Some(Ok(k)) => keys.push(k),
                Some(Err(m)) => problems.push(format!("{at}: {field}: {m}")),
            }
        }
        if let (Some(scope), Some(state)) = (scope, state) {
            let sub = Subscription {
                id: s.id.clone(),
                scope,
                state,
            };
            if let Err(m) = catalog.subscriptions.insert(sub, &keys) {
                problems.push(format!("{at}: {m}"));
            }
        }
    }
    catalog
}

#[cfg(test)]
mod tests;
