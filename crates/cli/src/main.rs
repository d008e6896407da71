//! `lstm`: train and evaluate the LSTM chapter's models from the command line.
//!
//! [`flags`] defines every flag and turns them into the library's settings; [`commands`]
//! has one module per command; this file only parses and dispatches.

mod commands;
mod failure;
mod flags;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::flags::{Cli, Command};

fn main() -> ExitCode {
    lstm_core::configure_cpu_threads();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Mnist(args) => commands::mnist::run(args),
        Command::Stock(args) => commands::stock::run(args),
        Command::Evaluate(args) => commands::evaluate::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Gradflow(args) => commands::gradflow::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            output::note(&format!("error: {}", f.message));
            ExitCode::from(if f.before_training { 2 } else { 1 })
        }
    }
}
