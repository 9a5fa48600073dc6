//! Pass/fail thresholds (`p99<300ms`, `errors<1%`, `dropped<0.5%`) and the figures they are
//! judged on.
//!
//! The figures come from the tester's own metric families, either gathered in-process during
//! a run or summed over every worker by Prometheus for `loadtester verdict`; both arrive as
//! [`Sample`]s, so one piece of arithmetic serves both. Latency quantiles are computed from
//! summed histogram buckets, the way Prometheus' `histogram_quantile` does, never by
//! averaging the workers' percentiles.

use std::str::FromStr;

use crate::journeys;

mod figures;

pub use figures::{
    DROPPED, FAILURES, Figures, Histogram, INTENDED_LATENCY, ITERATIONS, LATENCY, REQUESTS, Sample,
    Scope, print_figures,
};

/// `--threshold` is goose's flag, taken over by the load tester (see [`crate::Cli::thresholds`]).
pub const HELP: &str = "Pass/fail threshold, repeatable, as MEASURE[SCOPE]OP LIMIT.\n\n\
    MEASURE is pNN (a latency percentile from the send time: p50, p99, p99.9), pNN_intended \
    (from the intended start, open model), errors (failed requests, %), dropped (dropped \
    arrivals, %), achieved (achieved arrival rate as % of the target; run only) or rps. OP \
    is <, <=, > or >=. A latency takes us, ms or s. An optional [SCOPE] narrows it to a \
    journey, [shopper], or one request, [shopper: check out]. With run, the thresholds are \
    judged at the end (and every 5 s with --abort-on-fail) and decide the exit code (2 on a \
    failure); with verdict, on the fleet's figures in Prometheus.\n\n\
    Example: --threshold 'p99<300ms' --threshold 'errors<1%' --threshold 'dropped<0.5%'";

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// A latency quantile, from the send time or from the intended start.
    Latency {
        quantile: f64,
        intended: bool,
    },
    Errors,
    Dropped,
    /// Achieved arrival rate as a share of the target.
    Achieved,
    Rps,
}

const MEASURES: &str = "pNN (p50, p99, p99.9), pNN_intended, errors, dropped, achieved, rps";

impl Measure {
    fn parse(name: &str) -> Option<Self> {
        match name {
            // goose's name for it, which the same flag took before.
            "errors" | "error-rate" => Some(Self::Errors),
            "dropped" => Some(Self::Dropped),
            "achieved" => Some(Self::Achieved),
            "rps" => Some(Self::Rps),
            _ => {
                let (percentile, intended) = match name.strip_suffix("_intended") {
                    Some(p) => (p, true),
                    None => (name, false),
                };
                let percentile: f64 = percentile.strip_prefix('p')?.parse().ok()?;
                (percentile > 0.0 && percentile < 100.0).then_some(Self::Latency {
                    quantile: percentile / 100.0,
                    intended,
                })
            }
        }
    }

    /// The figure, in seconds, as a ratio, or per second.
    pub fn of(self, figures: &Figures) -> Option<f64> {
        match self {
            Self::Latency { quantile, intended } => if intended {
                &figures.intended
            } else {
                &figures.latency
            }
            .quantile(quantile),
            Self::Errors => figures.error_ratio(),
            Self::Dropped => Some(figures.dropped_ratio()),
            Self::Achieved => figures
                .rates
                .and_then(|(target, achieved)| (target > 0.0).then(|| achieved / target)),
            Self::Rps => figures.requests_per_second(),
        }
    }

    fn format(self, value: f64) -> String {
        match self {
            Self::Latency { .. } => format!("{:.1}ms", value * 1000.0),
            Self::Errors | Self::Dropped | Self::Achieved => format!("{:.2}%", value * 100.0),
            Self::Rps => format!("{value:.1}/s"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Below,
    AtMost,
    Above,
    AtLeast,
}

impl Comparison {
    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Self::Below => value < limit,
            Self::AtMost => value <= limit,
            Self::Above => value > limit,
            Self::AtLeast => value >= limit,
        }
    }
}

/// `MEASURE[SCOPE]<LIMIT`, e.g. `p99<300ms`, `errors[shopper]<1%`,
/// `p95[shopper: check out]<=500ms`, `achieved>=95%`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub measure: Measure,
    pub scope: Scope,
    pub comparison: Comparison,
    /// In seconds, as a ratio, or per second, like [`Measure::of`].
    pub limit: f64,
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| format!("{text:?}: {why}");
        let at = text
            .find(['<', '>'])
            .ok_or_else(|| bad("no comparison; write e.g. p99<300ms or errors<1%".into()))?;
        let (left, right) = text.split_at(at);
        let (comparison, limit) = match (right.as_bytes()[0], right.get(1..2)) {
            (b'<', Some("=")) => (Comparison::AtMost, &right[2..]),
            (b'>', Some("=")) => (Comparison::AtLeast, &right[2..]),
            (b'<', _) => (Comparison::Below, &right[1..]),
            _ => (Comparison::Above, &right[1..]),
        };
        let left = left.trim();
        let (name, scope) = match left.split_once('[') {
            Some((name, scope)) => {
                let scope = scope
                    .strip_suffix(']')
                    .ok_or_else(|| bad("a scope is [journey] or [journey: step]".into()))?;
                (name.trim(), parse_scope(scope).map_err(bad)?)
            }
            None => (left, Scope::All),
        };
        let measure = Measure::parse(name)
            .ok_or_else(|| bad(format!("unknown metric {name:?}; metrics: {MEASURES}")))?;
        let limit = parse_limit(measure, limit.trim()).map_err(bad)?;
        Ok(Self {
            text: text.to_owned(),
            measure,
            scope,
            comparison,
            limit,
        })
    }
}

fn parse_scope(scope: &str) -> Result<Scope, String> {
    let (journey, step) = match scope.split_once(':') {
        Some((journey, step)) => (journey.trim(), Some(step.trim())),
        None => (scope.trim(), None),
    };
    if !journeys::ALL.contains(&journey) {
        return Err(format!(
            "no journey is called {journey:?}; journeys: {}",
            journeys::ALL.join(", ")
        ));
    }
    Ok(match step {
        Some(step) => Scope::Request(journey.to_owned(), step.to_owned()),
        None => Scope::Journey(journey.to_owned()),
    })
}

fn parse_limit(measure: Measure, limit: &str) -> Result<f64, String> {
    let number = |digits: &str| {
        digits
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("{limit:?} is not a number"))
    };
    match measure {
        Measure::Latency { .. } => {
            let (digits, scale) = if let Some(d) = limit.strip_suffix("ms") {
                (d, 1e-3)
            } else if let Some(d) = limit.strip_suffix("us") {
                (d, 1e-6)
            } else if let Some(d) = limit.strip_suffix('s') {
                (d, 1.0)
            } else {
                return Err(format!("{limit:?}: a latency takes a unit, ms, s or us"));
            };
            Ok(number(digits)? * scale)
        }
        Measure::Errors | Measure::Dropped | Measure::Achieved => {
            let digits = limit
                .strip_suffix('%')
                .ok_or_else(|| format!("{limit:?}: a share is a percentage, e.g. 1%"))?;
            Ok(number(digits)? / 100.0)
        }
        Measure::Rps => number(limit.strip_suffix("/s").unwrap_or(limit)),
    }
}

/// A threshold's figure and whether it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub threshold: Threshold,
    pub value: Option<f64>,
    pub passed: bool,
}

impl Threshold {
    /// Judges the figures of this threshold's scope; no figure at all (no requests in a
    /// scope, a misspelt step) is a breach, so that a typo cannot pass.
    pub fn judge(&self, samples: &[Sample], seconds: f64, rates: Option<(f64, f64)>) -> Judgement {
        let mut figures = Figures::of(samples, &self.scope, seconds);
        figures.rates = rates;
        let value = self.measure.of(&figures);
        Judgement {
            threshold: self.clone(),
            value,
            passed: value.is_some_and(|v| self.comparison.holds(v, self.limit)),
        }
    }
}

/// Prints one line per threshold; true when all pass.
pub fn print_judgements(judgements: &[Judgement]) -> bool {
    println!("\n {:<40} | {:>12} | verdict", "threshold", "figure");
    for judgement in judgements {
        let value = judgement.value.map_or_else(
            || "no data".to_owned(),
            |v| judgement.threshold.measure.format(v),
        );
        let verdict = if judgement.passed { "pass" } else { "FAIL" };
        println!(
            " {:<40} | {value:>12} | {verdict}",
            judgement.threshold.text
        );
    }
    judgements.iter().all(|j| j.passed)
}

#[cfg(test)]
mod tests {
    use super::figures::tests::two_workers;
    use super::*;

    fn judge(text: &str) -> Judgement {
        text.parse::<Threshold>()
            .unwrap()
            .judge(&two_workers(), 10.0, Some((100.0, 96.0)))
    }

    #[test]
    fn thresholds_parse() {
        let t: Threshold = "p99<300ms".parse().unwrap();
        assert_eq!(
            t.measure,
            Measure::Latency {
                quantile: 0.99,
                intended: false
            }
        );
        assert_eq!((t.scope, t.comparison), (Scope::All, Comparison::Below));
        assert!((t.limit - 0.3).abs() < 1e-12);
        let t: Threshold = "errors[shopper: check out]<=1%".parse().unwrap();
        assert_eq!(
            t.scope,
            Scope::Request("shopper".into(), "check out".into())
        );
        assert_eq!((t.comparison, t.limit), (Comparison::AtMost, 0.01));
        let t: Threshold = "p99.9_intended<2s".parse().unwrap();
        let Measure::Latency { quantile, intended } = t.measure else {
            panic!("{:?}", t.measure)
        };
        assert!((quantile - 0.999).abs() < 1e-12 && intended);
        assert_eq!("rps>=150".parse::<Threshold>().unwrap().limit, 150.0);
    }

    #[test]
    fn malformed_thresholds_say_why() {
        for (text, why) in [
            ("p99", "no comparison"),
            ("latency<3ms", "unknown metric"),
            ("p100<3ms", "unknown metric"),
            ("p99<300", "a latency takes a unit"),
            ("errors<1", "a percentage"),
            ("errors<x%", "not a number"),
            ("errors[nobody]<1%", "no journey"),
            ("errors[shopper<1%", "a scope is"),
        ] {
            let err = text.parse::<Threshold>().unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn a_breach_fails_and_a_pass_passes() {
        assert!(judge("p99<500ms").passed);
        assert!(!judge("p99<300ms").passed);
        assert!(judge("p99[browser]<300ms").passed);
        assert!(judge("errors<2%").passed); // 3 of 200
        assert!(!judge("errors<1%").passed);
        assert!(!judge("errors[shopper]<2%").passed); // 3 of 100
        assert!(judge("dropped<1%").passed); // 1 of 101
        assert!(!judge("dropped[shopper]<1%").passed); // 1 of 51
        assert!(judge("rps>=20").passed);
        assert!(!judge("achieved>=97%").passed);
        assert!(judge("achieved>=95%").passed);
    }

    #[test]
    fn no_data_is_a_breach() {
        let missing = judge("p99[shopper: no such step]<10s");
        assert_eq!((missing.value, missing.passed), (None, false));
        let no_target =
            "achieved>90%"
                .parse::<Threshold>()
                .unwrap()
                .judge(&two_workers(), 10.0, None);
        assert!(!no_target.passed);
    }
}
