//! One reproduction, start to end: wait until the alert is quiet, stop components, apply
//! faults, load, watch Prometheus until the alert fires or the bound passes, clear
//! everything, optionally wait for the resolve, and gather the report.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use goose::config::GooseConfiguration;
use tokio::sync::{Notify, watch};

use super::ReproduceOptions;
use super::control;
use super::faults::{Applied, FaultApi};
use super::playbook::{Load, Playbook, Shape};
use super::prometheus::{ActiveAlert, AlertRule, Prometheus};
use super::replicas;
use super::report::{Event, Expression, LoadSummary, Outcome, Report, SeriesSummary, value_text};
use crate::options::TesterOptions;
use crate::thresholds::{Figures, Scope};
use crate::{LoadTester, OpenRun, Run};

const POLL: Duration = Duration::from_secs(1);
/// Faults outlive the bound by this much, so that they cover the whole run even when
/// clearing them fails: the time-to-live still ends them.
const FAULT_TTL_MARGIN: Duration = Duration::from_secs(60);
/// How many example traces a report lists.
const EXAMPLE_TRACES: usize = 10;

pub struct Reproducer<'a> {
    pub options: &'a ReproduceOptions,
    pub prometheus: &'a Prometheus,
    pub faults: Option<&'a FaultApi>,
    pub tester: &'a mut LoadTester,
    /// The command line's tester options, which each playbook's load starts from.
    pub tester_options: &'a TesterOptions,
    pub goose: &'a GooseConfiguration,
}

/// The events of one run, each timed from its start.
struct Timeline {
    start: DateTime<Utc>,
    events: Vec<Event>,
}

impl Timeline {
    fn new() -> Self {
        Self {
            start: Utc::now(),
            events: Vec::new(),
        }
    }

    fn record(&mut self, what: impl Into<String>) {
        self.record_at(Utc::now(), what);
    }

    fn record_at(&mut self, at: DateTime<Utc>, what: impl Into<String>) {
        let what = what.into();
        let seconds = (at - self.start).num_milliseconds() as f64 / 1000.0;
        println!("  +{seconds:>6.1} s  {what}");
        self.events.push(Event { at, seconds, what });
    }
}

/// What watching the alert saw.
#[derive(Default)]
struct Watched {
    firing_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    /// Why the load ended before the alert fired: without its load, a playbook cannot work.
    load_error: Option<String>,
}

impl Reproducer<'_> {
    pub async fn reproduce(&mut self, playbook: &Playbook) -> Report {
        let bound = playbook
            .fires_within
            .under_time_scale(self.options.time_scale);
        let mut report = Report {
            alert: playbook.alert.clone(),
            playbook: playbook.name.clone(),
            summary: playbook.summary.clone(),
            labels: playbook.labels.clone(),
            time_scale: self.options.time_scale,
            bound_seconds: bound.as_secs(),
            outcome: Outcome::Error,
            detail: None,
            fired_after_seconds: None,
            timeline: Vec::new(),
            expression: None,
            faults: Vec::new(),
            stopped: Vec::new(),
            load: None,
            traces: Vec::new(),
        };
        let mut timeline = Timeline::new();
        match self.replicas_missing(playbook).await {
            Ok(None) => {}
            Ok(Some(shortfall)) => {
                report.outcome = if self.options.all {
                    Outcome::NotRun
                } else {
                    Outcome::Error
                };
                report.detail = Some(shortfall);
                return report;
            }
            Err(err) => {
                report.detail = Some(format!("{err:#}"));
                return report;
            }
        }
        if let Err(err) = self
            .carry_out(playbook, bound, &mut timeline, &mut report)
            .await
        {
            timeline.record(format!("error: {err:#}"));
            report.outcome = Outcome::Error;
            report.detail = Some(format!("{err:#}"));
        }
        report.timeline = timeline.events;
        report
    }

    /// Why the stack cannot run the playbook: fewer replicas of its service than it needs.
    async fn replicas_missing(&self, playbook: &Playbook) -> anyhow::Result<Option<String>> {
        let Some(needed) = playbook.replicas else {
            return Ok(None);
        };
        let service = playbook
            .labels
            .get("service")
            .context("a playbook that needs replicas names its service in `labels`")?;
        let scraped = self.prometheus.targets(service).await?.len();
        Ok(replicas::shortfall(service, needed, scraped))
    }

    async fn carry_out(
        &mut self,
        playbook: &Playbook,
        bound: Duration,
        timeline: &mut Timeline,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let rule = self.prometheus.alert_rule(&playbook.alert).await?;
        self.wait_until_quiet(playbook, bound).await?;
        // The run starts once the alert is quiet; waiting for that is not part of it.
        *timeline = Timeline::new();
        timeline.record(format!(
            "start: {} (bound {} s)",
            playbook.summary,
            bound.as_secs()
        ));
        let applied = self.disturb(playbook, bound, timeline, report).await;
        let watched = match &applied {
            Ok(_) => self.load_and_watch(playbook, bound, timeline, report).await,
            Err(_) => Watched::default(),
        };
        self.restore(
            playbook,
            applied.as_deref().unwrap_or_default(),
            timeline,
            report,
        )
        .await;
        applied?;
        match watched.firing_at {
            Some(at) => {
                report.outcome = Outcome::Fired;
                report.fired_after_seconds =
                    Some((at - timeline.start).num_milliseconds() as f64 / 1000.0);
                if self.options.wait_resolved {
                    self.wait_resolved(playbook, bound, timeline).await;
                }
            }
            None => {
                report.outcome = Outcome::NotFired;
                report.detail = Some(match (watched.load_error, watched.last_error) {
                    (Some(error), _) => format!("the load failed: {error}"),
                    (None, Some(error)) => {
                        format!("not firing; the last poll of Prometheus failed: {error}")
                    }
                    (None, None) => "the alert was not firing when the bound passed".into(),
                });
            }
        }
        report.expression = Some(self.expression(&rule, timeline.start).await);
        Ok(())
    }

    /// An alert already active before the run would prove nothing: wait for it to end.
    async fn wait_until_quiet(&self, playbook: &Playbook, bound: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let active = self.matching(playbook).await?;
            if active.is_none() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "{} was already active before the run and stayed so for {} s; a \
                     reproduction would prove nothing",
                    playbook.alert,
                    bound.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn matching(&self, playbook: &Playbook) -> anyhow::Result<Option<ActiveAlert>> {
        let alerts = self.prometheus.active_alerts().await?;
        Ok(alerts
            .into_iter()
            .find(|alert| alert.carries(&playbook.alert, &playbook.labels)))
    }

    /// Stops the playbook's components and applies its faults.
    async fn disturb(
        &self,
        playbook: &Playbook,
        bound: Duration,
        timeline: &mut Timeline,
        report: &mut Report,
    ) -> anyhow::Result<Vec<Applied>> {
        for component in &playbook.stop {
            control::run(&self.options.stop_command, component).await?;
            report.stopped.push(component.clone());
            timeline.record(format!("stopped {component}"));
        }
        if playbook.faults.is_empty() {
            return Ok(Vec::new());
        }
        let api = self.faults.ok_or_else(|| {
            anyhow::anyhow!("this playbook injects faults, but no admin token was obtained")
        })?;
        let placed = api
            .apply_all(&playbook.faults, bound + FAULT_TTL_MARGIN)
            .await?;
        for fault in &placed.applied {
            let what = format!("{} {}", fault.target(), fault.description);
            timeline.record(format!("fault applied: {what}"));
            report.faults.push(what);
        }
        for replica in &placed.down {
            timeline.record(format!(
                "no fault for {replica}: Prometheus cannot scrape it"
            ));
        }
        Ok(placed.applied)
    }

    async fn restore(
        &self,
        playbook: &Playbook,
        applied: &[Applied],
        timeline: &mut Timeline,
        report: &mut Report,
    ) {
        if let Some(api) = self.faults
            && !applied.is_empty()
        {
            api.remove_all(applied).await;
            timeline.record("faults cleared");
        }
        for component in &report.stopped {
            match control::run(&self.options.start_command, component).await {
                Ok(()) => timeline.record(format!("started {component} again")),
                Err(err) => timeline.record(format!("could not start {component} again: {err:#}")),
            }
        }
        if playbook.load.is_some() {
            timeline.record("load stopped");
        }
    }

    /// Runs the playbook's load (if any) while watching the alert; the load ends when the
    /// alert fires or the bound passes.
    async fn load_and_watch(
        &mut self,
        playbook: &Playbook,
        bound: Duration,
        timeline: &mut Timeline,
        report: &mut Report,
    ) -> Watched {
        let deadline = tokio::time::Instant::now() + bound;
        let Some(load) = &playbook.load else {
            return self.watch(playbook, deadline, timeline).await;
        };
        let (config, shape) = match self.load_config(playbook, load, bound) {
            Ok(prepared) => prepared,
            Err(err) => {
                timeline.record(format!("load not started: {err:#}"));
                return self.watch(playbook, deadline, timeline).await;
            }
        };
        timeline.record(format!("load started: {}", load.describe()));
        // The tester's counters add up over every playbook of the run: this one's load is
        // what they gain during it.
        let before = self.counted();
        let finished = Arc::new(AtomicBool::new(false));
        let load_failed = Notify::new();
        let (stop, stopped) = watch::channel(false);
        let prometheus = self.prometheus;
        let tester = &*self.tester;
        let attack = async {
            let run = match shape.open_plan(bound) {
                None => tester
                    .attack(config)
                    .await
                    .map(|run| LoadRun::Closed(Box::new(run))),
                Some(plan) => tester
                    .attack_open(config, plan, stopped)
                    .await
                    .map(LoadRun::Open),
            };
            finished.store(true, Ordering::Relaxed);
            if run.is_err() {
                load_failed.notify_one();
            }
            run
        };
        let watch = async {
            let watched = tokio::select! {
                watched = watch_alert(prometheus, playbook, deadline, timeline) => watched,
                () = load_failed.notified() => Watched::default(),
            };
            let _ = stop.send(true);
            stop_load(&finished).await;
            watched
        };
        let (run, mut watched) = tokio::join!(attack, watch);
        match run {
            Ok(run) => self.summarise_load(playbook, load, run, before, report),
            Err(err) => {
                let error = format!("{err:#}");
                timeline.record(format!("load failed: {error}"));
                watched.load_error = Some(error);
            }
        }
        watched
    }

    /// Requests and failed requests the tester has counted so far.
    fn counted(&self) -> (f64, f64) {
        let figures = Figures::of(&self.tester.metrics().samples(), &Scope::All, 0.0);
        (figures.requests, figures.failures)
    }

    async fn watch(
        &self,
        playbook: &Playbook,
        deadline: tokio::time::Instant,
        timeline: &mut Timeline,
    ) -> Watched {
        watch_alert(self.prometheus, playbook, deadline, timeline).await
    }

    fn load_config(
        &mut self,
        playbook: &Playbook,
        load: &Load,
        bound: Duration,
    ) -> anyhow::Result<(GooseConfiguration, Shape)> {
        let shape = load.shape()?;
        let options = self.tester.options_mut();
        *options = self.tester_options.clone();
        options.mix = load.mix()?;
        options.direct = load.direct;
        if let Some(think) = load.think_time()? {
            options.think_time_ms = think;
        }
        if let Some(stock) = load.flash_stock {
            options.flash_stock = stock;
        }
        if let Some(percent) = load.cancel_percent {
            options.cancel_percent = percent;
        }
        let mut config = self.goose.clone();
        // Failed requests are listed by trace id in the report; goose's own error table
        // would repeat each of them, as every message carries its own trace id.
        config.no_error_summary = true;
        config.no_telnet = true;
        config.no_websocket = true;
        if let Shape::Users(users) = shape {
            config.users = Some(users);
            config.increase_rate = Some(users.to_string());
            config.run_time = Some(format!("{}s", bound.as_secs() + 1));
            std::fs::create_dir_all(&self.options.report_dir)?;
            config.report_file = vec![self.goose_report(playbook).display().to_string()];
        }
        Ok((config, shape))
    }

    fn goose_report(&self, playbook: &Playbook) -> PathBuf {
        self.options
            .report_dir
            .join(format!("{}.goose.html", playbook.name))
    }

    fn summarise_load(
        &self,
        playbook: &Playbook,
        load: &Load,
        run: LoadRun,
        (requests_before, failed_before): (f64, f64),
        report: &mut Report,
    ) {
        let (requests, failed) = self.counted();
        let (seconds, summary, goose_report, notable) = match run {
            LoadRun::Closed(run) => (
                run.goose.duration,
                run.goose.to_string(),
                Some(self.goose_report(playbook)),
                run.notable,
            ),
            LoadRun::Open(run) => (
                run.report.elapsed.as_secs() as usize,
                run.report.to_string(),
                None,
                run.notable,
            ),
        };
        report.load = Some(LoadSummary {
            mix: load.mix.clone(),
            shape: load.describe(),
            seconds,
            requests: (requests - requests_before) as usize,
            failed: (failed - failed_before) as usize,
            summary,
            goose_report,
        });
        report.traces = notable.into_iter().take(EXAMPLE_TRACES).collect();
    }

    async fn wait_resolved(&self, playbook: &Playbook, bound: Duration, timeline: &mut Timeline) {
        let deadline = tokio::time::Instant::now() + bound;
        while tokio::time::Instant::now() < deadline {
            if let Ok(None) = self.matching(playbook).await {
                timeline.record("resolved");
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        timeline.record(format!("still active {} s after clearing", bound.as_secs()));
    }

    /// The rule's expression from a little before the start until now.
    async fn expression(&self, rule: &AlertRule, start: DateTime<Utc>) -> Expression {
        let end = Utc::now();
        let lead = chrono::Duration::seconds(((end - start).num_seconds() / 10).max(5));
        let span = (end - start + lead)
            .to_std()
            .unwrap_or(Duration::from_secs(60));
        let step = (span / 120).max(Duration::from_secs(1));
        let series = match self
            .prometheus
            .query_range(&rule.query, start - lead, end, step)
            .await
        {
            Ok(series) => series
                .iter()
                .filter_map(|series| SeriesSummary::of(series, start))
                .collect(),
            Err(err) => {
                eprintln!("could not read the expression's values: {err:#}");
                Vec::new()
            }
        };
        Expression {
            query: rule.query.clone(),
            for_seconds: rule.duration,
            series,
        }
    }
}

/// What a playbook's load ran: goose's users or the open model's arrivals.
enum LoadRun {
    Closed(Box<Run>),
    Open(OpenRun),
}

/// Polls the active alerts until the playbook's alert fires or `deadline` passes, noting
/// when it became pending (Prometheus' `activeAt`) and when it was first seen firing.
async fn watch_alert(
    prometheus: &Prometheus,
    playbook: &Playbook,
    deadline: tokio::time::Instant,
    timeline: &mut Timeline,
) -> Watched {
    let mut pending_seen = false;
    loop {
        let last_error = match prometheus.active_alerts().await {
            Ok(alerts) => {
                let found = alerts
                    .into_iter()
                    .find(|alert| alert.carries(&playbook.alert, &playbook.labels));
                if let Some(alert) = found {
                    if !pending_seen {
                        pending_seen = true;
                        let at = alert.active_at.unwrap_or_else(Utc::now);
                        let value = alert.value.as_deref().map_or_else(String::new, value_text);
                        timeline.record_at(at, format!("pending (value {value})"));
                    }
                    if alert.state == "firing" {
                        let now = Utc::now();
                        timeline.record_at(now, "firing");
                        return Watched {
                            firing_at: Some(now),
                            ..Watched::default()
                        };
                    }
                }
                None
            }
            Err(err) => Some(format!("{err:#}")),
        };
        if tokio::time::Instant::now() >= deadline {
            timeline.record("bound passed without the alert firing");
            return Watched {
                last_error,
                ..Watched::default()
            };
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Ends the running goose attack (the open model's arrivals stop on their channel). Goose clears its killswitch when an attack starts, so
/// one pulled while the tester still seeds would be lost: pull it until the attack ends.
async fn stop_load(finished: &AtomicBool) {
    while !finished.load(Ordering::Relaxed) {
        goose::trigger_killswitch("the alert fired or its bound passed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
