//! The catalog file as written by the operator (YAML), and as the control
//! plane writes it into bundles (JSON). Structure errors stop parsing
//! (serde names the line); everything else is checked by `validate` so
//! that every problem is reported at once.

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// `{{name}}` values substituted into policy settings at load time.
    #[serde(default)]
    pub named_values: Vec<NamedValueFile>,
    /// Global policies: the outermost scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Value>,
    /// API-management settings of the APIs of the gateway configuration.
    #[serde(default)]
    pub apis: Vec<ApiFile>,
    /// Bundles of APIs that subscriptions are granted to.
    #[serde(default)]
    pub products: Vec<ProductFile>,
    /// Who may call: scope, hashed keys, state.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionFile>,
    /// Policy fragments `include-fragment` expands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fragments: Vec<FragmentFile>,
    /// Named certificates `validate-client-certificate` refers to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateFile>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFile {
    /// Referenced as `certificate-id` / `issuer-certificate-id`.
    pub id: String,
    /// The certificate, PEM (its first CERTIFICATE block).
    pub pem: String,
    /// A CA certificate: client certificates chaining to it pass
    /// `validate-trust` (as API Management's CA certificates).
    #[serde(default)]
    pub ca: bool,
    /// PEM private key file on the node, for `authentication-certificate`
    /// (the key never travels in the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FragmentFile {
    /// Referenced as `include-fragment` `fragment-id`.
    pub name: String,
    /// What it is for (shown, not interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its policies: an APIM `<fragment>` XML document, or a list of
    /// policies as a section takes them (without `base`).
    pub policies: Value,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedValueFile {
    /// Referenced as `{{name}}`.
    pub name: String,
    /// The text substituted.
    pub value: String,
    /// Secret values are never logged nor shown in debug output.
    #[serde(default)]
    pub secret: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    /// Name of an `[[apis]]` entry of the gateway configuration.
    pub name: String,
    /// Whether a subscription key is required (default true).
    #[serde(default = "yes")]
    pub subscription_required: bool,
    /// Where the key is read from.
    #[serde(default)]
    pub subscription_key: KeyNamesFile,
    /// API-scope policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Value>,
    /// Operation-scope policies, by operation name.
    #[serde(default)]
    pub operations: Vec<OperationFile>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyNamesFile {
    /// Request header carrying the key.
    #[serde(default = "default_header")]
    pub header: String,
    /// Query parameter carrying the key.
    #[serde(default = "default_query")]
    pub query: String,
}

impl Default for KeyNamesFile {
    fn default() -> Self {
        Self {
            header: default_header(),
            query: default_query(),
        }
    }
}

fn default_header() -> String {
    "Ocp-Apim-Subscription-Key".into()
}

fn default_query() -> String {
    "subscription-key".into()
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperationFile {
    /// Name of an operation of the API in the gateway configuration.
    pub name: String,
    /// Operation-scope policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProductFile {
    /// Unique name; subscriptions refer to it.
    pub name: String,
    /// An open product (false) lets its APIs be called without a key.
    #[serde(default = "yes")]
    pub subscription_required: bool,
    /// Names of the APIs in the product.
    #[serde(default)]
    pub apis: Vec<String>,
    /// Product-scope policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionFile {
    /// Unique id, used by `rate-limit` counters and in logs.
    pub id: String,
    /// "product:NAME", "api:NAME" or "all".
    pub scope: String,
    /// Hex SHA-256 of the primary key (`edgegw catalog hash-key KEY`).
    pub primary_key_sha256: String,
    /// Hex SHA-256 of the secondary key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_key_sha256: Option<String>,
    /// "active" (default), "suspended" or "expired".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}
