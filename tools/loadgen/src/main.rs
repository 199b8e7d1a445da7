//! `shardline-loadgen`: see the crate documentation and `--help`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    shardline_loadgen::main_with(shardline_loadgen::cli::Cli::parse())
}
