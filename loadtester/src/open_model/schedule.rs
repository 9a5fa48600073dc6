//! When arrivals are due: rates (`200/s`), stages that hold or ramp a rate
//! (`30s:0-200/s,2m:200/s`), and the arrival times they give, evenly spaced or Poisson.
//!
//! A stage's rate is linear in time, so the expected number of arrivals Λ(t) is quadratic
//! and has a closed-form inverse. The k-th uniform arrival is due at Λ⁻¹(k); Poisson
//! arrivals are due at Λ⁻¹ of a sum of unit exponentials, which is an inhomogeneous Poisson
//! process of rate r(t) (the time-change theorem), ramps included.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;

/// Arrivals per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(pub f64);

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || format!("{text:?} is not a rate such as 200/s, 600/m or 5000/h");
        let (count, unit) = text.trim().split_once('/').ok_or_else(malformed)?;
        let per_second = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(malformed()),
        };
        let count: f64 = count.trim().parse().map_err(|_| malformed())?;
        if !count.is_finite() || count < 0.0 {
            return Err(malformed());
        }
        Ok(Self(count / per_second))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}/s", self.0)
    }
}

/// A span of time whose rate goes linearly from `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

impl Stage {
    fn seconds(&self) -> f64 {
        self.duration.as_secs_f64()
    }

    /// Expected arrivals in the first `t` seconds of the stage.
    fn expected(&self, t: f64) -> f64 {
        let slope = (self.to - self.from) / self.seconds();
        self.from * t + slope * t * t / 2.0
    }

    /// The time into the stage by which `arrivals` are expected (`arrivals` ≤ the stage's
    /// total).
    fn time_of(&self, arrivals: f64) -> f64 {
        let slope = (self.to - self.from) / self.seconds();
        if slope.abs() < 1e-12 {
            return arrivals / self.from;
        }
        let discriminant = (self.from * self.from + 2.0 * slope * arrivals).max(0.0);
        ((discriminant.sqrt() - self.from) / slope).clamp(0.0, self.seconds())
    }
}

/// `DURATION:RATE` or `DURATION:FROM-TO/UNIT`, comma-separated.
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<Stage>);

impl FromStr for Stages {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut stages = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let malformed = |why: String| {
                format!(
                    "{part:?}: {why} (a stage is DURATION:RATE or DURATION:FROM-TO/UNIT, e.g. 30s:0-200/s)"
                )
            };
            let (duration, rates) = part
                .split_once(':')
                .ok_or_else(|| malformed("no ':'".into()))?;
            let duration = humantime_serde::re::humantime::parse_duration(duration.trim())
                .map_err(|err| malformed(format!("duration: {err}")))?;
            if duration.is_zero() {
                return Err(malformed("the duration is zero".into()));
            }
            let (from, to) = match rates.split_once('-') {
                Some((from, to)) => {
                    // The start of a ramp takes the unit of its end unless it has its own.
                    let unit = to.rsplit_once('/').map_or("s", |(_, unit)| unit.trim());
                    let from = if from.contains('/') {
                        from.to_owned()
                    } else {
                        format!("{}/{unit}", from.trim())
                    };
                    let from: Rate = from.parse().map_err(malformed)?;
                    let to: Rate = to.parse().map_err(malformed)?;
                    (from.0, to.0)
                }
                None => {
                    let rate: Rate = rates.parse().map_err(malformed)?;
                    (rate.0, rate.0)
                }
            };
            stages.push(Stage { duration, from, to });
        }
        if stages.is_empty() {
            return Err("give at least one stage, e.g. 30s:0-200/s,2m:200/s".into());
        }
        Ok(Self(stages))
    }
}

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arrivals {
    /// Evenly spaced, like wrk2.
    Uniform,
    /// Exponential gaps: independent customers, bursts included.
    Poisson,
}

/// The whole run's arrival plan.
#[derive(Debug, Clone)]
pub struct Schedule {
    stages: Vec<Stage>,
}

impl Schedule {
    pub fn new(stages: Stages) -> Self {
        Self { stages: stages.0 }
    }

    /// One constant rate for `duration`.
    pub fn constant(rate: Rate, duration: Duration) -> Self {
        Self {
            stages: vec![Stage {
                duration,
                from: rate.0,
                to: rate.0,
            }],
        }
    }

    /// This worker's share: every rate divided by `workers`.
    pub fn share(mut self, workers: u32) -> Self {
        for stage in &mut self.stages {
            stage.from /= f64::from(workers);
            stage.to /= f64::from(workers);
        }
        self
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Arrivals expected in the first `elapsed` of the run.
    pub fn expected(&self, elapsed: Duration) -> f64 {
        let mut left = elapsed.as_secs_f64();
        let mut total = 0.0;
        for stage in &self.stages {
            let t = left.min(stage.seconds());
            total += stage.expected(t);
            left -= t;
            if left <= 0.0 {
                break;
            }
        }
        total
    }

    /// The arrivals per second asked for `at` into the run.
    pub fn rate_at(&self, at: Duration) -> f64 {
        let mut left = at.as_secs_f64();
        for stage in &self.stages {
            if left <= stage.seconds() {
                return stage.from + (stage.to - stage.from) * left / stage.seconds();
            }
            left -= stage.seconds();
        }
        0.0
    }

    /// When, from the start, the expected arrivals reach `arrivals`; `None` after the end.
    pub fn time_of(&self, mut arrivals: f64) -> Option<Duration> {
        let mut offset = 0.0;
        for stage in &self.stages {
            let total = stage.expected(stage.seconds());
            if arrivals <= total && total > 0.0 {
                return Some(Duration::from_secs_f64(offset + stage.time_of(arrivals)));
            }
            arrivals -= total;
            offset += stage.seconds();
        }
        None
    }
}

/// The successive due times of a schedule's arrivals.
pub struct ArrivalClock {
    schedule: Schedule,
    arrivals: Arrivals,
    /// Expected arrivals so far, in Λ units.
    position: f64,
}

impl ArrivalClock {
    /// `phase` (0 ≤ phase < 1) shifts evenly spaced arrivals, so that workers sharing a rate
    /// interleave rather than arrive together.
    pub fn new(schedule: Schedule, arrivals: Arrivals, phase: f64) -> Self {
        // The first evenly spaced arrival comes at `phase` (or one interval in, at phase 0),
        // so that every worker has its whole share of arrivals within the schedule.
        let position = match arrivals {
            Arrivals::Uniform if phase > 0.0 => phase - 1.0,
            _ => 0.0,
        };
        Self {
            schedule,
            arrivals,
            position,
        }
    }
}

impl Iterator for ArrivalClock {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.position += match self.arrivals {
            Arrivals::Uniform => 1.0,
            // An exponential gap of mean 1; 1 - u lies in (0, 1], so ln is finite.
            Arrivals::Poisson => -(1.0 - fastrand::f64()).ln(),
        };
        self.schedule.time_of(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn rates_parse_with_their_unit() {
        assert_eq!("200/s".parse::<Rate>().unwrap(), Rate(200.0));
        assert_eq!("120/m".parse::<Rate>().unwrap(), Rate(2.0));
        assert!("200".parse::<Rate>().is_err());
        assert!("200/d".parse::<Rate>().is_err());
        assert!("-1/s".parse::<Rate>().is_err());
        assert!("fast/s".parse::<Rate>().is_err());
    }

    #[test]
    fn stages_hold_and_ramp() {
        let stages: Stages = "30s:0-200/s,2m:200/s,30s:200-0/s".parse().unwrap();
        assert_eq!(
            stages.0,
            vec![
                Stage {
                    duration: secs(30),
                    from: 0.0,
                    to: 200.0
                },
                Stage {
                    duration: secs(120),
                    from: 200.0,
                    to: 200.0
                },
                Stage {
                    duration: secs(30),
                    from: 200.0,
                    to: 0.0
                },
            ]
        );
        assert_eq!("10s:1/s-2/s".parse::<Stages>().unwrap().0[0].to, 2.0);
        for bad in ["", "30s", "30x:200/s", "0s:200/s", "30s:200", "30s:a-200/s"] {
            assert!(bad.parse::<Stages>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_ramp_expects_the_area_under_its_rate() {
        let schedule = Schedule::new("10s:0-100/s,10s:100/s".parse().unwrap());
        assert_eq!(schedule.duration(), secs(20));
        assert!((schedule.expected(secs(10)) - 500.0).abs() < 1e-9);
        assert!((schedule.expected(secs(20)) - 1500.0).abs() < 1e-9);
        // Half the ramp's arrivals come in its last 30% or so: t = 10·√0.5.
        let t = schedule.time_of(250.0).unwrap().as_secs_f64();
        assert!((t - 10.0 * 0.5f64.sqrt()).abs() < 1e-6, "{t}");
        assert_eq!(schedule.time_of(1500.5), None);
    }

    #[test]
    fn uniform_arrivals_are_evenly_spaced_and_counted_exactly() {
        let schedule = Schedule::constant(Rate(100.0), secs(2));
        let times: Vec<Duration> = ArrivalClock::new(schedule, Arrivals::Uniform, 0.0).collect();
        assert_eq!(times.len(), 200);
        assert_eq!(times[0], Duration::from_millis(10));
        assert_eq!(times[99], Duration::from_secs(1));
    }

    #[test]
    fn poisson_arrivals_average_the_rate() {
        let schedule = Schedule::constant(Rate(1000.0), secs(10));
        let count = ArrivalClock::new(schedule, Arrivals::Poisson, 0.0).count();
        // The standard deviation is √10000 = 100; six of them never happen.
        assert!((9_400..=10_600).contains(&count), "{count}");
    }

    #[test]
    fn workers_share_the_rate() {
        // Two workers at 50/s each: one on every 20 ms, the other halfway between, and each
        // has its whole share, 50 arrivals, within the second.
        let worker = |index: u32| {
            let schedule = Schedule::constant(Rate(100.0), secs(1)).share(2);
            ArrivalClock::new(schedule, Arrivals::Uniform, f64::from(index) / 2.0)
                .collect::<Vec<Duration>>()
        };
        let (first, second) = (worker(0), worker(1));
        assert_eq!((first.len(), second.len()), (50, 50));
        assert_eq!(
            first[..2],
            [Duration::from_millis(20), Duration::from_millis(40)]
        );
        assert_eq!(
            second[..2],
            [Duration::from_millis(10), Duration::from_millis(30)]
        );
    }
}
