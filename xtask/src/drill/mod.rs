//! `cargo xtask drill <name>...|--all`: failure drills against the running native stack
//! (`cargo xtask stack up --replicas 2 --cassandra-nodes 3`). Each drill runs steady mixed
//! load through the gateway from the load tester (an open-model arrival rate of browsers,
//! shoppers and an admin: browsing, carts, checkouts, logins), breaks something while the
//! load runs, then audits the shop (`loadtester audit`, stock books and every order a
//! client saw acknowledged) and writes `target/drills/<name>.json` and `.md`: requests,
//! failures by status, the audit, the alerts that fired, and whether it met its target.
//!
//! A drill that cannot reach what it should break says so and fails; it never passes
//! over what it did not do.

mod alerts;
mod cluster;
mod gateway;
mod load;
mod partition;
mod report;
mod services;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use clap::ValueEnum;

use crate::stack;
use load::Load;
use report::{Report, Verdict};

#[derive(clap::Args)]
pub struct Args {
    /// The drills to run, in turn.
    #[arg(value_enum, required_unless_present = "all", conflicts_with = "all")]
    drills: Vec<Drill>,
    /// Run every drill, one after the other; exits non-zero if any failed.
    #[arg(long)]
    all: bool,
    /// Journey arrivals per second of the steady load.
    #[arg(long, default_value_t = 4.0, value_name = "N",
          value_parser = parse_rate)]
    rate: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Drill {
    /// SIGKILL one Cassandra node (not node 1, the seed), then restart it.
    CassandraNode,
    /// SIGKILL one replica of every service, then restart them.
    ReplicaKill,
    /// Restart every service one replica at a time: SIGTERM, wait, start, wait until ready.
    RollingRestart,
    /// Cut one Cassandra node off from the others (iptables), then heal the cut.
    Partition,
}

impl Drill {
    pub fn name(self) -> &'static str {
        match self {
            Drill::CassandraNode => "cassandra-node",
            Drill::ReplicaKill => "replica-kill",
            Drill::RollingRestart => "rolling-restart",
            Drill::Partition => "partition",
        }
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.5..=50.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{text:?}: give 0.5 to 50 arrivals per second; the gateway allows 10 logins a \
             second from one address"
        )),
    }
}

/// The load runs this long before the fault, so the shop is loaded when it strikes.
const WARM_UP: Duration = Duration::from_secs(10);
/// And this long after the shop is whole again, so recovery is under load too.
const COOL_DOWN: Duration = Duration::from_secs(8);

pub fn run(args: Args) -> Result<ExitCode> {
    let drills = if args.all {
        Drill::value_variants().to_vec()
    } else {
        args.drills
    };
    // The stack's own build: `cargo build -p loadtester` alone would resolve other features
    // and compile the shared crates again.
    stack::build_binaries()?;
    let out = drills_dir();
    std::fs::create_dir_all(&out)?;
    let mut failed = Vec::new();
    for drill in drills {
        println!("\n=== drill {}", drill.name());
        let report = run_one(drill, args.rate);
        let report = match report {
            Ok(report) => report,
            Err(err) => Report::broken(drill, format!("{err:#}")),
        };
        report.write(&out)?;
        println!("{}", report.summary());
        if !report.verdict.passed {
            failed.push(drill.name());
        }
    }
    if failed.is_empty() {
        println!("\nevery drill met its target");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\ndrills that failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// The workspace: the load tester's binary and `target/drills` are found from it.
fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

fn drills_dir() -> PathBuf {
    root().join("target/drills")
}

/// What a fault did, as the drill reports it.
#[derive(Default)]
pub struct Fault {
    /// Moments of the fault: what happened when.
    pub events: Vec<(DateTime<Utc>, String)>,
    /// For a kill: the requests in flight on the killed processes at that moment, the
    /// most it may fail.
    pub in_flight: Option<u64>,
    /// When the fault struck: from the first kill to the last, or from the cut to the heal.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The addresses (`127.0.0.1:8011`) of the replicas killed.
    pub killed: Vec<String>,
}

impl Fault {
    pub fn note(&mut self, what: impl Into<String>) {
        let what = what.into();
        println!("  {} {what}", Utc::now().format("%H:%M:%S%.3f"));
        self.events.push((Utc::now(), what));
    }
}

fn run_one(drill: Drill, rate: f64) -> Result<Report> {
    // Before any load: a drill that cannot reach its target fails here, saying why.
    let target = match drill {
        Drill::CassandraNode | Drill::Partition => Target::Node(cluster::victim()?),
        Drill::ReplicaKill | Drill::RollingRestart => Target::Replicas(services::replicas()?),
    };
    if drill == Drill::Partition {
        partition::check_available()?;
    }
    let started = Utc::now();
    let mut load = Load::start(drill, rate)?;
    std::thread::sleep(WARM_UP);
    if let Some(exit) = load.exited()? {
        bail!(
            "the load tester exited before the fault ({exit}): {}",
            load.output_tail()
        );
    }
    let mut fault = Fault::default();
    let outcome = match target {
        Target::Node(node) if drill == Drill::CassandraNode => {
            cluster::kill_and_restart(node, &mut fault)
        }
        Target::Node(node) => partition::cut_and_heal(node, &mut fault),
        Target::Replicas(count) if drill == Drill::ReplicaKill => {
            services::kill_and_restart(count, &mut fault)
        }
        Target::Replicas(count) => services::rolling_restart(count, &mut fault),
    };
    std::thread::sleep(COOL_DOWN);
    let mut figures = load.finish()?;
    gateway::add_attempts(&mut figures.failures, &stack::gateway_access_log())?;
    let audit = load::audit(drill)?;
    let alerts = alerts::during(started, Utc::now());
    let fault_error = outcome.err().map(|err| format!("{err:#}"));
    let verdict = Verdict::judge(drill, &figures, &audit, &fault, fault_error.as_deref());
    Ok(Report {
        drill,
        started,
        finished: Utc::now(),
        rate,
        figures,
        audit,
        fault,
        alerts,
        verdict,
    })
}

enum Target {
    /// The number of the Cassandra node to break.
    Node(u8),
    /// How many replicas each service runs.
    Replicas(u8),
}
