//! `edgegw`: the gateway daemon and the operator CLI.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

// The proxy allocates per request (headers, bodies, futures); glibc malloc
// showed up as ~15% of the proxy's CPU in `cargo xtask bench proxy`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = edgegw::cli::Cli::parse();
    match edgegw::cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, naming the problem and the fix.
            let mut line = err.to_string();
            let mut source = err.source();
            while let Some(s) = source {
                let text = s.to_string();
                if !line.contains(&text) {
                    line.push_str(": ");
                    line.push_str(&text);
                }
                source = s.source();
            }
            eprintln!("edgegw: error: {}", line.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
