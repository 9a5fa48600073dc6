//! The command line: the project's options (each also read from a `LOADTEST_*` variable)
//! and goose's, on one command line, and the values they parse into. The runner that acts
//! on them is [`crate::LoadTester`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, ValueEnum};
use goose::config::GooseConfiguration;

use crate::open_model::OpenModelOptions;
use crate::routes::ServicePorts;
use crate::verdict::VerdictOptions;
use crate::workers::{Worker, WorkerOptions};
use crate::{journeys, reproduce, thresholds};

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
        default_value_t = ServicePorts::default(),
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
    /// Append every order a client saw acknowledged (201), and what it saw of it later,
    /// here, one JSON object a line; `audit --orders-log` checks them against the shop.
    #[arg(long, env = "LOADTEST_ORDERS_LOG", value_name = "FILE")]
    pub orders_log: Option<PathBuf>,
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
            orders_log: None,
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
