//! The state of a gateway's backend pools as it reports it: in
//! `edgegw status`, in its heartbeat, and so in the control plane's view
//! of the fleet (`GET /v1/gateways/{name}`). Unknown fields are accepted:
//! a newer gateway may say more than this control plane knows.

use serde::{Deserialize, Serialize};

/// One pool in service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolView {
    /// The `[[backends]]` name.
    pub backend: String,
    pub balance: String,
    pub members: Vec<MemberView>,
}

/// One member of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// host:port as configured.
    pub member: String,
    /// The address it resolved to that this entry is (each address of a
    /// host name is a member of its own); absent from older gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub priority: u32,
    pub weight: u32,
    /// "available", "unhealthy", "ejected" or "breaker-open".
    pub state: String,
    pub healthy: bool,
    pub ejected: bool,
    pub breaker_open: bool,
    /// Milliseconds until ejection and breaker let it take requests.
    pub back_in_ms: u64,
    pub outstanding: u32,
    pub requests: u64,
    pub failures: u64,
    /// Failures on live traffic since its last success (what ejection
    /// counts).
    #[serde(default)]
    pub recent_failures: u32,
    pub ejections: u64,
    pub breaker_trips: u64,
    /// Requests sent to it again after another member gave no answer.
    pub retries: u64,
}
