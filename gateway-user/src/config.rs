//! The node configuration: its model (file, bundle, validation) is the
//! `gateway-model` crate, shared with the control plane.

pub use gateway_model::config::*;
