//! `edgegw catalog`: operator tools for the API-management catalog.

use std::{
    io::{IsTerminal, Read},
    path::Path,
};

use anyhow::{Context, bail};

use gateway_model::{
    catalog::{Catalog, CatalogError},
    keys::{hash_key, to_hex},
};

use crate::config::Config;

/// Prints the hex SHA-256 of a subscription key, as the catalog stores it.
/// Without `key`, reads it from standard input, so that the secret stays
/// out of shell history and `ps`.
pub fn hash(key: Option<&str>) -> anyhow::Result<()> {
    let key = match key {
        Some(k) => k.to_string(),
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("subscription key (one line, then Enter):");
            }
            one_line(stdin.lock())?
        }
    };
    if key.is_empty() {
        bail!("the key is empty; give the subscription key to hash");
    }
    println!("{}", to_hex(&hash_key(&key)));
    Ok(())
}

/// The key on standard input: one line, its line ending (LF or CRLF)
/// removed; anything after it is refused rather than hashed into the key.
fn one_line(input: impl Read) -> anyhow::Result<String> {
    const MAX: u64 = 64 * 1024;
    let mut text = String::new();
    input
        .take(MAX + 1)
        .read_to_string(&mut text)
        .context("reading the key from standard input (UTF-8 text)")?;
    if text.len() as u64 > MAX {
        bail!("standard input holds more than {MAX} bytes; give one key on one line");
    }
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains(['\n', '\r']) {
        bail!("standard input holds more than one line; give one key on one line");
    }
    Ok(line.to_string())
}

/// Validates a catalog, alone or against a gateway configuration; prints
/// every problem on its own line.
pub fn validate(file: &Path, config: Option<&Path>) -> anyhow::Result<()> {
    let (apis, backends) = match config {
        Some(c) => {
            let c = Config::load(c)?;
            (Some(c.apis), Some(c.backends))
        }
        None => (None, None),
    };
    match Catalog::load(file, apis.as_deref(), backends.as_deref()) {
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

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn key_from_standard_input_is_one_line() {
        for (input, key) in [
            ("k1\n", "k1"),
            ("k1", "k1"),
            ("k1\r\n", "k1"),
            (" spaced key \n", " spaced key "),
            ("\n", ""),
            ("", ""),
        ] {
            assert_eq!(one_line(input.as_bytes()).unwrap(), key, "{input:?}");
        }
        for bad in ["k1\nk2", "k1\n\n", "k1\rk2\n"] {
            let err = one_line(bad.as_bytes()).unwrap_err().to_string();
            assert!(err.contains("more than one line"), "{bad:?}: {err}");
        }
        assert!(one_line(&[0xff, b'\n'][..]).is_err());
        assert!(one_line(&vec![b'k'; 70_000][..]).is_err());
    }
}
