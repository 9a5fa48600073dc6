//! The load tester's own options, each also read from a `LOADTEST_*` variable, and the
//! values they parse into: the journeys' mix, think time, the admin account, where metrics
//! are served. The command line ([`crate::cli`]) flattens them in; the runner
//! ([`crate::LoadTester`]) and every mode that starts it (reproduce, demo) read them as
//! plain data.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;

use crate::journeys;
use crate::routes::ServicePorts;
use crate::workers::Worker;

pub const DEFAULT_ADMIN_PASSWORD: &str = "admin-change-me";
pub const DEFAULT_MIX: &str = "browser=4,shopper=3,admin=1,stuffer=1,flashsale=1";

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
