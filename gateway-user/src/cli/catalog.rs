//! `edgegw catalog`: operator tools for the API-management catalog.

use std::path::Path;

use anyhow::bail;

use crate::{
    catalog::{Catalog, CatalogError, hash_key, to_hex},
    config::Config,
};

/// Prints the hex SHA-256 of a subscription key, as the catalog stores it.
pub fn hash(key: &str) -> anyhow::Result<()> {
    if key.is_empty() {
        bail!("the key is empty; give the subscription key to hash");
    }
    println!("{}", to_hex(&hash_key(key)));
    Ok(())
}

/// Validates a catalog, alone or against a gateway configuration; prints
/// every problem on its own line.
pub fn validate(file: &Path, config: Option<&Path>) -> anyhow::Result<()> {
    let apis = match config {
        Some(c) => Some(Config::load(c)?.apis),
        None => None,
    };
    match Catalog::load(file, apis.as_deref()) {
        Ok(c) => {
            println!(
                "{}: valid ({} products, {} subscriptions)",
                file.display(),
                c.products.len(),
                c.subscriptions.len()
            );
            Ok(())
        }
        Err(CatalogError::Invalid { problems }) => {
            for p in &problems {
                eprintln!("{p}");
            }
            bail!(
                "{}: {} problem(s); fix them and validate again",
                file.display(),
                problems.len()
            )
        }
        Err(e) => Err(e.into()),
    }
}
