//! The API-management catalog at run time: the validated catalog of the
//! model (`gateway_model::catalog`) with each API's policy pipelines
//! composed, per product and per operation. Building them is where policy
//! runtimes (counters, JWKS caches) are created; validation is the
//! model's alone.

pub use gateway_model::catalog::{
    CatalogError, NamedValues, Product, Scope, State, Subscription, Subscriptions,
};
pub use gateway_model::keys::{hash_key, to_hex};

use std::{collections::HashMap, path::Path, sync::Arc};

/// Maps by API or operation name, looked up on every call: hashed with
/// foldhash rather than SipHash, as the names come from the configuration,
/// never from the caller.
type Names<T> = HashMap<String, T, foldhash::fast::RandomState>;

use arc_swap::ArcSwap;
use gateway_model::{catalog as model, config::BundleDelta};
use hyper::header::HeaderName;

use crate::{
    config::{Api, NamedBackend},
    policy::{Pipeline, ScopePolicies},
    state_registry::Staging,
};

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
    /// The validated catalog (named values, products, subscriptions),
    /// shared with the configuration it came from, not copied.
    model: Arc<model::Catalog>,
    /// The model's subscriptions at first; a control plane's change of
    /// subscriptions swaps in a new set without rebuilding anything else
    /// (`apply_subscriptions`).
    subscriptions: ArcSwap<Subscriptions>,
    apis: Names<ManagedApi>,
    /// Global policies, for APIs the catalog does not list.
    unmanaged: Arc<Pipeline>,
}

impl Catalog {
    /// Reads, validates and builds a catalog; with `apis` and `backends`
    /// (the gateway's), API, operation and backend names are checked
    /// against them.
    pub fn load(
        path: &Path,
        apis: Option<&[Api]>,
        backends: Option<&[NamedBackend]>,
        staging: &mut Staging,
    ) -> Result<Catalog, CatalogError> {
        model::Catalog::load(path, apis, backends).map(|c| Catalog::build(Arc::new(c), staging))
    }

    pub fn parse(
        path: &str,
        text: &str,
        apis: Option<&[Api]>,
        backends: Option<&[NamedBackend]>,
        staging: &mut Staging,
    ) -> Result<Catalog, CatalogError> {
        model::Catalog::parse(path, text, apis, backends)
            .map(|c| Catalog::build(Arc::new(c), staging))
    }

    /// Composes the pipelines of a validated catalog.
    pub fn build(catalog: Arc<model::Catalog>, staging: &mut Staging) -> Catalog {
        staging.use_certificates(&catalog.certificates);
        staging.use_backends(&catalog.backends);
        let global = ScopePolicies::build(&catalog.global, staging);
        let product_scopes: Vec<ScopePolicies> = catalog
            .products
            .iter()
            .map(|p| ScopePolicies::build(&p.policies, staging))
            .collect();
        let mut apis = Names::default();
        for a in &catalog.apis {
            let api_scope = ScopePolicies::build(&a.policies, staging);
            let pipelines_for = |inner: Option<&ScopePolicies>| {
                let mut slots = vec![None; catalog.products.len() + 1];
                let mut scopes = vec![&global];
                scopes.push(&api_scope);
                scopes.extend(inner);
                slots[0] = Some(Arc::new(Pipeline::new(&scopes)));
                for &p in &a.in_products {
                    let mut scopes = vec![&global, &product_scopes[p], &api_scope];
                    scopes.extend(inner);
                    slots[p + 1] = Some(Arc::new(Pipeline::new(&scopes)));
                }
                slots
            };
            let operations = a
                .operations
                .iter()
                .map(|(name, scope)| {
                    let scope = ScopePolicies::build(scope, staging);
                    (name.clone(), pipelines_for(Some(&scope)))
                })
                .collect();
            let managed = ManagedApi {
                subscription_required: a.subscription_required,
                key_header: a.key_header.clone(),
                key_query: a.key_query.clone(),
                open_product: a.open_product,
                pipelines: pipelines_for(None),
                operations,
            };
            apis.insert(a.name.clone(), managed);
        }
        Catalog {
            unmanaged: Arc::new(Pipeline::new(&[&global])),
            subscriptions: ArcSwap::new(catalog.subscriptions.clone()),
            model: catalog,
            apis,
        }
    }

    /// The subscriptions in force (a short-lived guard: read, then drop).
    pub fn subscriptions(&self) -> arc_swap::Guard<Arc<Subscriptions>> {
        self.subscriptions.load()
    }

    /// The subscriptions in force with a control plane's change applied,
    /// validated as the whole catalog's would be.
    pub fn patched_subscriptions(&self, delta: &BundleDelta) -> Result<Subscriptions, String> {
        self.model
            .patched_subscriptions(&self.subscriptions.load(), delta)
    }

    /// Puts `next` in force for the calls that start from now on.
    pub fn swap_subscriptions(&self, next: Subscriptions) {
        self.subscriptions.store(Arc::new(next));
    }

    pub fn products(&self) -> &[Product] {
        &self.model.products
    }

    /// The settings of an API the catalog lists.
    pub fn api(&self, name: &str) -> Option<&ManagedApi> {
        self.apis.get(name)
    }

    /// The query parameters subscription keys arrive in (redacted in logs).
    pub fn key_query_names(&self) -> impl Iterator<Item = String> + '_ {
        self.apis.values().map(|a| a.key_query.clone())
    }

    /// Global policies only, for APIs the catalog does not list.
    pub fn unmanaged(&self) -> &Pipeline {
        &self.unmanaged
    }

    /// Every client certificate an `authentication-certificate` policy
    /// may present.
    pub fn client_identities(&self) -> Vec<crate::config::ClientIdentity> {
        let mut out: Vec<crate::config::ClientIdentity> = Vec::new();
        let pipelines = self
            .apis
            .values()
            .flat_map(|a| a.pipelines.iter().chain(a.operations.values().flatten()))
            .flatten()
            .chain(std::iter::once(&self.unmanaged));
        for pipeline in pipelines {
            for id in pipeline.client_identities() {
                if !out.contains(id) {
                    out.push(id.clone());
                }
            }
        }
        out
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
                let index = self.products().iter().position(|x| x.name == *p)?;
                self.products()[index]
                    .apis
                    .iter()
                    .any(|a| a == api)
                    .then_some(Some(index))
            }
        }
    }
}

#[cfg(test)]
mod tests;
