//! Declarative configuration for CI/CD: `edgegw-cp export DIR` writes the
//! catalog of a running control plane as one YAML file per resource;
//! `edgegw-cp apply DIR [--dry-run] [--prune]` makes a running control
//! plane match such a folder in one transaction (`crate::apply` on the
//! server side). Both talk to the control plane over its REST API with an
//! admin token, as any CI job would.
//!
//! Layout (`segment` is the resource's route under `/v1`):
//!
//! ```text
//! DIR/apis/NAME.yaml  products/  subscriptions/ID.yaml  named-values/
//!     fragments/  backends/  dos-profiles/  policies.yaml  redis.yaml
//! ```

pub mod client;
pub mod commands;
mod folder;
mod render;
mod spans;

use std::path::PathBuf;

use crate::store::Kind;

/// Where a resource's file is, relative to the folder.
pub fn path_of(kind: Kind, name: &str) -> PathBuf {
    if kind.singleton() {
        PathBuf::from(format!("{}.yaml", kind.segment()))
    } else {
        PathBuf::from(kind.segment()).join(format!("{name}.yaml"))
    }
}

/// The environment variable a secret named value is read from, as export
/// writes it: `EDGEGW_SECRET_` and the name in capitals, every character
/// other than a letter or digit as `_` (`backend-token` →
/// `EDGEGW_SECRET_BACKEND_TOKEN`).
pub fn secret_env(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("EDGEGW_SECRET_{tail}")
}
