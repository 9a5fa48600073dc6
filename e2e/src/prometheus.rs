//! Prometheus and Alertmanager as the stack runs them: every service's exposition passes
//! promtool's lint, every scrape target is up, Alertmanager answers and receives, and the
//! wait for two scrapes of the journey's traffic (and a rule evaluation after them) that
//! the rule and dashboard checks need.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use shop_topology as topology;

use crate::harness::{E2e, SCRAPE_WAIT, truncate};
use crate::promql::unix_seconds;

/// The load tester serves metrics only while a load test runs.
const LOADTESTER_JOB: &str = "loadtester";

impl E2e {
    /// Each replica's exposition passes `promtool check metrics` (naming and format lint).
    pub fn promtool_metrics(&mut self) {
        for service in topology::ALL {
            for replica in self.stack.replicas(&service) {
                self.check_unit(
                    &format!("promtool check metrics: {}", replica.name),
                    |e2e| {
                        let body = e2e.replica_metrics(&service, &replica)?;
                        promtool_check_metrics(&body)?;
                        Ok(format!("{} bytes from {}", body.len(), replica.url))
                    },
                );
            }
        }
    }

    pub fn alertmanager(&self) -> Result<String> {
        let status: Value = self
            .client
            .get(format!("{}/api/v2/status", self.stack.alertmanager))
            .send()?
            .error_for_status()?
            .json()?;
        ensure!(
            status["config"]["original"]
                .as_str()
                .is_some_and(|config| config.contains("receivers")),
            "no configuration in /api/v2/status: {}",
            truncate(&status.to_string(), 200)
        );
        Ok(format!(
            "version {}, cluster {}",
            status["versionInfo"]["version"].as_str().unwrap_or("?"),
            status["cluster"]["status"].as_str().unwrap_or("?")
        ))
    }

    pub fn prometheus_api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let body: Value = self
            .client
            .get(format!("{}{path}", self.stack.prometheus))
            .query(query)
            .send()
            .with_context(|| format!("Prometheus {path}: no answer"))?
            .json()?;
        ensure!(body["status"] == "success", "Prometheus {path}: {body}");
        Ok(body["data"].clone())
    }

    pub fn query(&self, expr: &str) -> Result<Vec<Value>> {
        let data = self.prometheus_api("/api/v1/query", &[("query", expr)])?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Every job of the running configuration has targets, all up; the load tester's is
    /// down unless a load test runs, which is said rather than hidden.
    pub fn targets(&mut self) {
        self.check_unit("every Prometheus scrape target is up", |e2e| {
            let config = e2e.prometheus_api("/api/v1/status/config", &[])?;
            let jobs: BTreeSet<String> = config["yaml"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.trim().strip_prefix("- job_name:"))
                .map(|job| job.trim().trim_matches('"').to_owned())
                .collect();
            // A target is "unknown" until its first scrape, up to 15 s after Prometheus starts...
            let started = Instant::now();
            let data = loop {
                let data = e2e.prometheus_api("/api/v1/targets", &[("state", "active")])?;
                // ... and the cart service is down at a scrape during the outage check. Before
                // its first service discovery (up to 5 s after it starts) Prometheus has none.
                let targets = data["activeTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let pending = targets.is_empty()
                    || targets.iter().any(|target| {
                        target["health"] != "up" && target["labels"]["job"] != LOADTESTER_JOB
                    });
                if !pending || started.elapsed() > SCRAPE_WAIT {
                    break data;
                }
                thread::sleep(Duration::from_secs(1));
            };
            let mut by_job: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
            for target in data["activeTargets"].as_array().into_iter().flatten() {
                by_job
                    .entry(
                        target["labels"]["job"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                    .or_default()
                    .push((
                        target["scrapeUrl"].as_str().unwrap_or_default().to_owned(),
                        target["health"].as_str().unwrap_or_default().to_owned(),
                        target["lastError"].as_str().unwrap_or_default().to_owned(),
                    ));
            }
            let mut problems = Vec::new();
            let mut up = 0;
            for job in &jobs {
                let targets = by_job.get(job).map(Vec::as_slice).unwrap_or_default();
                if targets.is_empty() {
                    problems.push(format!("{job}: no target"));
                }
                for (url, health, error) in targets {
                    if health == "up" {
                        up += 1;
                    } else if job == LOADTESTER_JOB {
                        e2e.note(&format!(
                            "{job} target {url} is {health}: expected, the load tester serves \
                             metrics only while a load test runs; not a failure"
                        ));
                    } else {
                        problems.push(format!("{job} {url} is {health} ({error})"));
                    }
                }
            }
            // Each replica is a target of its service's job.
            for service in topology::ALL {
                let targets = by_job.get(service.name).map_or(0, Vec::len);
                if targets != usize::from(e2e.stack.replicas) {
                    problems.push(format!(
                        "{}: {targets} targets for {} replicas",
                        service.name, e2e.stack.replicas
                    ));
                }
            }
            if !jobs.contains(LOADTESTER_JOB) {
                e2e.note(&format!(
                    "the running configuration has no {LOADTESTER_JOB} job"
                ));
            }
            ensure!(problems.is_empty(), "{}", problems.join("; "));
            Ok(format!("{up} targets up in {} jobs", jobs.len()))
        });
    }

    /// Waits until every replica of every service has been scraped twice since the
    /// traffic, so that rate() over the new counters has two samples.
    pub fn wait_for_scrapes(&mut self) {
        let jobs = topology::ALL.map(|service| service.name);
        let selector = format!("timestamp(up{{job=~\"{}\"}})", jobs.join("|"));
        self.check_unit(
            "Prometheus scrapes every service twice after the traffic",
            |e2e| {
                let traffic_end = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
                let started = Instant::now();
                // By job and instance: each replica is a target of its service's job.
                let scraped = |e2e: &E2e| -> Result<BTreeMap<(String, String), f64>> {
                    Ok(e2e
                        .query(&selector)?
                        .iter()
                        .filter_map(|sample| {
                            let job = sample["metric"]["job"].as_str()?.to_owned();
                            let instance = sample["metric"]["instance"].as_str()?.to_owned();
                            let at = sample["value"][1].as_str()?.parse().ok()?;
                            Some(((job, instance), at))
                        })
                        .collect())
                };
                let replicas = usize::from(e2e.stack.replicas);
                let mut first: BTreeMap<(String, String), f64> = BTreeMap::new();
                loop {
                    let now = scraped(e2e)?;
                    for (job, at) in &now {
                        if *at > traffic_end {
                            first.entry(job.clone()).or_insert(*at);
                        }
                    }
                    let done = jobs.iter().all(|job| {
                        let twice = now
                            .iter()
                            .filter(|(key, at)| {
                                key.0 == *job && first.get(*key).is_some_and(|first| *at > first)
                            })
                            .count();
                        twice >= replicas
                    });
                    if done {
                        // Rules that read recorded series need one evaluation after the scrapes.
                        let scraped = now.values().copied().fold(0.0, f64::max);
                        e2e.wait_for_rule_evaluation(scraped)?;
                        return Ok(format!(
                            "and the rules evaluated, after {:.0} s",
                            started.elapsed().as_secs_f64()
                        ));
                    }
                    ensure!(
                        started.elapsed() < SCRAPE_WAIT,
                        "not every replica of every service ({replicas} each) was scraped twice \
                     within {} s: {now:?}",
                        SCRAPE_WAIT.as_secs()
                    );
                    thread::sleep(Duration::from_secs(1));
                }
            },
        );
    }

    /// Waits until every rule group was evaluated after `after` (Unix seconds).
    fn wait_for_rule_evaluation(&self, after: f64) -> Result<()> {
        let started = Instant::now();
        loop {
            let data = self.prometheus_api("/api/v1/rules", &[])?;
            let stale: Vec<&str> = data["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|group| {
                    group["lastEvaluation"]
                        .as_str()
                        .and_then(unix_seconds)
                        .is_none_or(|at| at <= after)
                })
                .filter_map(|group| group["name"].as_str())
                .collect();
            if stale.is_empty() {
                return Ok(());
            }
            ensure!(
                started.elapsed() < SCRAPE_WAIT,
                "rule groups not evaluated since the last scrape: {stale:?}"
            );
            thread::sleep(Duration::from_secs(1));
        }
    }

    pub fn metric_names_present(&self) -> Result<BTreeSet<String>> {
        let names = self.prometheus_api("/api/v1/label/__name__/values", &[])?;
        Ok(names
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }
}

/// `promtool check metrics` on an exposition: its complaints as the error.
fn promtool_check_metrics(body: &str) -> Result<()> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not run promtool (bash .ci/install-observability.sh)")?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(body.as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}
