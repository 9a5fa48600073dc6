//! Developer and CI tasks: `cargo xtask <command>`.

mod cassandra;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Developer and CI tasks for this workspace")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local single-node Cassandra 5.0 fetched from Maven Central.
    Cassandra(cassandra::Args),
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Cassandra(args) => cassandra::run(args),
    }
}
