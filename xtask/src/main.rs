//! Developer and CI tasks: `cargo xtask <command>`.

mod bench;
mod cassandra;
mod descriptors;
mod drill;
mod e2e;
mod rules;
mod stack;
mod supervisor;
mod timescale;

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
    /// Run a local Cassandra 5.0, one node or a cluster on loopback, fetched from Maven Central.
    Cassandra(cassandra::Args),
    /// Run the native stack: the four services, nginx, Prometheus, Alertmanager, Jaeger.
    Stack(stack::Args),
    /// Prometheus configuration and rules in compressed time, for alert reproduction.
    Rules(rules::Args),
    /// End-to-end checks against a running stack (`cargo xtask stack up` first): the
    /// `shop-e2e` suite, one line per check.
    E2e(e2e::Args),
    /// Throughput, latency, telemetry cost, load-generator efficiency, memory and the
    /// FastAPI peer, measured on this machine; writes target/bench/bench.md and bench.json.
    /// Needs wrk, nginx and the peer's Python packages (`bash .ci/install-bench.sh`).
    Bench(bench::Args),
    /// Failure drills under load against the running stack (`stack up --replicas 2
    /// --cassandra-nodes 3`): a Cassandra node or a replica of every service killed, a
    /// rolling restart, a partitioned node; each audited, reported in target/drills/.
    Drill(drill::Args),
}

fn main() -> anyhow::Result<ExitCode> {
    descriptors::keep_from_children();
    match Cli::parse().command {
        Command::Cassandra(args) => cassandra::run(args),
        Command::Stack(args) => stack::run(args),
        Command::Rules(args) => rules::run(args),
        Command::E2e(args) => e2e::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Drill(args) => drill::run(args),
    }
}
