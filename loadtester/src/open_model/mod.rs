//! The open model: journey iterations start at an arrival rate, whatever the response times.
//!
//! goose only has the closed model (each user waits for its responses before its next
//! request), and its `--co-mitigation` back-fills latencies after the fact rather than
//! sending at a rate. So arrivals are scheduled here, on tokio, and each arrival runs one
//! iteration of a journey: goose's own [`Scenario`] transactions of that journey, in
//! order (on-start, steps, on-stop), on a fresh [`GooseUser`] cloned from a prototype.
//! The journeys, their requests, checks and metrics are exactly those of the closed model;
//! only who starts them differs. Think times are left out: an iteration is one customer's
//! visit, and the gaps between customers are the arrival process's.
//!
//! `--max-in-flight` slots bound the iterations running at once (k6's pre-allocated VUs);
//! an arrival that finds none free is dropped and counted, never queued, so the rate never
//! bends to the shop's latency. Each request's latency is recorded twice: from its send
//! time, and from its intended start, which adds how late its iteration began after its
//! due time, so a generator that falls behind cannot hide it (coordinated omission).

pub mod client;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use goose::goose::{GooseUser, Scenario, TransactionFunction};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::telemetry::{ITERATION_LATENESS, LoadMetrics};
use schedule::{ArrivalClock, Arrivals, Rate, Schedule, Stages};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Open model (arrival rates)")]
pub struct OpenModelOptions {
    /// Start journey iterations at this rate for --run-time, whatever the response times:
    /// `200/s`, `600/m`. The mix picks each arrival's journey. Without it (or --stages),
    /// goose's closed model runs --users users.
    #[arg(long, env = "LOADTEST_ARRIVAL_RATE", value_name = "RATE")]
    pub arrival_rate: Option<Rate>,
    /// Rates that hold or ramp, in turn: `30s:0-200/s,2m:200/s,30s:200-0/s`. Their
    /// durations make the run's length.
    #[arg(
        long,
        env = "LOADTEST_STAGES",
        value_name = "STAGES",
        conflicts_with = "arrival_rate"
    )]
    pub stages: Option<Stages>,
    /// How arrivals are spaced: `uniform` (evenly) or `poisson` (independent customers).
    #[arg(
        long,
        env = "LOADTEST_ARRIVALS",
        value_enum,
        default_value_t = Arrivals::Uniform
    )]
    pub arrivals: Arrivals,
    /// At most this many iterations run at once; an arrival beyond is dropped and counted.
    #[arg(
        long,
        env = "LOADTEST_MAX_IN_FLIGHT",
        default_value_t = 1000,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_in_flight: u32,
}

impl OpenModelOptions {
    pub fn defaults() -> Self {
        Self {
            arrival_rate: None,
            stages: None,
            arrivals: Arrivals::Uniform,
            max_in_flight: 1000,
        }
    }

    /// The whole fleet's schedule, when the open model is asked for; `run_time` is goose's
    /// `--run-time`, which a single rate needs and stages refuse.
    pub fn schedule(&self, run_time: Option<Duration>) -> anyhow::Result<Option<Schedule>> {
        match (&self.arrival_rate, &self.stages, run_time) {
            (None, None, _) => Ok(None),
            (Some(rate), None, Some(run_time)) => Ok(Some(Schedule::constant(*rate, run_time))),
            (Some(_), None, None) => {
                anyhow::bail!("--arrival-rate needs --run-time (-t), e.g. -t 2m")
            }
            (None, Some(stages), None) => Ok(Some(Schedule::new(stages.clone()))),
            (None, Some(_), Some(_)) => {
                anyhow::bail!("--stages sets the run's length; leave out --run-time (-t)")
            }
            (Some(_), Some(_), _) => {
                anyhow::bail!("--arrival-rate and --stages exclude each other")
            }
        }
    }
}

/// A journey as an iteration runs it.
struct Journey {
    name: String,
    weight: usize,
    transactions: Vec<TransactionFunction>,
}

impl Journey {
    fn of(scenario: &Scenario) -> Self {
        let phase = |t: &goose::goose::Transaction| match (t.on_start, t.on_stop) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 2,
        };
        let mut transactions: Vec<_> = scenario.transactions.iter().collect();
        // Stable: the steps keep the order in which the journey registered them.
        transactions.sort_by_key(|t| phase(t));
        Self {
            name: scenario.name.to_string(),
            weight: scenario.weight,
            transactions: transactions.iter().map(|t| t.function.clone()).collect(),
        }
    }

    /// Runs every step, as goose does: a failed step is already counted and logged, and the
    /// next one still runs (the journeys cope with a missing token or cart).
    async fn iterate(&self, mut user: GooseUser) {
        for transaction in &self.transactions {
            let _ = transaction(&mut user).await;
        }
    }
}

/// The journeys of the mix, picked by weight for each arrival.
pub struct Journeys {
    journeys: Vec<Arc<Journey>>,
    total_weight: usize,
}

impl Journeys {
    pub fn new(scenarios: &[Scenario]) -> Self {
        let journeys: Vec<_> = scenarios
            .iter()
            .filter(|s| s.weight > 0)
            .map(|s| Arc::new(Journey::of(s)))
            .collect();
        let total_weight = journeys.iter().map(|j| j.weight).sum();
        Self {
            journeys,
            total_weight,
        }
    }

    fn pick(&self) -> &Arc<Journey> {
        let mut ticket = fastrand::usize(..self.total_weight.max(1));
        for journey in &self.journeys {
            if ticket < journey.weight {
                return journey;
            }
            ticket -= journey.weight;
        }
        &self.journeys[0]
    }
}

/// An open-model run's arrivals: the schedule (this worker's share) and how to space them.
#[derive(Debug, Clone)]
pub struct OpenPlan {
    pub schedule: Schedule,
    pub arrivals: Arrivals,
    /// Where this worker's evenly spaced arrivals fall between the fleet's (0 ≤ phase < 1).
    pub phase: f64,
    pub max_in_flight: u32,
}

/// What the arrivals did.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenReport {
    /// Arrivals per second the schedule asked of this worker, over the time it ran.
    pub target_rate: f64,
    /// Iterations started per second.
    pub achieved_rate: f64,
    pub started: u64,
    pub dropped: u64,
    /// From the first arrival's clock start to the last arrival.
    pub elapsed: Duration,
    /// Iterations still running when the grace period after the last arrival ran out.
    pub abandoned: u32,
    /// True when a threshold or Ctrl-C stopped the arrivals early.
    pub aborted: bool,
}

/// How long iterations still running after the last arrival may take to finish.
const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// Target and achieved arrival rates `elapsed` into a run of `schedule`, given the
/// iterations started so far.
pub fn rates(schedule: &Schedule, elapsed: Duration, started: f64) -> (f64, f64) {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let planned = elapsed.min(schedule.duration());
    let target = schedule.expected(planned) / planned.as_secs_f64().max(1e-3);
    (target, started / seconds)
}

/// The plan's arrivals, each one iteration of a journey picked from `journeys`, until the
/// schedule ends or `stop` turns true.
pub async fn run(
    plan: OpenPlan,
    journeys: Journeys,
    prototype: GooseUser,
    metrics: Arc<LoadMetrics>,
    mut stop: watch::Receiver<bool>,
) -> OpenReport {
    let OpenPlan {
        schedule,
        arrivals,
        phase,
        max_in_flight,
    } = plan;
    let slots = Arc::new(Semaphore::new(max_in_flight as usize));
    let start = Instant::now();
    *metrics
        .arrivals_began
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(start.into_std());
    let (mut started, mut dropped, mut aborted) = (0u64, 0u64, false);
    let mut last_rate_update = start;
    for due in ArrivalClock::new(schedule.clone(), arrivals, phase) {
        let intended = start + due;
        if intended > Instant::now() {
            tokio::select! {
                () = tokio::time::sleep_until(intended) => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
        }
        if *stop.borrow() {
            aborted = true;
            break;
        }
        if intended.duration_since(last_rate_update) >= Duration::from_millis(500) {
            metrics.target_rate.set(schedule.rate_at(due));
            last_rate_update = intended;
        }
        let journey = journeys.pick().clone();
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            dropped += 1;
            metrics.dropped.with_label_values(&[&journey.name]).inc();
            continue;
        };
        started += 1;
        metrics.iterations.with_label_values(&[&journey.name]).inc();
        let user = prototype.clone();
        let lateness = intended.elapsed();
        tokio::spawn(ITERATION_LATENESS.scope(lateness, async move {
            journey.iterate(user).await;
            drop(slot);
        }));
    }
    if !aborted {
        // The schedule's last stretch may hold no arrival; the rates cover it all the same.
        tokio::select! {
            () = tokio::time::sleep_until(start + schedule.duration()) => {}
            _ = stop.wait_for(|stop| *stop) => aborted = true,
        }
    }
    let elapsed = start.elapsed();
    metrics.target_rate.set(0.0);
    let drained = tokio::time::timeout(DRAIN_GRACE, slots.acquire_many(max_in_flight)).await;
    let abandoned = match drained {
        Ok(_) => 0,
        Err(_) => max_in_flight - slots.available_permits() as u32,
    };
    let (target_rate, achieved_rate) = rates(&schedule, elapsed, started as f64);
    OpenReport {
        target_rate,
        achieved_rate,
        started,
        dropped,
        elapsed,
        abandoned,
        aborted,
    }
}

impl OpenReport {
    pub fn print(&self) {
        println!("\n{self}");
    }
}

impl std::fmt::Display for OpenReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let arrivals = self.started + self.dropped;
        write!(
            f,
            "Open model: target {:.1} arrivals/s, achieved {:.1}/s ({:.1}%) over {:.1} s; \
             {} iterations started, {} dropped ({:.2}% of {arrivals} arrivals){}{}",
            self.target_rate,
            self.achieved_rate,
            if self.target_rate > 0.0 {
                self.achieved_rate / self.target_rate * 100.0
            } else {
                100.0
            },
            self.elapsed.as_secs_f64(),
            self.started,
            self.dropped,
            if arrivals > 0 {
                self.dropped as f64 / arrivals as f64 * 100.0
            } else {
                0.0
            },
            if self.abandoned > 0 {
                format!(
                    "; {} still running after {DRAIN_GRACE:?} were abandoned",
                    self.abandoned
                )
            } else {
                String::new()
            },
            if self.aborted { "; stopped early" } else { "" },
        )
    }
}
