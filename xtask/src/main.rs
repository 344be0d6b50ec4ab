//! `cargo xtask <command>`: everything needed to go from a fresh machine to a
//! running, tested gateway. Every command first runs the setup checks and
//! installs only what is missing.
#![forbid(unsafe_code)]

mod bench;
mod build;
mod checksums;
mod console;
mod deb;
mod debuginfo;
mod dist;
mod fuzz;
mod image;
mod install;
mod pgo;
mod setup;
mod test;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing: toolchain components, bpf-linker and
    /// cargo-fuzz (under .tools/), and the Debian packages the tests use.
    Setup,
    /// Build the XDP object for bpfel-unknown-none.
    BuildEbpf,
    /// Build the XDP object and the binaries that embed it (release).
    Build,
    /// Build, then run `edgegw run --config config/edgegw.toml ARGS`.
    Run {
        /// Extra arguments for `edgegw run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks against a peer measured in the same run.
    Bench {
        /// Which benchmark.
        target: String,
        /// Extra arguments for the benchmark.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// How much of a corpus of real APIM policy documents edgegw imports
    /// and runs: `corpus DIR [--report FILE]` (tests/src/bin/apim_corpus.rs).
    Corpus {
        /// The corpus folder, then --report FILE for a Markdown table.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build target/dist/edgegw-<version>-x86_64-linux.tar.gz: binaries,
    /// unit files, default configuration, install.sh.
    Dist,
    /// Build OCI images of edgegw and edgegw-cp offline with podman (FROM
    /// scratch) and save them as target/dist/<name>-image-<version>.tar.
    /// EDGEGW_BIN and EDGEGW_CP_BIN, when both set, name the builds to
    /// package (no build first), as for dist.
    Image,
    /// Build target/dist/edgegw_<version>_amd64.deb (dpkg-deb): the same
    /// files, units and paths as install.sh --prefix /usr.
    Deb,
    /// Build and install from the source tree with the bundle's install.sh
    /// (same arguments: --prefix DIR, --root DIR).
    Install {
        /// Arguments for install.sh.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Fuzz the hand-written HTTP/1.1 parsers (fuzz/), each target for a
    /// bounded time, keeping its corpus under fuzz/corpus/<target>.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = fuzz::DEFAULT_SECS)]
        secs: u64,
        /// One target (default: all): request_head, response_head,
        /// chunked, request_differential.
        target: Option<String>,
    },
    /// Build and run every test: unit, BPF_PROG_TEST_RUN fixtures,
    /// network-namespace end-to-end.
    Test {
        /// Extra arguments passed to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Setup => {
            setup::ensure()?;
            fuzz::ensure_cargo_fuzz()
        }
        Command::BuildEbpf => {
            setup::ensure()?;
            build::ebpf()
        }
        Command::Build => {
            setup::ensure()?;
            build::all()
        }
        Command::Run { args } => {
            setup::ensure()?;
            build::all()?;
            build::exec_edgegw(&args)
        }
        Command::Bench { target, args } => {
            setup::ensure()?;
            // `bench instructions --edgegw PATH`, or EDGEGW_BIN, name the
            // build to measure: nothing to build then.
            let given = std::env::var_os("EDGEGW_BIN").is_some()
                || (target == "instructions" && args.iter().any(|a| a == "--edgegw"));
            if !given {
                build::all()?;
            }
            bench::run(&target, &args)
        }
        Command::Corpus { args } => {
            setup::ensure()?;
            if std::env::var_os("EDGEGW_BIN").is_none() {
                build::all()?;
            }
            bench::harness_bin("apim_corpus", &args)
        }
        Command::Dist => {
            setup::ensure()?;
            dist::run()
        }
        Command::Deb => {
            setup::ensure()?;
            deb::run()
        }
        Command::Image => {
            setup::ensure()?;
            image::run()
        }
        Command::Install { args } => {
            setup::ensure()?;
            install::run(&args)
        }
        Command::Fuzz { secs, target } => {
            setup::ensure()?;
            fuzz::run(secs, target.as_deref())
        }
        Command::Test { args } => {
            setup::ensure()?;
            build::all()?;
            test::run(&args)
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_path_buf()
}
