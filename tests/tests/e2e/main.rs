//! The end-to-end tests, linked as one binary: each module is one area
//! (apim_*, cp_*, ops_*, proxy_*, sync_*, xdp_*) and starts the real
//! binaries through the harness in `edgegw_tests`. One binary instead of
//! one per file saves linking the gateway some fifty times.

mod apim_catalog_errors;
mod apim_choose;
mod apim_escalation;
mod apim_jwt;
mod apim_limits;
mod apim_policies;
mod apim_subscriptions;
mod apim_xdp_state;
mod cli_errors;
mod cp_api;
mod cp_catalog;
mod cp_dependencies;
mod cp_errors;
mod cp_hostile_documents;
mod cp_import;
mod cp_import_corpus;
mod cp_ops;
mod cp_tokens;
mod foundation_e2e;
mod ops_dist;
mod ops_errors;
mod ops_logging;
mod ops_notify;
mod ops_privileges;
mod ops_status;
mod proxy_admin;
mod proxy_backend_h1;
mod proxy_canonical;
mod proxy_config_errors;
mod proxy_framing;
mod proxy_lifecycle;
mod proxy_limits;
mod proxy_protocols;
mod proxy_routing;
mod proxy_server_h1;
mod proxy_smuggling_paths;
mod state_reload;
mod sync_backup;
mod sync_broken_cp;
mod sync_dos;
mod sync_errors;
mod sync_fleet;
mod sync_quota;
mod xdp_cli;
mod xdp_differential;
mod xdp_dos;
mod xdp_flood;
mod xdp_log;
mod xdp_node_traffic;
mod xdp_parse;
mod xdp_reload;
mod xdp_tags;
mod xdp_wire;
