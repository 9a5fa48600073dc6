//! `loadtester verdict`: the fleet's figures from Prometheus, judged on thresholds.
//!
//! Every worker's counters and histogram buckets are summed by Prometheus over `--since`
//! (`sum by (…, le) (increase(…))`); the quantiles are then computed from the summed
//! buckets by [`crate::thresholds`], the same arithmetic a single run uses live.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::reproduce::prometheus::Prometheus;
use crate::thresholds::{
    self, DROPPED, FAILURES, INTENDED_LATENCY, ITERATIONS, LATENCY, Measure, REQUESTS, Sample,
    Threshold,
};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Thresholds and verdict")]
pub struct VerdictOptions {
    /// The `--threshold` rules. The flag is goose's, so that one command line has one
    /// `--threshold`; [`Cli::thresholds`](crate::Cli::thresholds) parses it here instead,
    /// so that both models and `verdict` judge the same figures the same way.
    #[arg(skip)]
    pub thresholds: Vec<Threshold>,
    /// With `run`: stop as soon as a threshold fails (judged every 5 s).
    #[arg(long)]
    pub abort_on_fail: bool,
    /// With `verdict`: the time back from now that the figures cover, e.g. 5m.
    #[arg(
        long,
        default_value = "5m",
        value_name = "DURATION",
        value_parser = humantime_serde::re::humantime::parse_duration
    )]
    pub since: Duration,
}

impl VerdictOptions {
    pub fn defaults() -> Self {
        Self {
            thresholds: Vec::new(),
            abort_on_fail: false,
            since: Duration::from_secs(300),
        }
    }
}

/// The queries whose results make the samples: each metric summed over the workers.
fn queries(window: &str) -> [(&'static str, String); 6] {
    let increase = |metric: &str, by: &str| format!("sum by ({by}) (increase({metric}[{window}]))");
    [
        (REQUESTS, increase(REQUESTS, "scenario, step")),
        (FAILURES, increase(FAILURES, "scenario, step")),
        (LATENCY, increase(LATENCY, "scenario, step, le")),
        (
            INTENDED_LATENCY,
            increase(INTENDED_LATENCY, "scenario, step, le"),
        ),
        (ITERATIONS, increase(ITERATIONS, "scenario")),
        (DROPPED, increase(DROPPED, "scenario")),
    ]
}

pub async fn command(prometheus_url: &str, options: &VerdictOptions) -> anyhow::Result<ExitCode> {
    if let Some(t) = options
        .thresholds
        .iter()
        .find(|t| t.measure == Measure::Achieved)
    {
        anyhow::bail!(
            "--threshold {:?}: only a run knows its target rate; verdict cannot judge `achieved`",
            t.text
        );
    }
    let since = options.since.as_secs().max(1);
    let window = format!("{since}s");
    let prometheus = Prometheus::new(prometheus_url)
        .with_context(|| format!("--prometheus-url {prometheus_url}"))?;
    let mut samples = Vec::new();
    for (name, query) in queries(&window) {
        // The root cause alone (connection refused, a bad answer): the URL is in the flag.
        let vector = prometheus.query(&query).await.map_err(|err| {
            anyhow::anyhow!("--prometheus-url {prometheus_url}: {}", err.root_cause())
        })?;
        samples.extend(vector.into_iter().map(|(labels, value)| Sample {
            name: name.to_owned(),
            labels,
            value,
        }));
    }
    let requests: f64 = samples
        .iter()
        .filter(|s| s.name == REQUESTS)
        .map(|s| s.value)
        .sum();
    if requests <= 0.0 {
        anyhow::bail!(
            "--prometheus-url {prometheus_url}: no load tester requests in the last {} (--since); \
             were the workers' /metrics scraped (job loadtester)?",
            humantime_serde::re::humantime::format_duration(options.since)
        );
    }
    let seconds = since as f64;
    println!(
        "Fleet-wide figures of the last {} from {prometheus_url} (rates over the whole window):",
        humantime_serde::re::humantime::format_duration(options.since)
    );
    thresholds::print_figures(&samples, seconds, true);
    let judgements: Vec<_> = options
        .thresholds
        .iter()
        .map(|t| t.judge(&samples, seconds, None))
        .collect();
    if judgements.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if thresholds::print_judgements(&judgements) {
        println!("\nVerdict: pass");
        ExitCode::SUCCESS
    } else {
        println!("\nVerdict: FAIL");
        ExitCode::from(2)
    })
}
