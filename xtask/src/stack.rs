//! The native observability stack: the four services (each in one or more replicas, see
//! [`replicas`]), the nginx gateway and its exporter, Prometheus, Alertmanager, Jaeger and
//! the log store (VictoriaLogs, see [`logstore`]), each a process on 127.0.0.1,
//! run from the repository's own configuration files (the ones docker-compose uses), with
//! the services keeping their data in the local Cassandra (`cargo xtask cassandra`), which
//! `up` starts when it is not running and `down` leaves running.
//!
//! Debian's packages provide nginx, Prometheus, Alertmanager and the nginx exporter
//! (`.ci/install-observability.sh`, `.ci/install-stack.sh`); Jaeger v2 is built once
//! from its Go module (`xtask/jaeger/go.mod`) into `target/stack/bin`. Everything
//! the stack writes lives under `target/stack/`: pid files, logs (`logs/<name>.log`),
//! Prometheus' and Alertmanager's storage, the nginx prefix.
//!
//! Components can be started and stopped one by one (`up backend`, `down nginx-exporter`,
//! `kill backend-2`) to make alerts fire and to run drills, and Prometheus can run in
//! compressed time (`up --time-scale 30`, its configuration generated into
//! `target/stack/prometheus-scaled` by `rules scale`).
//! The services run with the fault-injection API on and 4096 open files at most, so that
//! faults can drive every alert, FileDescriptorsNearLimit included.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

mod build;
mod cluster;
mod components;
mod launch;
mod layout;
mod lifecycle;
pub mod logstore;
mod process;
pub mod replicas;

use components::Selector;
use layout::Layout;

pub use crate::supervisor::http_client;
pub use launch::{service_secret_file, which};

/// How many replicas of each service the stack runs: the count `stack up` last
/// remembered, 1 when it never ran with `--replicas`.
pub fn replica_count() -> Result<u8> {
    replicas::count(&Layout::new())
}

/// Builds the services and the load tester as `stack up` does, in the same cargo
/// invocation, so that a build already current compiles nothing.
pub fn build_binaries() -> Result<()> {
    build::build_services(&Layout::new())
}

/// The admin password the stack's user service starts with (user `admin`).
/// A development value: the stack listens on loopback only.
pub const ADMIN_PASSWORD: &str = "stack-admin-dev";
pub const GATEWAY: &str = "http://127.0.0.1:8080";
pub const PROMETHEUS: &str = "http://127.0.0.1:9090";
pub const ALERTMANAGER: &str = "http://127.0.0.1:9093";
pub const JAEGER: &str = "http://127.0.0.1:16686";

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Build what is missing, start every component (or the ones named) that is not
    /// running, and wait until each one answers.
    ///
    /// The services run from debug builds with JSON logs (shipped to VictoriaLogs too),
    /// traces exported to Jaeger, orders moving on every 2 s, the admin account `admin` / `stack-admin-dev`, the
    /// fault-injection API (FAULTS_ENABLED=true) and a soft limit of 4096 open files.
    /// Components already running are left alone. Needs Debian's nginx, prometheus,
    /// prometheus-alertmanager and prometheus-nginx-exporter (`bash
    /// .ci/install-observability.sh && bash .ci/install-stack.sh`) and Go (Jaeger is
    /// built once from xtask/jaeger/go.mod, a few minutes the first time, VictoriaLogs
    /// once from its Go module).
    #[command(verbatim_doc_comment)]
    Up {
        /// Start only these components (all when none are named). A service's name means
        /// every replica of it, `<service>-<r>` replica r only (`backend-2`), and
        /// `cassandra-<n>` node n of the stack's Cassandra cluster.
        #[arg(value_name = "COMPONENT", value_parser = components::parse_name)]
        components: Vec<String>,
        /// Run N replicas of each service: replica r of a service on port P listens on
        /// P + 10·(r−1), and the gateway and Prometheus know every one; remembered until
        /// given again. 1 when never given.
        #[arg(long, value_name = "N", value_parser = replicas::parse)]
        replicas: Option<u8>,
        /// Run the services on a Cassandra cluster of M nodes on 127.0.0.1 to 127.0.0.M
        /// (keyspaces with min(M, 3) replicas), each scraped by Prometheus; remembered
        /// until given again. 1 when never given.
        #[arg(long, value_name = "M", value_parser = crate::cassandra::parse_nodes)]
        cassandra_nodes: Option<u8>,
        /// Start Prometheus in compressed time: rule durations divided by N, scrapes and
        /// evaluations every second (see `cargo xtask rules scale`); 1 is real time.
        /// Refused when Prometheus already runs with another factor.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(1..))]
        time_scale: u32,
    },
    /// Stop every component `up` started, or the ones named (SIGTERM, then SIGKILL
    /// after 20 s).
    Down {
        /// Stop only these components (all when none are named); names as for `up`.
        #[arg(value_name = "COMPONENT", value_parser = components::parse_name)]
        components: Vec<String>,
    },
    /// Kill the named components at once (SIGKILL to their process groups), as a crash
    /// would; `up` starts them again.
    Kill {
        /// Names as for `up`, without Cassandra nodes.
        #[arg(value_name = "COMPONENT", required = true, value_parser = components::parse_name)]
        components: Vec<String>,
    },
    /// List each component as running or not and answering or not, and Prometheus' time
    /// scale; exits non-zero unless all run and answer.
    Status,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let layout = Layout::new();
    match args.action {
        Action::Up {
            components,
            time_scale,
            replicas,
            cassandra_nodes,
        } => {
            if let Some(nodes) = cassandra_nodes {
                cluster::set_nodes(&layout.root, nodes)?;
            }
            if let Some(count) = replicas {
                replicas::set_count(&layout, count)?;
            }
            let (nodes, components) = cluster::partition(components);
            cluster::start_nodes(&nodes)?;
            if nodes.is_empty() || !components.is_empty() {
                lifecycle::up(&layout, &Selector::new(&layout, components)?, time_scale)?;
            }
        }
        Action::Down { components } => {
            let (nodes, components) = cluster::partition(components);
            cluster::stop_nodes(&nodes)?;
            if nodes.is_empty() || !components.is_empty() {
                lifecycle::down(&layout, &Selector::new(&layout, components)?)?;
            }
        }
        Action::Kill { components } => {
            for name in components {
                if !kill_component(&name)? {
                    println!("{name:<15} was not running");
                }
            }
        }
        Action::Status => return lifecycle::status(&layout),
    }
    Ok(ExitCode::SUCCESS)
}

/// Stops a component of a running stack gracefully (SIGTERM, then SIGKILL after 20 s),
/// every replica a service's name covers, for failure drills; false if none was running.
pub fn stop_component(name: &str) -> Result<bool> {
    let layout = Layout::new();
    lifecycle::stop_named(&layout, name)
}

/// SIGKILLs a component of a running stack (every replica a service's name covers), as a
/// crash would; false if none was running.
pub fn kill_component(name: &str) -> Result<bool> {
    let layout = Layout::new();
    lifecycle::kill_named(&layout, name)
}

/// The gateway's JSON access log: one line per request, with every upstream it tried.
pub fn gateway_access_log() -> std::path::PathBuf {
    Layout::new().nginx_prefix().join("logs/access.json.log")
}

/// Starts a stopped component again (every replica a service's name covers), at the time
/// scale Prometheus last ran with, and waits until it answers.
pub fn start_component(name: &str) -> Result<()> {
    let layout = Layout::new();
    lifecycle::start_named(&layout, name)
}
