//! The catalog (YAML or JSON) and configuration (TOML) parsers: any
//! document is taken or refused with a message, never a panic, within the
//! run's time and memory bounds (`cargo xtask fuzz` sets libFuzzer's
//! `-timeout` and `-rss_limit_mb`). The first byte picks the parser.
#![no_main]

use gateway_model::{catalog::Catalog, config::Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let message = if pick & 1 == 0 {
        Catalog::parse("fuzz.yaml", text, None, None)
            .err()
            .map(|e| e.to_string())
    } else {
        Config::parse("fuzz.toml", text)
            .err()
            .map(|e| e.to_string())
    };
    assert!(message.is_none_or(|m| !m.is_empty()));
});
