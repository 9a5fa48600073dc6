//! What one reproduction writes: the timeline, the alert expression's values, the load's
//! summary and example traces, as JSON for tools and Markdown for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::prometheus::Series;
use crate::telemetry::NotableTrace;

/// How many points of each series the report keeps.
const POINTS_PER_SERIES: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Fired,
    NotFired,
    /// The run could not be carried out (Prometheus unreachable, a fault refused...).
    Error,
    /// Left out of `--all`: the stack runs fewer replicas than the playbook needs.
    NotRun,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub alert: String,
    pub playbook: String,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub time_scale: u32,
    pub bound_seconds: u64,
    pub outcome: Outcome,
    /// Why it did not fire, or what went wrong.
    pub detail: Option<String>,
    /// Seconds from the start until the alert was firing.
    pub fired_after_seconds: Option<f64>,
    pub timeline: Vec<Event>,
    pub expression: Option<Expression>,
    pub faults: Vec<String>,
    pub stopped: Vec<String>,
    pub load: Option<LoadSummary>,
    /// Example failed or slow requests of the load, by trace id.
    pub traces: Vec<NotableTrace>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub seconds: f64,
    pub what: String,
}

#[derive(Debug, Serialize)]
pub struct Expression {
    pub query: String,
    pub for_seconds: f64,
    pub series: Vec<SeriesSummary>,
}

#[derive(Debug, Serialize)]
pub struct SeriesSummary {
    pub labels: BTreeMap<String, String>,
    pub min: f64,
    pub max: f64,
    pub last: f64,
    /// `(seconds from the start, value)`, thinned to at most [`POINTS_PER_SERIES`].
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Serialize)]
pub struct LoadSummary {
    pub mix: String,
    /// Users, an arrival rate or stages: `40 users of stuffer=1`.
    pub shape: String,
    pub seconds: usize,
    pub requests: usize,
    pub failed: usize,
    /// Goose's own summary tables as it prints them (the closed model), or the arrivals'
    /// target and achieved rates (the open model).
    #[serde(skip)]
    pub summary: String,
    pub goose_report: Option<PathBuf>,
}

impl SeriesSummary {
    /// `None` for a series without a single numeric value.
    pub fn of(series: &Series, start: DateTime<Utc>) -> Option<Self> {
        let origin = start.timestamp_millis() as f64 / 1000.0;
        let points: Vec<(f64, f64)> = series
            .values
            .iter()
            .filter_map(|(at, value)| Some((at - origin, value.parse::<f64>().ok()?)))
            .filter(|(_, value)| value.is_finite())
            .collect();
        let last = points.last()?.1;
        let (min, max) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
                (lo.min(*v), hi.max(*v))
            });
        Some(Self {
            labels: series.metric.clone(),
            min,
            max,
            last,
            points: thin(points, POINTS_PER_SERIES),
        })
    }
}

/// Every n-th point so that at most `keep` remain, always keeping the last.
fn thin(points: Vec<(f64, f64)>, keep: usize) -> Vec<(f64, f64)> {
    if points.len() <= keep {
        return points;
    }
    let every = points.len().div_ceil(keep);
    let last = *points.last().expect("not empty: longer than keep");
    let mut kept: Vec<(f64, f64)> = points.into_iter().step_by(every).collect();
    if kept.last() != Some(&last) {
        kept.push(last);
    }
    kept
}

impl Report {
    /// Writes `<dir>/<playbook>.json` and `<dir>/<playbook>.md`; returns the Markdown's path.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = dir.join(format!("{}.json", self.playbook));
        std::fs::write(&json, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", json.display()))?;
        let markdown = dir.join(format!("{}.md", self.playbook));
        std::fs::write(&markdown, self.markdown())
            .with_context(|| format!("cannot write {}", markdown.display()))?;
        Ok(markdown)
    }

    pub fn headline(&self) -> String {
        let bound = self.bound_seconds;
        match (self.outcome, self.fired_after_seconds) {
            (Outcome::Fired, Some(after)) => {
                format!("{}: FIRED after {after:.0} s (bound {bound} s)", self.alert)
            }
            (Outcome::NotRun, _) => format!(
                "{}: NOT RUN: {}",
                self.alert,
                self.detail.as_deref().unwrap_or("no detail")
            ),
            (Outcome::NotFired, _) => format!(
                "{}: DID NOT FIRE within {bound} s: {}",
                self.alert,
                self.detail.as_deref().unwrap_or("no detail")
            ),
            _ => format!(
                "{}: ERROR: {}",
                self.alert,
                self.detail.as_deref().unwrap_or("no detail")
            ),
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Reproduction of {}\n", self.alert);
        let _ = writeln!(out, "{}\n", self.summary);
        let _ = writeln!(out, "**{}**\n", self.headline());
        let _ = writeln!(
            out,
            "Labels required: {}; time scale {}; bound {} s.\n",
            format_labels(&self.labels),
            self.time_scale,
            self.bound_seconds
        );
        self.timeline_markdown(&mut out);
        self.expression_markdown(&mut out);
        self.load_markdown(&mut out);
        out
    }

    fn timeline_markdown(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Timeline\n\n| at (UTC) | +s | event |\n|---|---:|---|"
        );
        for event in &self.timeline {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {} |",
                event.at.format("%H:%M:%S%.3f"),
                event.seconds,
                event.what.replace('|', "\\|")
            );
        }
        out.push('\n');
    }

    fn expression_markdown(&self, out: &mut String) {
        let Some(expression) = &self.expression else {
            return;
        };
        let _ = writeln!(
            out,
            "## The alert's expression\n\n`for`: {} s\n\n```promql\n{}\n```\n",
            expression.for_seconds,
            expression.query.trim()
        );
        if expression.series.is_empty() {
            out.push_str("It returned no series during the run.\n\n");
            return;
        }
        out.push_str(
            "| series | min | max | last | values (+s: value) |\n|---|---:|---:|---:|---|\n",
        );
        for series in &expression.series {
            let values: Vec<String> = series
                .points
                .iter()
                .map(|(at, value)| format!("{at:.0}: {}", short(*value)))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                format_labels(&series.labels),
                short(series.min),
                short(series.max),
                short(series.last),
                values.join(", ")
            );
        }
        out.push('\n');
    }

    fn load_markdown(&self, out: &mut String) {
        if !self.faults.is_empty() {
            let _ = writeln!(out, "## Faults\n");
            for fault in &self.faults {
                let _ = writeln!(out, "- `{fault}`");
            }
            out.push('\n');
        }
        let Some(load) = &self.load else {
            return;
        };
        let _ = writeln!(
            out,
            "## Load\n\n{} for {} s: {} requests, {} failed.\n",
            load.shape, load.seconds, load.requests, load.failed
        );
        if !self.traces.is_empty() {
            out.push_str(
                "Example failed or slow requests (look them up in Jaeger by trace id, and their \
                 log lines in VictoriaLogs with the LogsQL query):\n\n",
            );
            out.push_str(
                "| trace id | kind | journey | step | status | ms | log lines (LogsQL) |\n\
                 |---|---|---|---|---:|---:|---|\n",
            );
            for trace in &self.traces {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} | {} | `{}` |",
                    trace.trace_id,
                    trace.kind,
                    trace.scenario,
                    trace.step,
                    trace.status,
                    trace.millis,
                    crate::telemetry::logs_query(&trace.trace_id)
                );
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{}:\n\n```text\n{}\n```",
            if load.goose_report.is_some() {
                "Goose's summary"
            } else {
                "The arrivals"
            },
            load.summary.trim_end()
        );
    }
}

fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "{}".into();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A value as Prometheus sends it (a string), shortened when it is a number.
pub fn value_text(value: &str) -> String {
    value
        .parse::<f64>()
        .map_or_else(|_| value.to_owned(), short)
}

/// Four significant digits: enough to compare with a threshold.
fn short(value: f64) -> String {
    if value == 0.0 || (1e-3..1e6).contains(&value.abs()) {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{value:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[(f64, &str)]) -> Series {
        Series {
            metric: BTreeMap::from([("service".to_owned(), "backend".to_owned())]),
            values: values
                .iter()
                .map(|(at, v)| (*at, (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_series_summary_counts_from_the_start_and_skips_non_numbers() {
        let start = DateTime::from_timestamp(1000, 0).unwrap();
        let summary = SeriesSummary::of(
            &series(&[(1000.0, "0.5"), (1010.0, "NaN"), (1020.0, "2")]),
            start,
        )
        .unwrap();
        assert_eq!(summary.points, vec![(0.0, 0.5), (20.0, 2.0)]);
        assert_eq!((summary.min, summary.max, summary.last), (0.5, 2.0, 2.0));
        assert!(SeriesSummary::of(&series(&[(1000.0, "NaN")]), start).is_none());
    }

    #[test]
    fn thinning_keeps_the_last_point() {
        let points: Vec<(f64, f64)> = (0..100).map(|i| (f64::from(i), f64::from(i))).collect();
        let kept = thin(points, 40);
        assert!(kept.len() <= 41, "{}", kept.len());
        assert_eq!(kept.first(), Some(&(0.0, 0.0)));
        assert_eq!(kept.last(), Some(&(99.0, 99.0)));
    }

    #[test]
    fn values_are_short_but_comparable() {
        assert_eq!(short(0.051234), "0.0512");
        assert_eq!(short(2.5), "2.5");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1.5e9), "1.500e9");
        assert_eq!(value_text("1.1005493606827081e-01"), "0.1101");
        assert_eq!(value_text("NaN"), "NaN");
    }
}
