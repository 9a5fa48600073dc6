//! The shop's goose load tester: weighted customer journeys with think times and content
//! checks, its own Prometheus metrics, and a fresh W3C `traceparent` on every request.
//!
//! `loadtester` (the binary) parses the project's options and goose's own from one command
//! line; [`LoadTester`] runs attacks in-process, which the tests and `loadtester demo` use.

pub mod audit;
pub mod client;
pub mod journeys;
pub mod model;
pub mod open_model;
pub mod reproduce;
pub mod routes;
pub mod seed;
pub mod telemetry;
pub mod thresholds;
pub mod verdict;
pub mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, ValueEnum};
use goose::config::GooseConfiguration;
use goose::metrics::GooseMetrics;
use goose::prelude::*;
use tokio::task::JoinHandle;

use crate::client::Ctx;
use crate::journeys::ThinkTime;
pub use crate::open_model::OpenPlan;
use crate::open_model::{Journeys, OpenModelOptions, OpenReport};
use crate::routes::{Routes, ServicePorts};
use crate::seed::{Catalogue, Seeder};
pub use crate::telemetry::print_notable;
use crate::telemetry::{LoadMetrics, NotableTrace, TraceLog};
use crate::verdict::VerdictOptions;
use crate::workers::{Worker, WorkerOptions};

pub const DEFAULT_ADMIN_PASSWORD: &str = "admin-change-me";
pub const DEFAULT_MIX: &str = "browser=4,shopper=3,admin=1,stuffer=1,flashsale=1";

/// The whole command line: the project's options, then goose's.
#[derive(Debug, Parser)]
#[command(
    name = "loadtester",
    about = "Load the shop with goose: browsers, shoppers, admins, a credential stuffer and a flash sale.",
    long_about = "Load the shop with goose: browsers, shoppers, admins, a credential stuffer and a \
                  flash sale, each response's content checked. Every request carries a fresh W3C \
                  traceparent; failed and slow requests are listed by trace id at the end.\n\n\
                  `loadtester demo` starts the whole shop in this process on its in-memory store \
                  and loads it for 30 s, writing target/loadtest-report.html.",
    disable_version_flag = true,
    mut_arg("threshold", |arg| arg
        .value_name("THRESHOLD")
        .help("Pass/fail threshold, repeatable: p99<300ms, errors<1%, dropped<0.5%")
        .long_help(thresholds::HELP)),
    mut_arg("no_threshold_abort", |arg| arg.hide(true)),
    mut_arg("threshold_abort_delay", |arg| arg.hide(true)),
    after_help = "Examples:\n  \
                  loadtester demo\n  \
                  loadtester --host http://127.0.0.1:8080 -u 20 -r 2 -t 5m --report-file report.html\n  \
                  loadtester --direct --host http://127.0.0.1 -u 10 -t 1m --scenarios shopper\n  \
                  loadtester --host http://127.0.0.1:8080 --arrival-rate 200/s -t 2m --threshold 'p99<300ms'\n  \
                  loadtester --host http://127.0.0.1:8080 --stages 30s:0-200/s,2m:200/s --workers 2 --worker-index 1\n  \
                  loadtester verdict --since 5m --threshold 'p99<300ms' --threshold 'errors<1%'\n  \
                  loadtester reproduce high-5xx-ratio --admin-password stack-admin-dev\n  \
                  loadtester reproduce --all --time-scale 30 --admin-password stack-admin-dev\n  \
                  loadtester audit --host http://127.0.0.1:8080 --admin-password stack-admin-dev"
)]
pub struct Cli {
    /// `run` loads a shop that is already running; `demo` starts one in this process first;
    /// `reproduce` makes the named alerts fire (see --all); `audit` checks a running shop's
    /// stock books (see --settle); `verdict` judges the fleet's figures in Prometheus on
    /// --threshold.
    #[arg(value_enum, default_value_t = Mode::Run)]
    pub mode: Mode,
    /// With `reproduce`: the alerts, by rule name (`High5xxRatio`) or playbook name
    /// (`high-5xx-ratio`).
    #[arg(value_name = "ALERT")]
    pub alerts: Vec<String>,
    #[command(flatten)]
    pub tester: TesterOptions,
    #[command(flatten)]
    pub open: OpenModelOptions,
    #[command(flatten)]
    pub verdict: VerdictOptions,
    #[command(flatten)]
    pub workers: WorkerOptions,
    #[command(flatten)]
    pub reproduce: reproduce::ReproduceOptions,
    /// With `audit`: how long, in seconds, to wait for reservations still being made or
    /// returned to settle before the books are judged.
    #[arg(
        long,
        env = "LOADTEST_AUDIT_SETTLE_SECONDS",
        default_value_t = 60,
        value_name = "SECONDS",
        help_heading = "Stock audit"
    )]
    pub settle: u64,
    #[command(flatten)]
    pub goose: GooseConfiguration,
}

impl Cli {
    /// Takes goose's `--threshold` values as the load tester's thresholds, so that goose
    /// does not judge them a second time, on its own figures.
    pub fn thresholds(&mut self) -> anyhow::Result<()> {
        for text in std::mem::take(&mut self.goose.threshold) {
            let threshold = text
                .parse()
                .map_err(|err: String| anyhow::anyhow!("--threshold {err}"))?;
            self.verdict.thresholds.push(threshold);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Run,
    Demo,
    Reproduce,
    Audit,
    Verdict,
}

/// The project's own options; each also reads a `LOADTEST_*` variable.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Shop journeys")]
pub struct TesterOptions {
    /// Journey weights, `name=weight` comma-separated; 0 leaves a journey out. Journeys:
    /// browser, shopper, admin, stuffer (credential stuffing), flashsale.
    #[arg(long, env = "LOADTEST_MIX", default_value = DEFAULT_MIX, value_name = "MIX")]
    pub mix: Mix,
    /// Send each request straight to the service that owns its prefix, on the host of
    /// --host (default http://127.0.0.1), instead of through a gateway at --host.
    #[arg(long, env = "LOADTEST_DIRECT")]
    pub direct: bool,
    /// With --direct: the ports of backend, cart, order and user services.
    #[arg(
        long,
        env = "LOADTEST_DIRECT_PORTS",
        default_value = "8000,8001,8002,8003",
        value_name = "PORTS"
    )]
    pub direct_ports: ServicePorts,
    /// The admin account that seeds the catalogue and runs the admin journey.
    #[arg(
        long,
        env = "LOADTEST_ADMIN_USERNAME",
        default_value = "admin",
        value_name = "NAME"
    )]
    pub admin_username: String,
    /// Its password [default: $ADMIN_PASSWORD, else admin-change-me].
    #[arg(
        long,
        env = "LOADTEST_ADMIN_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub admin_password: Option<String>,
    /// Where the tester serves its Prometheus metrics (`/metrics`) while it runs.
    #[arg(
        long,
        env = "LOADTEST_METRICS_LISTEN",
        default_value = "127.0.0.1:9464",
        value_name = "ADDR"
    )]
    pub metrics_listen: SocketAddr,
    /// Think time between a user's steps, `MIN-MAX` in milliseconds (admins think twice as
    /// long, credential stuffers a tenth, flash-sale shoppers half).
    #[arg(
        long,
        env = "LOADTEST_THINK_TIME_MS",
        default_value = "500-2000",
        value_name = "MIN-MAX"
    )]
    pub think_time_ms: ThinkRange,
    /// A request slower than this is listed with its trace id, like a failed one.
    #[arg(
        long,
        env = "LOADTEST_SLOW_MS",
        default_value_t = 1000,
        value_name = "MS"
    )]
    pub slow_ms: u64,
    /// Units of the flash-sale product at the start of a run.
    #[arg(
        long,
        env = "LOADTEST_FLASH_STOCK",
        default_value_t = 25,
        value_name = "N"
    )]
    pub flash_stock: i64,
    /// Share of their orders shoppers and flash-sale buyers cancel, in percent.
    #[arg(
        long,
        env = "LOADTEST_CANCEL_PERCENT",
        default_value_t = 20,
        value_name = "PERCENT"
    )]
    pub cancel_percent: u32,
    /// Also write every failed or slow request (trace id, journey, step, status) here, one
    /// JSON object a line.
    #[arg(long, env = "LOADTEST_TRACE_FILE", value_name = "FILE")]
    pub trace_file: Option<PathBuf>,
    /// This process's place among `--workers` (set from [`workers::WorkerOptions`]).
    #[arg(skip = Worker::ALONE)]
    pub worker: Worker,
}

impl TesterOptions {
    /// The options' defaults, ignoring the environment (for tests and embedding).
    pub fn defaults() -> Self {
        Self {
            mix: DEFAULT_MIX.parse().expect("the default mix parses"),
            direct: false,
            direct_ports: ServicePorts::default(),
            admin_username: "admin".into(),
            admin_password: None,
            metrics_listen: "127.0.0.1:9464".parse().expect("valid address"),
            think_time_ms: "500-2000".parse().expect("valid range"),
            slow_ms: 1000,
            flash_stock: 25,
            cancel_percent: 20,
            trace_file: None,
            worker: Worker::ALONE,
        }
    }

    pub(crate) fn admin_password(&self) -> String {
        self.admin_password
            .clone()
            .or_else(|| std::env::var("ADMIN_PASSWORD").ok())
            .unwrap_or_else(|| DEFAULT_ADMIN_PASSWORD.to_owned())
    }
}

/// Journey weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(pub Vec<(String, usize)>);

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not name=weight"))?;
            let name = name.trim().to_ascii_lowercase();
            if !journeys::ALL.contains(&name.as_str()) {
                return Err(format!(
                    "no journey is called {name:?}; journeys: {}",
                    journeys::ALL.join(", ")
                ));
            }
            let weight = weight
                .trim()
                .parse()
                .map_err(|err| format!("{part:?}: weight: {err}"))?;
            weights.retain(|(n, _)| *n != name);
            weights.push((name, weight));
        }
        if weights.iter().all(|(_, weight)| *weight == 0) {
            return Err("give at least one journey a weight above 0".into());
        }
        Ok(Self(weights))
    }
}

/// `MIN-MAX` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkRange {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl FromStr for ThinkRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (min, max) = text.split_once('-').unwrap_or((text, text));
        let parse = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|err| format!("{text:?}: {err}"))
        };
        let (min_ms, max_ms) = (parse(min)?, parse(max)?);
        if min_ms > max_ms {
            return Err(format!("{text:?}: the minimum is above the maximum"));
        }
        Ok(Self { min_ms, max_ms })
    }
}

/// What one attack produced.
pub struct Run {
    pub goose: GooseMetrics,
    /// Failed and slow requests, by trace id (at most [`TraceLog::CAPACITY`]).
    pub notable: Vec<NotableTrace>,
    /// How many there were in all.
    pub notable_total: usize,
}

/// What one open-model run produced.
pub struct OpenRun {
    pub report: OpenReport,
    pub notable: Vec<NotableTrace>,
    pub notable_total: usize,
}

/// The journeys of a mix, ready for either model.
struct Prepared {
    config: GooseConfiguration,
    traces: Arc<TraceLog>,
    scenarios: Vec<Scenario>,
}

/// The tester: its metrics endpoint runs from [`LoadTester::start`] until it is dropped.
pub struct LoadTester {
    options: TesterOptions,
    metrics: Arc<LoadMetrics>,
    metrics_address: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for LoadTester {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LoadTester {
    pub async fn start(options: TesterOptions) -> anyhow::Result<Self> {
        let metrics = LoadMetrics::new();
        let (metrics_address, server) = metrics.serve(options.metrics_listen).await?;
        Ok(Self {
            options,
            metrics,
            metrics_address,
            server,
        })
    }

    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    /// The options the next [`LoadTester::attack`] runs with.
    pub fn options_mut(&mut self) -> &mut TesterOptions {
        &mut self.options
    }

    pub fn metrics(&self) -> &Arc<LoadMetrics> {
        &self.metrics
    }

    /// Seeds the catalogue (unless the mix reads none), then runs goose with `config` and the
    /// journey mix (the closed model).
    pub async fn attack(&self, config: GooseConfiguration) -> anyhow::Result<Run> {
        let prepared = self.prepare(config).await?;
        let mut attack = GooseAttack::initialize_with_config(prepared.config)?;
        for scenario in prepared.scenarios {
            attack = attack.register_scenario(scenario);
        }
        let goose = attack.execute().await?;
        self.metrics.users.set(0);
        let (notable, notable_total) = self.notable(&prepared.traces)?;
        Ok(Run {
            goose,
            notable,
            notable_total,
        })
    }

    /// Seeds the catalogue like [`LoadTester::attack`], then starts the mix's journeys at
    /// the plan's arrival rate (the open model) until it ends or `stop` turns true.
    pub async fn attack_open(
        &self,
        config: GooseConfiguration,
        plan: OpenPlan,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<OpenRun> {
        let prepared = self.prepare(config).await?;
        let host = prepared.config.host.clone().unwrap_or_default();
        let base_url = reqwest::Url::parse(&host).with_context(|| format!("--host {host}"))?;
        let mut prototype = GooseUser::new(
            0,
            Arc::from("open model"),
            base_url,
            &prepared.config,
            0,
            None,
        )?;
        // Only goose's log messages read the index; a user outside a GooseAttack has none.
        prototype.weighted_users_index = 0;
        let report = open_model::run(
            plan,
            Journeys::new(&prepared.scenarios),
            prototype,
            self.metrics.clone(),
            stop,
        )
        .await;
        self.metrics.users.set(0);
        let (notable, notable_total) = self.notable(&prepared.traces)?;
        Ok(OpenRun {
            report,
            notable,
            notable_total,
        })
    }

    /// The failed and slow requests, also written to --trace-file when given.
    fn notable(&self, traces: &TraceLog) -> anyhow::Result<(Vec<NotableTrace>, usize)> {
        let (notable, notable_total) = traces.snapshot();
        if let Some(path) = &self.options.trace_file {
            let lines: String = notable
                .iter()
                .map(|t| serde_json::to_string(t).expect("serializable") + "\n")
                .collect();
            std::fs::write(path, lines)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok((notable, notable_total))
    }

    /// The catalogue seeded (unless the mix reads none) and the mix's scenarios.
    async fn prepare(&self, mut config: GooseConfiguration) -> anyhow::Result<Prepared> {
        let options = &self.options;
        if options.direct && config.host.is_none() {
            config.host = Some("http://127.0.0.1".to_owned());
        }
        // Listing scenarios or printing the version needs no shop.
        let inspect_only = config.list || config.scenarios_list || config.version;
        // The static journey reads no catalogue: no admin login, no products to create.
        let needs_catalogue = options
            .mix
            .0
            .iter()
            .any(|(name, weight)| *weight > 0 && name != journeys::STATIC);
        let empty = || Catalogue {
            products: Vec::new(),
            flash: seed::Product {
                id: uuid::Uuid::nil(),
                name: String::new(),
                description: String::new(),
                category: String::new(),
                price_cents: 0,
                stock: 0,
            },
            victims: Vec::new(),
        };
        let catalogue = if inspect_only {
            empty()
        } else {
            let host = config.host.clone().context(
                "--host is required: the gateway (http://127.0.0.1:8080), or with --direct the services' host",
            )?;
            let routes = Routes::new(&host, options.direct.then_some(options.direct_ports))?;
            if needs_catalogue {
                self.seed(&routes).await?
            } else {
                empty()
            }
        };
        let host = config
            .host
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1".into());
        let routes = Routes::new(&host, options.direct.then_some(options.direct_ports))?;
        let traces = Arc::new(TraceLog::default());
        let ctx = Arc::new(Ctx {
            routes,
            catalogue,
            metrics: self.metrics.clone(),
            traces: traces.clone(),
            slow: Duration::from_millis(options.slow_ms),
            admin_username: options.admin_username.clone(),
            admin_password: options.admin_password(),
            cancel_percent: options.cancel_percent,
            name_prefix: options.worker.prefix(),
        });
        let think = ThinkTime {
            min: Duration::from_millis(options.think_time_ms.min_ms),
            max: Duration::from_millis(options.think_time_ms.max_ms),
        };
        let mut scenarios = Vec::new();
        for (name, weight) in &options.mix.0 {
            if *weight > 0 {
                scenarios.push(journeys::scenario(name, *weight, think, &ctx)?);
            }
        }
        Ok(Prepared {
            config,
            traces,
            scenarios,
        })
    }

    async fn seed(&self, routes: &Routes) -> anyhow::Result<Catalogue> {
        let seeder = Seeder {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            routes,
        };
        let token = seeder
            .admin_token(&self.options.admin_username, &self.options.admin_password())
            .await?;
        seeder.seed(&token, self.options.flash_stock).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_names_known_journeys() {
        let mix: Mix = "shopper=2, browser=0".parse().unwrap();
        assert_eq!(mix.0, vec![("shopper".into(), 2), ("browser".into(), 0)]);
        assert!("shopper".parse::<Mix>().is_err());
        assert!("window-shopper=1".parse::<Mix>().is_err());
        assert!("shopper=0".parse::<Mix>().is_err());
    }

    #[test]
    fn project_and_goose_options_share_one_command_line() {
        let cli = Cli::try_parse_from([
            "loadtester",
            "--direct",
            "--mix",
            "admin=1",
            "-u",
            "3",
            "--host",
            "http://127.0.0.1",
            "--report-file",
            "r.json",
            "demo",
        ])
        .unwrap();
        assert_eq!(cli.mode, Mode::Demo);
        assert!(cli.tester.direct);
        assert_eq!(cli.goose.users, Some(3));
        assert_eq!(cli.goose.report_file, vec!["r.json".to_owned()]);
    }

    #[test]
    fn think_ranges_parse() {
        assert_eq!(
            "50-200".parse::<ThinkRange>().unwrap(),
            ThinkRange {
                min_ms: 50,
                max_ms: 200
            }
        );
        assert!("300-100".parse::<ThinkRange>().is_err());
    }
}
