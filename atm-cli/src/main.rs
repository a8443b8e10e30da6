//! `atm`: the command-line front of the atm kline store. Thin: it parses
//! arguments, sets up logging and calls the libraries.

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod error;
mod format;
mod logging;
mod time_arg;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(&cli, &cmd::store_dir(cli.store.clone()));
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {}", e.prefix(), error::one_line(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
