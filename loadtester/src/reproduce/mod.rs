//! `loadtester reproduce <alert>...|--all`: make alerts fire on purpose, from playbooks that
//! are data (`loadtester/playbooks/<alert>.toml`), and prove it in Prometheus.

mod control;
mod faults;
pub mod playbook;
pub(crate) mod prometheus;
mod replicas;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use goose::config::GooseConfiguration;

use crate::LoadTester;
use crate::options::TesterOptions;
use crate::routes::Routes;
use crate::seed::Seeder;
use faults::FaultApi;
use playbook::{Playbook, kebab_case};
use prometheus::Prometheus;
use replicas::FaultsVia;
use report::{Outcome, Report};
use run::Reproducer;

/// The playbooks of this checkout, wherever the command runs from.
const PLAYBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks");

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Alert reproduction (loadtester reproduce)")]
pub struct ReproduceOptions {
    /// Reproduce every alert that has a playbook, one after the other.
    #[arg(long)]
    pub all: bool,
    /// The Prometheus that evaluates the alert rules.
    #[arg(
        long,
        env = "LOADTEST_PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090",
        value_name = "URL"
    )]
    pub prometheus_url: String,
    /// Where each fault goes: `auto`, every replica of its service that Prometheus scrapes
    /// (at the address it scrapes) when it scrapes several, else the gateway; `gateway`,
    /// through the gateway only, which hands it to one replica.
    #[arg(
        long,
        env = "LOADTEST_FAULTS_VIA",
        value_enum,
        default_value_t = FaultsVia::Auto,
        value_name = "WHERE"
    )]
    pub faults_via: FaultsVia,
    /// The factor by which that Prometheus' rules are compressed in time (`cargo xtask
    /// stack up --time-scale N`); divides the rule-time part of each playbook's bound.
    #[arg(
        long,
        env = "LOADTEST_TIME_SCALE",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=3600),
        value_name = "N"
    )]
    pub time_scale: u32,
    /// After clearing the faults and load, also wait until the alert resolves.
    #[arg(long, env = "LOADTEST_WAIT_RESOLVED")]
    pub wait_resolved: bool,
    /// Where each reproduction writes `<alert>.md`, `<alert>.json` and goose's HTML report.
    #[arg(
        long,
        env = "LOADTEST_REPORT_DIR",
        default_value = "target/reproduce",
        value_name = "DIR"
    )]
    pub report_dir: PathBuf,
    /// The playbook files, one `<alert-in-kebab-case>.toml` per alert.
    #[arg(long, env = "LOADTEST_PLAYBOOKS", default_value = PLAYBOOKS, value_name = "DIR")]
    pub playbooks: PathBuf,
    /// How to stop a component a playbook stops; `{component}` is its name.
    #[arg(
        long,
        env = "LOADTEST_STOP_COMMAND",
        default_value = control::DEFAULT_STOP,
        value_name = "COMMAND"
    )]
    pub stop_command: String,
    /// How to start it again.
    #[arg(
        long,
        env = "LOADTEST_START_COMMAND",
        default_value = control::DEFAULT_START,
        value_name = "COMMAND"
    )]
    pub start_command: String,
}

/// Runs the chosen playbooks; succeeds when every alert fired within its bound.
pub async fn command(
    alerts: &[String],
    options: ReproduceOptions,
    tester: TesterOptions,
    goose: GooseConfiguration,
) -> anyhow::Result<ExitCode> {
    let playbooks = choose(alerts, &options)?;
    // Each playbook says whether its load goes through the gateway or straight to the
    // services (on the gateway host's name, at --direct-ports), so the host is the gateway.
    let host = goose
        .host
        .clone()
        .unwrap_or_else(|| crate::routes::NATIVE_GATEWAY.into());
    let mut goose = goose;
    goose.host = Some(host.clone());
    let routes = Routes::new(&host, tester.direct.then_some(tester.direct_ports))?;
    let prometheus = Prometheus::new(&options.prometheus_url)?;
    let faults = if playbooks.iter().any(|playbook| !playbook.faults.is_empty()) {
        Some(fault_api(&routes, &tester, &options).await?)
    } else {
        None
    };
    let mut load_tester = LoadTester::start(tester.clone()).await?;
    let mut reproducer = Reproducer {
        options: &options,
        prometheus: &prometheus,
        faults: faults.as_ref(),
        tester: &mut load_tester,
        tester_options: &tester,
        goose: &goose,
    };
    let mut reports = Vec::new();
    for playbook in &playbooks {
        println!("\n=== {} ({}.toml)", playbook.alert, playbook.name);
        let report = reproducer.reproduce(playbook).await;
        let written = report.write(&options.report_dir)?;
        println!("{}\n  report: {}", report.headline(), written.display());
        reports.push(report);
    }
    Ok(summarise(&reports))
}

fn choose(alerts: &[String], options: &ReproduceOptions) -> anyhow::Result<Vec<Playbook>> {
    let all = playbook::read_all(&options.playbooks)?;
    match (options.all, alerts.is_empty()) {
        (true, true) => Ok(all),
        (true, false) => bail!("give alert names or --all, not both"),
        (false, true) => bail!(
            "name the alerts to reproduce, or --all; playbooks: {}",
            names(&all)
        ),
        (false, false) => alerts
            .iter()
            .map(|alert| {
                find(alert, &all).cloned().with_context(|| {
                    format!("no playbook for {alert:?}; playbooks: {}", names(&all))
                })
            })
            .collect(),
    }
}

/// The playbook of `alert`, named by its rule or its file. A file's name is taken as it
/// is: in kebab case again, `high-latency-p99` would become `high-latency-p-99`.
fn find<'a>(alert: &str, all: &'a [Playbook]) -> Option<&'a Playbook> {
    let wanted = kebab_case(alert);
    all.iter()
        .find(|playbook| playbook.name == alert || playbook.name == wanted)
}

fn names(playbooks: &[Playbook]) -> String {
    playbooks
        .iter()
        .map(|playbook| playbook.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn fault_api(
    routes: &Routes,
    tester: &TesterOptions,
    options: &ReproduceOptions,
) -> anyhow::Result<FaultApi> {
    let seeder = Seeder {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        routes,
    };
    let token = seeder
        .admin_token(&tester.admin_username, &tester.admin_password())
        .await?;
    let replicas = match options.faults_via {
        FaultsVia::Auto => Some(Prometheus::new(&options.prometheus_url)?),
        FaultsVia::Gateway => None,
    };
    FaultApi::new(routes.clone(), token, replicas)
}

fn summarise(reports: &[Report]) -> ExitCode {
    println!("\n=== Summary");
    for report in reports {
        println!("{}", report.headline());
    }
    let not_run = reports
        .iter()
        .filter(|report| report.outcome == Outcome::NotRun)
        .count();
    let failed = reports
        .iter()
        .filter(|report| !matches!(report.outcome, Outcome::Fired | Outcome::NotRun))
        .count();
    if failed == 0 {
        if not_run == 0 {
            println!("Every alert fired within its bound.");
        } else {
            println!(
                "Every alert run fired within its bound; {not_run} not run, for want of replicas."
            );
        }
        ExitCode::SUCCESS
    } else {
        println!(
            "{failed} of {} alerts did not fire within their bound.",
            reports.len()
        );
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbooks_are_found_by_rule_or_file_name() {
        let all = playbook::read_all(std::path::Path::new(PLAYBOOKS)).unwrap();
        for name in [
            "HighLatencyP99",
            "high-latency-p99",
            "High5xxRatio",
            "high-5xx-ratio",
        ] {
            let found = find(name, &all).map(|playbook| playbook.alert.as_str());
            assert!(found.is_some(), "{name} found no playbook");
        }
        assert!(find("high-latency-p100", &all).is_none());
    }
}
