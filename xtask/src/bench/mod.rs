//! `cargo xtask bench`: throughput, latency, telemetry cost, load-generator efficiency and
//! memory of the shop, measured on this machine in one run, written as a table (bench.md,
//! bench.json) with the machine's description. docs/performance.md explains the method.
//!
//! Everything runs on the bench's own ports (18300-18399): the four services, nginx from a
//! copy of the repository's gateway configuration, and Jaeger. wrk drives the measurements;
//! the goose load tester is itself measured against wrk, never used to measure the shop.

mod configs;
mod loadgen;
mod machine;
mod memory;
mod peer;
mod ports;
mod procs;
mod report;
mod results;
mod scenarios;
mod seed;
mod shop;
mod side_by_side;
mod targets;
mod wrk;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shop_topology as topology;

use shop::Store;

/// The local Cassandra `cargo xtask cassandra start` runs, which the cql store uses.
pub const CASSANDRA: &str = "127.0.0.1:9042";

/// The service binaries and the load tester, built together (the load tester alone for
/// `--generators-only`).
const PACKAGES: &[&str] = &[
    topology::BACKEND.name,
    topology::USER.name,
    topology::CART.name,
    topology::ORDER.name,
    "loadtester",
];

#[derive(clap::Args)]
pub struct Args {
    /// Short runs on debug builds (1 s per measurement, a 6 s soak), for CI: every part runs,
    /// in about two minutes; the figures mean little.
    #[arg(long)]
    smoke: bool,
    /// Measure this store only (repeatable). By default: memory, and cql when Cassandra
    /// answers on 127.0.0.1:9042 (`cargo xtask cassandra start`).
    #[arg(long, value_enum, value_name = "STORE")]
    store: Vec<Store>,
    /// Where bench.md and bench.json are written [default: target/bench].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Measure the load generators only (wrk and the load tester's two models against the
    /// gateway's static answer): a few minutes, and only the load tester built.
    #[arg(long, conflicts_with = "store")]
    generators_only: bool,
}

/// How long and how much: the full bench or the CI smoke.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub profile: &'static str,
    #[serde(with = "seconds")]
    pub measure: Duration,
    #[serde(with = "seconds")]
    pub soak: Duration,
    /// Memory samples taken during the soak, after its warm-up.
    pub soak_samples: u32,
    /// Users whose carts the cart and checkout runs fill: several per connection, so that
    /// a user's checkout never overtakes its cart add.
    pub users: usize,
    /// Products in the catalogue (a page of the list is 20).
    pub products: usize,
    /// Products each user's cart holds lines of: a line takes at most 100 units, so users ×
    /// cart products × 100 cart adds fit in one run.
    pub cart_products: usize,
    /// Arrivals per second of the static journey the open model is asked for.
    pub arrival_rate: u32,
    /// The user service's bcrypt cost, when not its default.
    pub bcrypt_cost: Option<u32>,
    /// Rounds of the side-by-side telemetry comparison, and each of its runs' length.
    pub side_by_side_rounds: usize,
    #[serde(with = "seconds")]
    pub side_by_side_run: Duration,
}

impl Plan {
    fn new(smoke: bool) -> Self {
        if smoke {
            Self {
                profile: "debug",
                measure: Duration::from_secs(1),
                soak: Duration::from_secs(6),
                soak_samples: 3,
                users: 32,
                products: 25,
                cart_products: 20,
                // A debug load tester on a machine that also runs nginx: enough to prove
                // the row works, not to judge it.
                arrival_rate: 2_000,
                // A debug build takes most of a second per login at the default cost: a
                // one-second run would measure the last run's queued logins, not its own.
                bcrypt_cost: Some(4),
                side_by_side_rounds: 1,
                side_by_side_run: Duration::from_secs(1),
            }
        } else {
            Self {
                profile: "release",
                measure: Duration::from_secs(15),
                soak: Duration::from_secs(300),
                soak_samples: 20,
                users: 384,
                products: 100,
                cart_products: 20,
                arrival_rate: 20_000,
                bcrypt_cost: None,
                side_by_side_rounds: 7,
                side_by_side_run: Duration::from_secs(5),
            }
        }
    }
}

mod seconds {
    pub fn serialize<S: serde::Serializer>(
        value: &std::time::Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }
}

/// What every part of the bench needs.
pub struct Env {
    pub root: PathBuf,
    /// target/bench/work: logs, scripts, the nginx prefix; rewritten by every run.
    pub work: PathBuf,
    /// Where the binaries under test are (target/debug or target/release).
    pub bin: PathBuf,
    pub wrk: PathBuf,
    pub nginx: PathBuf,
    pub http: reqwest::blocking::Client,
    pub plan: Plan,
    /// Unique per run: names its users and products.
    pub run_id: String,
}

impl Env {
    pub fn log(&self, name: &str) -> PathBuf {
        self.work.join("logs").join(format!("{name}.log"))
    }

    pub fn scripts(&self) -> PathBuf {
        self.work.join("scripts")
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let date = chrono::Utc::now();
    let load_before = machine::load_average();
    let mut notes = Vec::new();
    let stores = if args.generators_only {
        Vec::new()
    } else {
        stores(&args.store, &mut notes)?
    };
    let packages = if args.generators_only {
        &["loadtester"]
    } else {
        PACKAGES
    };
    let env = environment(args.smoke, packages, &date)?;

    let jaeger = if stores.is_empty() {
        None
    } else {
        shop::start_jaeger(&env, &mut notes)?
    };
    let gateway = shop::start_gateway(&env)?;
    println!("== load generators against the static endpoint");
    let generators = loadgen::compare(&env)?;
    let infra: Vec<&procs::Proc> = jaeger.iter().chain([&gateway]).collect();
    let (results, failed) = measure_stores(&env, &stores, jaeger.is_some(), &infra, &mut notes);
    drop(infra);
    drop(gateway);
    drop(jaeger);

    let report = results::Report {
        date: date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mode: match (args.smoke, args.generators_only) {
            (true, _) => "smoke",
            (false, true) => "generators-only",
            (false, false) => "full",
        },
        duration_s: started.elapsed().as_secs_f64().round(),
        machine: machine::describe(&env, load_before),
        plan: env.plan.clone(),
        generators,
        stores: results,
        notes,
    };
    let out = args.out.unwrap_or_else(|| env.root.join("target/bench"));
    report::write(&out, &report)?;
    println!("\n{}", report::targets_markdown(&report));
    println!(
        "bench {} in {:.0} s: {} and {}",
        if failed { "FAILED" } else { "finished" },
        started.elapsed().as_secs_f64(),
        out.join("bench.md").display(),
        out.join("bench.json").display()
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The tools found, the binaries built, the ports free and a fresh work directory.
fn environment(
    smoke: bool,
    packages: &[&str],
    date: &chrono::DateTime<chrono::Utc>,
) -> Result<Env> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf();
    let plan = Plan::new(smoke);
    let (wrk, nginx) = tools()?;
    build(&root, &plan, packages)?;
    procs::ensure_free(ports::ALL)?;
    let env = Env {
        work: root.join("target/bench/work"),
        bin: root.join("target").join(plan.profile),
        http: http_client()?,
        run_id: date.format("%Y%m%d%H%M%S").to_string(),
        root,
        wrk,
        nginx,
        plan,
    };
    prepare(&env)?;
    Ok(env)
}

/// Every store's figures, and whether one failed. One store failing (Cassandra gone
/// mid-run) leaves the other's figures, and its own up to the failure, worth writing.
fn measure_stores(
    env: &Env,
    stores: &[Store],
    export: bool,
    infra: &[&procs::Proc],
    notes: &mut Vec<String>,
) -> (Vec<results::StoreResult>, bool) {
    let mut results = Vec::new();
    let mut failed = false;
    for &store in stores {
        let (result, failure) = match scenarios::measure(env, store, export, infra) {
            Ok((result, failure)) => (Some(result), failure),
            Err(error) => (None, Some(error)),
        };
        if let Some(error) = failure {
            eprintln!("the {} store failed: {error:?}", store.name());
            let missing = if result.is_some() {
                "the figures after the failure are missing"
            } else {
                "its figures are missing"
            };
            notes.push(format!(
                "The {} store failed, {missing}: {error:#}",
                store.name()
            ));
            failed = true;
        }
        results.extend(result);
    }
    (results, failed)
}

/// wrk and nginx, or how to install them.
fn tools() -> Result<(PathBuf, PathBuf)> {
    match (procs::which("wrk"), procs::which("nginx")) {
        (Some(wrk), Some(nginx)) => Ok((wrk, nginx)),
        (wrk, nginx) => {
            let missing: Vec<&str> = [("wrk", wrk.is_none()), ("nginx", nginx.is_none())]
                .into_iter()
                .filter_map(|(name, missing)| missing.then_some(name))
                .collect();
            bail!(
                "the bench needs {}: install with `bash .ci/install-bench.sh` (Debian packages)",
                missing.join(" and ")
            )
        }
    }
}

/// The stores asked for; by default the cql store only when Cassandra answers.
fn stores(asked: &[Store], notes: &mut Vec<String>) -> Result<Vec<Store>> {
    let cassandra = cassandra_answers();
    if asked.contains(&Store::Cql) && !cassandra {
        bail!(
            "--store cql: Cassandra does not answer on {CASSANDRA}; start it with \
             `cargo xtask cassandra start`"
        );
    }
    if !asked.is_empty() {
        let mut stores = Vec::new();
        for store in asked {
            if !stores.contains(store) {
                stores.push(*store);
            }
        }
        return Ok(stores);
    }
    if cassandra {
        return Ok(vec![Store::Memory, Store::Cql]);
    }
    let why = format!(
        "The cql store was not measured: Cassandra did not answer on {CASSANDRA} \
         (`cargo xtask cassandra start` runs one)."
    );
    println!("{why}");
    notes.push(why);
    Ok(vec![Store::Memory])
}

/// An open CQL port; the services' readiness checks then prove the database answers.
fn cassandra_answers() -> bool {
    let address: SocketAddr = CASSANDRA.parse().expect("a valid address");
    TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
}

/// Builds the binaries under test: release for the measurements, debug for the smoke
/// (a no-op after CI's `cargo build`).
fn build(root: &Path, plan: &Plan, packages: &[&str]) -> Result<()> {
    let mut command = Command::new("cargo");
    command.current_dir(root).args(["build", "--bins"]);
    if plan.profile == "release" {
        command.arg("--release");
    }
    for package in packages {
        command.args(["-p", package]);
    }
    println!(
        "building {} ({} profile) ...",
        packages.join(", "),
        plan.profile
    );
    let status = command.status().context("could not run cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    Ok(())
}

/// A fresh work directory: last run's logs, scripts and nginx state would only confuse.
fn prepare(env: &Env) -> Result<()> {
    match fs::remove_dir_all(&env.work) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("removing {}", env.work.display()));
        }
        _ => {}
    }
    for dir in [env.work.join("logs"), env.scripts()] {
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

fn http_client() -> Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(2))
        .build()?)
}
