//! `edgegw-cp`: the edgegw control plane.
#![forbid(unsafe_code)]

mod analytics;
mod api;
mod apiops;
mod apply;
mod bundle;
mod cli;
mod clock;
mod declarative;
mod error;
mod fleet;
mod healthcheck;
mod longpoll;
mod model;
mod openapi;
mod references;
mod server;
mod state;
mod store;
mod telemetry;
mod tokens;
mod web;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::dispatch(cli::Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            // One line, naming the problem and the fix.
            let mut line = err.to_string();
            for cause in err.chain().skip(1) {
                let text = cause.to_string();
                if !line.contains(&text) {
                    line.push_str(": ");
                    line.push_str(&text);
                }
            }
            eprintln!("edgegw-cp: error: {}", line.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
