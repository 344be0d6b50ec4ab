//! Command-line options of the measuring binaries (`tests/src/bin/`),
//! which `cargo xtask bench ...` runs with the user's arguments.

use crate::cp::Store;

/// `NAME N`, or `default` when absent; a value that is not a number
/// stops the bench naming the option.
pub fn number(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        })
        .unwrap_or(default)
}

/// `--store sqlite|postgres` (default sqlite): the control plane's store.
pub fn store(args: &[String]) -> Store {
    match args
        .iter()
        .position(|a| a == "--store")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        None | Some("sqlite") => Store::Sqlite,
        Some("postgres") => Store::Postgres,
        Some(other) => panic!("--store {other}: use sqlite or postgres"),
    }
}
