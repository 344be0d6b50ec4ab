//! The API-management catalog (`catalog.yaml`): API-management settings of
//! the gateway's APIs and operations, products, subscriptions with hashed
//! keys, named values, and policies at every scope.
//!
//! The file is parsed (`file`), then validated into `Catalog`; validation
//! collects every problem with its place instead of stopping at the first.
//! APIs themselves (path, backend, operations) are declared in the gateway
//! configuration; the catalog refers to them by name. The gateway composes
//! the policy pipelines from this (`gateway-user/src/catalog`).

mod backends;
mod certificates;
pub mod file;
mod fragments;
mod named_values;
mod subscriptions;

pub use certificates::{NamedCertificate, find_with_key};
pub use fragments::{Expansion, Fragments};
pub use named_values::NamedValues;
pub use subscriptions::{Keyed, Scope, State, Subscription, Subscriptions};

use std::{path::Path, sync::Arc};

use http::header::HeaderName;

use crate::{
    config::Api,
    config::NamedBackend,
    keys::parse_hex,
    policy::{Placed, PolicySpec, ScopePolicies, parse_scope},
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
    pub policies: ScopePolicies,
}

/// API-management settings of one API of the gateway.
#[derive(Debug)]
pub struct CatalogApi {
    pub name: String,
    /// False when the API says so or belongs to an open product.
    pub subscription_required: bool,
    pub key_header: HeaderName,
    pub key_query: String,
    /// The product whose policies apply to calls without a key: the first
    /// open product listing the API.
    pub open_product: Option<usize>,
    /// The products listing the API (indexes into `Catalog::products`).
    pub in_products: Vec<usize>,
    pub policies: ScopePolicies,
    /// Operations with their own policies, by name.
    pub operations: Vec<(String, ScopePolicies)>,
}

/// A validated catalog.
#[derive(Debug, Default)]
pub struct Catalog {
    pub named_values: NamedValues,
    /// Shared, not copied, by the runtime that swaps in changed sets.
    pub subscriptions: Arc<Subscriptions>,
    pub products: Vec<Product>,
    pub apis: Vec<CatalogApi>,
    /// Global policies: the outermost scope.
    pub global: ScopePolicies,
    /// Named certificates (`validate-client-certificate`).
    pub certificates: Vec<NamedCertificate>,
    /// The gateway's named backends `set-backend-service backend-id`
    /// picks from (empty when validated without them).
    pub backends: Vec<NamedBackend>,
}

impl Catalog {
    /// Reads and validates a catalog; with `apis` (the gateway's), API and
    /// operation names are checked against them.
    /// `apis` and `backends`, when given, are the gateway's: references to
    /// others are refused.
    pub fn load(
        path: &Path,
        apis: Option<&[Api]>,
        backends: Option<&[NamedBackend]>,
    ) -> Result<Catalog, CatalogError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&shown, &text, apis, backends)
    }

    pub fn parse(
        path: &str,
        text: &str,
        apis: Option<&[Api]>,
        backends: Option<&[NamedBackend]>,
    ) -> Result<Catalog, CatalogError> {
        let file: file::CatalogFile =
            crate::config::yaml::from_str(text).map_err(|e| CatalogError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?;
        let mut problems = Vec::new();
        let catalog = validate(file, apis, backends, &mut problems);
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
}

impl Catalog {
    /// A subscription of this catalog's file, validated against its
    /// products and APIs; every problem, each with its place.
    pub fn subscription(&self, s: &file::SubscriptionFile) -> Result<Keyed, Vec<String>> {
        // Named only when there is a problem: 100,000 subscriptions are common.
        let at = || format!("subscription \"{}\"", s.id);
        let mut problems = Vec::new();
        let scope = match s.scope.split_once(':') {
            None if s.scope == "all" => Some(Scope::All),
            Some(("product", p)) if self.products.iter().any(|x| x.name == p) => {
                Some(Scope::Product(p.into()))
            }
            Some(("api", a)) if self.apis.iter().any(|x| x.name == a) => Some(Scope::Api(a.into())),
            _ => {
                problems.push(format!(
                    "{}: scope \"{}\" must be \"all\", \"product:NAME\" or \"api:NAME\" of a product or API in this catalog",
                    at(),
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
                    "{}: state \"{other}\" is unknown; use active, suspended or expired",
                    at()
                ));
                None
            }
        };
        let mut keys = Vec::new();
        for (field, hex) in [
            ("primary_key_sha256", Some(&s.primary_key_sha256)),
            ("secondary_key_sha256", s.secondary_key_sha256.as_ref()),
        ] {
            match hex.map(|h| parse_hex(h)) {
                None => {}
                Some(Ok(k)) => keys.push(k),
                Some(Err(m)) => problems.push(format!("{}: {field}: {m}", at())),
            }
        }
        match (scope, state) {
            (Some(scope), Some(state)) if problems.is_empty() => Ok((
                Subscription {
                    id: s.id.as_str().into(),
                    scope,
                    state,
                },
                keys,
            )),
            _ => Err(problems),
        }
    }

    /// `current` with a control plane's change of subscriptions applied,
    /// each new one validated as a whole catalog's would be: the products,
    /// APIs and policies stay as they are, so nothing else is rebuilt.
    pub fn patched_subscriptions(
        &self,
        current: &Subscriptions,
        change: &crate::config::BundleDelta,
    ) -> Result<Subscriptions, String> {
        let mut problems = Vec::new();
        let mut upserts = Vec::with_capacity(change.upsert.len());
        for s in &change.upsert {
            match self.subscription(s) {
                Ok(keyed) => upserts.push(keyed),
                Err(found) => problems.extend(found),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        current.patched(upserts, &change.delete)
    }
}

fn validate(
    file: file::CatalogFile,
    known: Option<&[Api]>,
    backends: Option<&[NamedBackend]>,
    problems: &mut Vec<String>,
) -> Catalog {
    let mut catalog = Catalog::default();
    for nv in &file.named_values {
        if let Err(m) = catalog.named_values.insert(&nv.name, &nv.value, nv.secret) {
            problems.push(m);
        }
    }
    for f in &file.fragments {
        let at = format!("fragment \"{}\"", f.name);
        match &f.policies {
            serde_yaml::Value::String(text) if crate::apim::is_xml(text) => {
                crate::apim::check_fragment(text, &at, problems);
            }
            serde_yaml::Value::Sequence(_) => {}
            _ => problems.push(format!(
                "{at}: policies must be a <fragment> XML document or a list of policies"
            )),
        }
        if let Err(m) = catalog
            .named_values
            .fragments
            .insert(&f.name, f.policies.clone())
        {
            problems.push(m);
        }
    }
    catalog.certificates = certificates::parse(&file.certificates, problems);
    let named = &catalog.named_values;
    catalog.global = parse_scope(file.policies.as_ref(), "global policies", named, problems);

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
        catalog.products.push(Product {
            name: p.name.clone(),
            subscription_required: p.subscription_required,
            apis: p.apis.clone(),
            policies: parse_scope(p.policies.as_ref(), &at, named, problems),
        });
    }

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
        let policies = parse_scope(a.policies.as_ref(), &at, named, problems);
        let in_products: Vec<usize> = (0..catalog.products.len())
            .filter(|&p| catalog.products[p].apis.contains(&a.name))
            .collect();
        let open_product = in_products
            .iter()
            .copied()
            .find(|&p| !catalog.products[p].subscription_required);
        let mut operations = Vec::new();
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
            let scope = parse_scope(op.policies.as_ref(), &op_at, named, problems);
            operations.push((op.name.clone(), scope));
        }
        catalog.apis.push(CatalogApi {
            name: a.name.clone(),
            subscription_required: a.subscription_required && open_product.is_none(),
            key_header,
            key_query: a.subscription_key.query.clone(),
            open_product,
            in_products,
            policies,
            operations,
        });
    }

    let mut subscriptions = Subscriptions::default();
    for s in &file.subscriptions {
        let checked = catalog.subscription(s).and_then(|(sub, keys)| {
            subscriptions
                .insert(sub, &keys)
                .map_err(|m| vec![format!("subscription \"{}\": {m}", s.id)])
        });
        if let Err(found) = checked {
            problems.extend(found);
        }
    }
    catalog.subscriptions = Arc::new(subscriptions);
    let scopes =
        std::iter::once(&catalog.global)
            .chain(catalog.products.iter().map(|p| &p.policies))
            .chain(catalog.apis.iter().flat_map(|a| {
                std::iter::once(&a.policies).chain(a.operations.iter().map(|(_, s)| s))
            }));
    let mut placed = Vec::new();
    for scope in scopes {
        for p in scope.policies() {
            every_policy(p, &mut placed);
        }
    }
    certificates::check_references(&placed, &catalog.certificates, problems);
    if let Some(backends) = backends {
        backends::check_references(&placed, backends, problems);
        catalog.backends = backends.to_vec();
    }
    catalog
}

/// `p` and, for a `choose`, every policy of its branches, into `out`:
/// what the checks of references to named things read.
fn every_policy<'a>(p: &'a Arc<Placed>, out: &mut Vec<&'a Placed>) {
    out.push(p);
    if let PolicySpec::Choose(c) = &p.spec {
        for p in c.whens.iter().flat_map(|(_, ps)| ps).chain(&c.otherwise) {
            every_policy(p, out);
        }
    }
}

#[cfg(test)]
mod tests;
