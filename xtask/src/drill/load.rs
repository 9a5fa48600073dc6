//! The drills' steady load and their audit, both by the load tester's own binary: an
//! open-model run through the gateway that records the orders its clients saw
//! acknowledged and its failed requests, stopped (SIGINT) once the fault is over, then
//! `loadtester audit` over those orders.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use rustix::process::{Pid, Signal, kill_process};
use serde::{Deserialize, Serialize};

use super::{Drill, drills_dir, root};
use crate::{stack, supervisor};

/// Browsing, carts, checkouts (with cancels) and logins, and an admin restocking and moving
/// orders on: no credential stuffer, whose failed logins would share the gateway's login
/// limit with the shoppers.
const MIX: &str = "browser=5,shopper=4,admin=1";
/// Where the tester serves its metrics: the stack's Prometheus scrapes it there, and the
/// drill reads its final counts from it.
const METRICS: &str = "127.0.0.1:9464";
/// Longer than any drill: the drill stops the load (SIGINT) once its fault is over.
const RUN_TIME: &str = "15m";
/// The tester drains its iterations for up to 30 s, then serves its metrics this long.
const LINGER: &str = "5s";
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the audit may wait for books and order views to settle.
const AUDIT_SETTLE_SECONDS: &str = "60";

fn tester() -> PathBuf {
    root().join("target/debug/loadtester")
}

/// A drill's files: the orders its clients saw acknowledged, its failed requests, and the
/// tester's output.
struct Files {
    orders: PathBuf,
    failures: PathBuf,
    output: PathBuf,
}

impl Files {
    fn of(drill: Drill) -> Self {
        let dir = drills_dir();
        Self {
            orders: dir.join(format!("{}.orders.jsonl", drill.name())),
            failures: dir.join(format!("{}.failures.jsonl", drill.name())),
            output: dir.join(format!("{}.load.txt", drill.name())),
        }
    }
}

/// The load tester, running.
pub struct Load {
    child: Child,
    files: Files,
    metrics: Arc<Mutex<Option<String>>>,
    polling: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
}

impl Drop for Load {
    /// A drill that ends early leaves no load behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.polling.store(false, Ordering::Relaxed);
    }
}

/// What the load saw.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    pub requests: u64,
    /// Responses by status (`error`: no response at all).
    pub responses_by_status: BTreeMap<String, u64>,
    /// Requests the tester judged failed: a wrong status, no response or a wrong body.
    pub failed: u64,
    /// Failed requests by the status they got (0: no response).
    pub failed_by_status: BTreeMap<u16, u64>,
    pub failures: Vec<Failure>,
    pub iterations: u64,
    pub tester_exit: String,
}

/// A failed request, as the tester's --trace-file lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub at: DateTime<Utc>,
    pub status: u16,
    pub scenario: String,
    pub step: String,
    pub detail: String,
    pub trace_id: String,
    /// The upstreams the gateway tried for it, in order (from its access log).
    #[serde(default)]
    pub gateway_attempts: Vec<String>,
    #[serde(skip_serializing, default)]
    kind: String,
}

impl Load {
    pub fn start(drill: Drill, rate: f64) -> Result<Self> {
        let files = Files::of(drill);
        for path in [&files.orders, &files.failures] {
            match fs::remove_file(path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error).with_context(|| format!("removing {}", path.display()));
                }
                _ => {}
            }
        }
        let output = File::create(&files.output)
            .with_context(|| format!("creating {}", files.output.display()))?;
        let child = Command::new(tester())
            .current_dir(root())
            .args(["run", "--host", stack::GATEWAY, "--mix", MIX])
            .args([
                "--arrival-rate",
                &format!("{rate}/s"),
                "--run-time",
                RUN_TIME,
            ])
            .arg("--orders-log")
            .arg(&files.orders)
            .arg("--trace-file")
            .arg(&files.failures)
            // Slow requests are not what a drill counts: only failed ones go to the file.
            .args(["--slow-ms", "600000", "--metrics-listen", METRICS])
            .args(["--linger", LINGER])
            .env("LOADTEST_ADMIN_PASSWORD", stack::ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            // Its own process group: a Ctrl-C meant for the drill does not cut the load short.
            .process_group(0)
            .spawn()
            .with_context(|| format!("could not run {}", tester().display()))?;
        let metrics = Arc::new(Mutex::new(None));
        let polling = Arc::new(AtomicBool::new(true));
        let poller = {
            let (metrics, polling) = (metrics.clone(), polling.clone());
            thread::spawn(move || poll_metrics(&metrics, &polling))
        };
        println!(
            "  load: {rate} journeys/s ({MIX}) through {}; output in {}",
            stack::GATEWAY,
            files.output.display()
        );
        Ok(Self {
            child,
            files,
            metrics,
            polling,
            poller: Some(poller),
        })
    }

    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The end of the tester's output, for errors.
    pub fn output_tail(&self) -> String {
        tail(&self.files.output)
    }

    /// Stops the arrivals, waits for the tester to finish, and reads its figures.
    pub fn finish(mut self) -> Result<Figures> {
        let _ = kill_process(Pid::from_child(&self.child), Signal::INT);
        let asked = Instant::now();
        let exit = loop {
            if let Some(exit) = self.child.try_wait()? {
                break exit;
            }
            if asked.elapsed() > FINISH_TIMEOUT {
                self.child.kill()?;
                bail!(
                    "the load tester did not finish within {} s of SIGINT: {}",
                    FINISH_TIMEOUT.as_secs(),
                    self.output_tail()
                );
            }
            thread::sleep(Duration::from_millis(200));
        };
        self.polling.store(false, Ordering::Relaxed);
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
        let metrics = self
            .metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(metrics) = metrics else {
            bail!(
                "the load tester's metrics never answered on {METRICS}: {}",
                tail(&self.files.output)
            );
        };
        let mut figures = figures(&metrics);
        figures.tester_exit = exit.to_string();
        figures.failures = failures(&self.files.failures)?;
        for failure in &figures.failures {
            *figures.failed_by_status.entry(failure.status).or_default() += 1;
        }
        Ok(figures)
    }
}

fn tail(path: &Path) -> String {
    supervisor::tail(path, 10)
}

/// Keeps the tester's latest metrics: the last read, in its linger after the run, holds
/// the final counts.
fn poll_metrics(latest: &Mutex<Option<String>>, polling: &AtomicBool) {
    let client = stack::http_client();
    let url = format!("http://{METRICS}/metrics");
    while polling.load(Ordering::Relaxed) {
        if let Ok(text) = client.get(&url).send().and_then(|r| r.text()) {
            *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        }
        thread::sleep(Duration::from_secs(1));
    }
}

/// Totals from the tester's Prometheus text.
fn figures(metrics: &str) -> Figures {
    let mut figures = Figures::default();
    for line in metrics.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = value.parse::<f64>().unwrap_or(0.0) as u64;
        let name = series.split('{').next().unwrap_or_default();
        match name {
            "loadtest_requests_total" => {
                figures.requests += value;
                let status = label(series, "status").unwrap_or("unknown").to_owned();
                *figures.responses_by_status.entry(status).or_default() += value;
            }
            "loadtest_failed_requests_total" => figures.failed += value,
            "loadtest_iterations_total" => figures.iterations += value,
            _ => {}
        }
    }
    figures
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let start = series.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &series[start..];
    Some(&rest[..rest.find('"')?])
}

/// The failed requests of the tester's trace file (which also lists slow ones).
fn failures(path: &Path) -> Result<Vec<Failure>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let mut failures = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let failure: Failure = serde_json::from_str(line)
            .with_context(|| format!("{}: unreadable line {line}", path.display()))?;
        if failure.kind == "failed" {
            failures.push(failure);
        }
    }
    Ok(failures)
}

/// `loadtester audit` over the drill's acknowledged orders.
#[derive(Debug, Serialize)]
pub struct Audit {
    pub passed: bool,
    /// Orders the clients saw acknowledged, as the audit counted them.
    pub acknowledged: Option<u64>,
    pub output: String,
}

pub fn audit(drill: Drill) -> Result<Audit> {
    let files = Files::of(drill);
    if !files.orders.exists() {
        // No acknowledged order at all: the audit would have nothing to find.
        fs::write(&files.orders, "")?;
    }
    let output = Command::new(tester())
        .current_dir(root())
        .args([
            "audit",
            "--host",
            stack::GATEWAY,
            "--settle",
            AUDIT_SETTLE_SECONDS,
        ])
        .arg("--orders-log")
        .arg(&files.orders)
        .env("LOADTEST_ADMIN_PASSWORD", stack::ADMIN_PASSWORD)
        .output()
        .with_context(|| format!("could not run {} audit", tester().display()))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let acknowledged = text
        .lines()
        .find_map(|line| line.strip_prefix("Orders audit: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok());
    Ok(Audit {
        passed: output.status.success(),
        acknowledged,
        output: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_testers_metrics_add_up_by_status() {
        let text = "\
# HELP loadtest_requests_total Requests.
loadtest_requests_total{scenario=\"shopper\",status=\"200\",step=\"browse\"} 40
loadtest_requests_total{scenario=\"browser\",status=\"200\",step=\"view\"} 2
loadtest_requests_total{scenario=\"shopper\",status=\"502\",step=\"check out\"} 3
loadtest_requests_total{scenario=\"shopper\",status=\"error\",step=\"check out\"} 1
loadtest_failed_requests_total{scenario=\"shopper\",step=\"check out\"} 4
loadtest_iterations_total{journey=\"shopper\"} 7
";
        let figures = figures(text);
        assert_eq!(figures.requests, 46);
        assert_eq!(figures.responses_by_status["200"], 42);
        assert_eq!(figures.responses_by_status["502"], 3);
        assert_eq!(figures.responses_by_status["error"], 1);
        assert_eq!((figures.failed, figures.iterations), (4, 7));
    }
}
