//! The escaping of expressions in APIM policy XML (`apim::escape_expressions`):
//! never a panic, and a document the XML parser already reads is read
//! back the same after escaping (same elements, text and attributes).
#![no_main]

use gateway_model::apim::escape_expressions;
use libfuzzer_sys::fuzz_target;

/// Every node's name, text and attributes, in document order.
fn tree(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .map(|n| {
            let attrs: Vec<String> = n
                .attributes()
                .map(|a| format!("{}={}", a.name(), a.value()))
                .collect();
            format!("{}|{:?}|{}", n.tag_name().name(), n.text(), attrs.join(","))
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let escaped = escape_expressions(text);
    if let Ok(original) = roxmltree::Document::parse(text) {
        let again = roxmltree::Document::parse(&escaped)
            .unwrap_or_else(|e| panic!("escaping broke a well-formed document: {e}"));
        assert_eq!(tree(&original), tree(&again));
    }
});
