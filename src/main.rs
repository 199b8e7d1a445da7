//! The `shardline` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = shardline::cli::Cli::parse();
    match cli.command {
        shardline::cli::Command::Serve(args) => {
            shardline::cli::init_logging(&args.log_filter);
            match shardline::server::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("shardline: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        shardline::cli::Command::Query(args) => client_exit(shardline::client::query(&args)),
        shardline::cli::Command::Write(args) => client_exit(shardline::client::write(&args)),
        shardline::cli::Command::Create(c) => client_exit(shardline::manage::create(c)),
        shardline::cli::Command::Delete(c) => client_exit(shardline::manage::delete(c)),
        shardline::cli::Command::Show(c) => client_exit(shardline::manage::show(c)),
        shardline::cli::Command::Update(c) => client_exit(shardline::manage::update(c)),
        shardline::cli::Command::Loadgen(args) => {
            shardline_loadgen::main_with(shardline_loadgen::cli::Cli {
                command: args.command,
            })
        }
    }
}

fn client_exit(r: Result<(), shardline::client::ClientError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardline: {e}");
            ExitCode::FAILURE
        }
    }
}
