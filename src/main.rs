//! `concierge`: parse the command line, start logging and the runtime, run the command.
//! Everything else lives in the library, the command line in `concierge::cli`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use concierge::cli::{self, Cli, exit};
use concierge::logging;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(cli::usage_exit_code(&error, &args));
        }
    };
    logging::init(&cli.log_level, cli.log_format);
    let runtime = match cli::runtime(cli.worker_threads) {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    runtime.block_on(cli::dispatch(cli))
}
