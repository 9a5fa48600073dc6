//! The figures thresholds are judged on: the tester's metric families as [`Sample`]s,
//! summed by [`Scope`] into [`Figures`], latency quantiles from summed histogram buckets;
//! and the table of them a run prints.

use std::collections::BTreeMap;
use std::fmt;

pub const REQUESTS: &str = "loadtest_requests_total";
pub const FAILURES: &str = "loadtest_failed_requests_total";
pub const LATENCY: &str = "loadtest_request_duration_seconds_bucket";
pub const INTENDED_LATENCY: &str = "loadtest_request_intended_duration_seconds_bucket";
pub const ITERATIONS: &str = "loadtest_iterations_total";
pub const DROPPED: &str = "loadtest_dropped_iterations_total";

/// One value of a metric family: counters as they are, histogram buckets with their `le`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Which requests a figure covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    All,
    /// A journey (the `scenario` label).
    Journey(String),
    /// One request name: a journey's step, `shopper: check out`.
    Request(String, String),
}

impl Scope {
    fn covers(&self, sample: &Sample) -> bool {
        match self {
            Scope::All => true,
            Scope::Journey(journey) => sample.label("scenario") == journey,
            Scope::Request(journey, step) => {
                sample.label("scenario") == journey && sample.label("step") == step
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all"),
            Scope::Journey(journey) => f.write_str(journey),
            Scope::Request(journey, step) => write!(f, "{journey}: {step}"),
        }
    }
}

/// Cumulative bucket counts by upper bound, summed over series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram(Vec<(f64, f64)>);

impl Histogram {
    fn add(&mut self, upper: f64, count: f64) {
        match self.0.iter_mut().find(|(le, _)| *le == upper) {
            Some((_, total)) => *total += count,
            None => {
                self.0.push((upper, count));
                self.0.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }

    pub fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |(_, count)| *count)
    }

    /// The `q` quantile in seconds, interpolated within its bucket as `histogram_quantile`
    /// does; `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(upper, count) in &self.0 {
            if count >= rank {
                if upper.is_infinite() {
                    // Above the highest bucket: its bound is all that is known.
                    return Some(lower.0);
                }
                let within = count - lower.1;
                let fraction = if within > 0.0 {
                    (rank - lower.1) / within
                } else {
                    1.0
                };
                return Some(lower.0 + (upper - lower.0) * fraction);
            }
            lower = (upper, count);
        }
        Some(lower.0)
    }
}

/// What one scope of a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub requests: f64,
    pub failures: f64,
    pub iterations: f64,
    pub dropped: f64,
    pub latency: Histogram,
    pub intended: Histogram,
    /// The time the counts cover, for rates.
    pub seconds: f64,
    /// Target and achieved arrivals per second; only a run knows its target.
    pub rates: Option<(f64, f64)>,
}

impl Figures {
    pub fn of(samples: &[Sample], scope: &Scope, seconds: f64) -> Self {
        let mut figures = Figures {
            seconds,
            ..Figures::default()
        };
        for sample in samples.iter().filter(|s| scope.covers(s)) {
            let le = || match sample.label("le") {
                "+Inf" => Some(f64::INFINITY),
                le => le.parse().ok(),
            };
            match sample.name.as_str() {
                REQUESTS => figures.requests += sample.value,
                FAILURES => figures.failures += sample.value,
                ITERATIONS => figures.iterations += sample.value,
                DROPPED => figures.dropped += sample.value,
                LATENCY => {
                    if let Some(le) = le() {
                        figures.latency.add(le, sample.value);
                    }
                }
                INTENDED_LATENCY => {
                    if let Some(le) = le() {
                        figures.intended.add(le, sample.value);
                    }
                }
                _ => {}
            }
        }
        figures
    }

    pub fn error_ratio(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| self.failures / self.requests)
    }

    /// Dropped among all arrivals; 0 when none arrived (the closed model drops nothing).
    pub fn dropped_ratio(&self) -> f64 {
        let arrivals = self.iterations + self.dropped;
        if arrivals > 0.0 {
            self.dropped / arrivals
        } else {
            0.0
        }
    }

    pub fn requests_per_second(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.requests / self.seconds)
    }
}

/// Overall and per journey (and with `by_request`, per request name): requests, rate,
/// errors, latency from send and from intended start, iterations and dropped ones.
pub fn print_figures(samples: &[Sample], seconds: f64, by_request: bool) {
    let mut names: Vec<(&str, &str)> = samples
        .iter()
        .filter(|s| !s.label("scenario").is_empty())
        .map(|s| (s.label("scenario"), s.label("step")))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut scopes = vec![Scope::All];
    for (journey, step) in names {
        if scopes.last() != Some(&Scope::Journey(journey.to_owned()))
            && !matches!(scopes.last(), Some(Scope::Request(j, _)) if j == journey)
        {
            scopes.push(Scope::Journey(journey.to_owned()));
        }
        if by_request && !step.is_empty() {
            scopes.push(Scope::Request(journey.to_owned(), step.to_owned()));
        }
    }
    let width = scopes
        .iter()
        .map(|scope| scope.to_string().len())
        .max()
        .unwrap_or(0)
        .max(10);
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}", v * 1000.0));
    println!(
        "\n {:<width$} | {:>9} | {:>8} | {:>7} | {:>8} | {:>8} | {:>8} | {:>12} | {:>10} | {:>8}",
        if by_request {
            "journey or request"
        } else {
            "journey"
        },
        "requests",
        "req/s",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99 int. ms",
        "iterations",
        "dropped"
    );
    for scope in scopes {
        let f = Figures::of(samples, &scope, seconds);
        println!(
            // Prometheus' increase() extrapolates, so its counts need not be whole.
            " {:<width$} | {:>9.0} | {:>8.1} | {:>6.2}% | {:>8} | {:>8} | {:>8} | {:>12} | {:>10.0} | {:>8.0}",
            scope.to_string(),
            f.requests,
            f.requests_per_second().unwrap_or(0.0),
            f.error_ratio().unwrap_or(0.0) * 100.0,
            ms(f.latency.quantile(0.5)),
            ms(f.latency.quantile(0.95)),
            ms(f.latency.quantile(0.99)),
            ms(f.intended.quantile(0.99)),
            f.iterations,
            f.dropped
        );
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }

    /// Two workers: one fast, one slow; 100 requests each, 3 failed in all.
    pub fn two_workers() -> Vec<Sample> {
        let mut samples = Vec::new();
        for (journey, le_counts) in [
            ("browser", [("0.1", 100.0), ("0.5", 100.0), ("+Inf", 100.0)]),
            ("shopper", [("0.1", 0.0), ("0.5", 100.0), ("+Inf", 100.0)]),
        ] {
            let labels = [("scenario", journey), ("step", "s")];
            samples.push(sample(REQUESTS, &labels, 100.0));
            for (le, count) in le_counts {
                let mut with_le = labels.to_vec();
                with_le.push(("le", le));
                samples.push(sample(LATENCY, &with_le, count));
            }
            samples.push(sample(ITERATIONS, &labels[..1], 50.0));
        }
        samples.push(sample(
            FAILURES,
            &[("scenario", "shopper"), ("step", "s")],
            3.0,
        ));
        samples.push(sample(DROPPED, &[("scenario", "shopper")], 1.0));
        samples
    }

    #[test]
    fn quantiles_come_from_summed_buckets() {
        let all = Figures::of(&two_workers(), &Scope::All, 10.0);
        // Half the requests are under 100 ms, all under 500 ms: the median is 100 ms and the
        // p99 interpolates within the 100–500 ms bucket.
        assert!((all.latency.quantile(0.5).unwrap() - 0.1).abs() < 1e-9);
        assert!((all.latency.quantile(0.99).unwrap() - 0.492).abs() < 1e-9);
        assert_eq!(Figures::default().latency.quantile(0.99), None);
    }
}
