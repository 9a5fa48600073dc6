//! The command line: the modes, and the option groups of the parts that act on them
//! (the tester's, the open model's, the verdict's, the workers', reproduce's) with goose's,
//! on one command line. Each group is defined, and read as plain data, by its part; this
//! module only puts them together, and no part imports it.

use clap::{Parser, ValueEnum};
use goose::config::GooseConfiguration;

use crate::open_model::OpenModelOptions;
use crate::options::TesterOptions;
use crate::verdict::VerdictOptions;
use crate::workers::WorkerOptions;
use crate::{reproduce, thresholds};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
