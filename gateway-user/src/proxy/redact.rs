//! Secrets kept out of the access log and spans: the values of query
//! parameters that carry keys (`subscription-key`, each API's own key
//! parameter, and `[telemetry] redact_query`).

/// The default subscription-key parameter, redacted even where no API
/// uses it (a client that sends it to the wrong gateway still leaks it).
pub const SUBSCRIPTION_KEY: &str = "subscription-key";

/// `query` with the value of every parameter named in `names` (ASCII
/// case-insensitive) replaced by `REDACTED`.
pub fn query(query: &str, names: &[String]) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if names.iter().any(|n| n.eq_ignore_ascii_case(name)) => {
                out.push_str(name);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_values_are_redacted() {
        let names = ["subscription-key".to_string(), "token".to_string()];
        assert_eq!(
            query("a=1&Subscription-Key=s3cret&b&token=t&tokens=x", &names),
            "a=1&Subscription-Key=REDACTED&b&token=REDACTED&tokens=x"
        );
        assert_eq!(query("", &names), "");
    }
}
