//! The condition language of `choose` (`gateway_model::policy::condition`), through the
//! catalog parser that reads it: any text as a `when` never panics or
//! overflows the stack, and is either taken or refused with a message.
#![no_main]

use gateway_model::catalog::Catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(when) = std::str::from_utf8(data) else {
        return;
    };
    let quoted = quoted(when);
    let catalog = format!(
        "apis:\n  - name: a\n    policies:\n      inbound:\n        - choose:\n            - when: {quoted}\n              policies:\n                - set-header: {{name: x-a, value: b}}\n"
    );
    if let Err(e) = Catalog::parse("fuzz.yaml", &catalog, None, None) {
        assert!(!e.to_string().is_empty());
    }
});

/// `text` as a YAML double-quoted scalar, read back as it is.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}
