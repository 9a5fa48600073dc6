//! `cargo xtask e2e`: the end-to-end suite, the `shop-e2e` crate in `e2e/`, run against
//! the running native stack. Its test is ignored by a plain `cargo test` and does nothing
//! without the stack's description in its environment, since it stops and starts the
//! stack's components; here it gets both, and runs one check after the other.
//!
//! The suite stops and starts components through `xtask e2e stop|start NAME` (hidden), so
//! that it uses the stack's own control, as the checks did when they lived here.

use std::env;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, ensure};
use clap::Subcommand;

use crate::stack::{self, ADMIN_PASSWORD, ALERTMANAGER, GATEWAY, JAEGER, PROMETHEUS, logstore};

/// What the suite calls Cassandra: every node of the stack's cluster.
const CASSANDRA: &str = "cassandra";

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    control: Option<Control>,
}

/// The suite's control of the stack, answered with one word on stdout.
#[derive(Subcommand)]
enum Control {
    /// Stop a component (`cassandra`: every node); prints `stopped` or `not-running`.
    #[command(hide = true)]
    Stop { component: String },
    /// Start a stopped component again and wait until it answers; prints `started`.
    #[command(hide = true)]
    Start { component: String },
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.control {
        None => suite(),
        Some(Control::Stop { component }) => {
            let stopped = if component == CASSANDRA {
                crate::cassandra::stop_local().map(|()| true)
            } else {
                stack::stop_component(&component)
            }?;
            println!("{}", if stopped { "stopped" } else { "not-running" });
            Ok(ExitCode::SUCCESS)
        }
        Some(Control::Start { component }) => {
            if component == CASSANDRA {
                crate::cassandra::ensure_running()
            } else {
                stack::start_component(&component)
            }?;
            println!("started");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn suite() -> Result<ExitCode> {
    // Before the suite is built: a stack that is not there is said at once.
    ensure!(
        stack::http_client()
            .get(format!("{GATEWAY}/api/health/live"))
            .send()
            .is_ok_and(|response| response.status().is_success()),
        "the gateway does not answer {GATEWAY}/api/health/live; start the stack with \
         `cargo xtask stack up`"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace");
    let status = Command::new("cargo")
        .current_dir(root)
        // The whole workspace's feature set, as `cargo test --workspace` resolves it, so that
        // the suite reuses that build instead of compiling the shared crates a second time.
        .args(["test", "--workspace", "--test", "e2e", "--"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env("E2E_GATEWAY_URL", GATEWAY)
        .env("E2E_PROMETHEUS_URL", PROMETHEUS)
        .env("E2E_ALERTMANAGER_URL", ALERTMANAGER)
        .env("E2E_JAEGER_URL", JAEGER)
        .env("E2E_LOG_STORE_URL", logstore::URL)
        .env("E2E_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("E2E_REPLICAS", stack::replica_count()?.to_string())
        .env("E2E_XTASK", env::current_exe()?)
        .status()
        .context("could not run cargo test")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
