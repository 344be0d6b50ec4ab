//! Key templates (`gateway_model::policy::key_template`): never panic; a text without braces
//! is its own literal template (taken unless empty), and a template taken
//! is taken again from the same text.
#![no_main]

use gateway_model::policy::key_template::KeyTemplate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = KeyTemplate::parse(text);
    if !text.contains(['{', '}']) {
        assert_eq!(parsed.is_ok(), !text.is_empty(), "{text:?}: {parsed:?}");
    }
    if let Ok(t) = &parsed {
        assert_eq!(KeyTemplate::parse(text).as_ref(), Ok(t));
    } else if let Err(e) = &parsed {
        assert!(!e.is_empty());
    }
});
