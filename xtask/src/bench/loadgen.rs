//! Load-generator efficiency: the project's goose load tester against wrk on the gateway's
//! static answer, each counted the same way: by nginx (stub_status), not by itself. The
//! load tester runs twice: goose's closed model with wrk's concurrency, and the open model
//! at the plan's arrival rate, whose own count of dropped arrivals says whether it held it.

use std::fs::File;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::results::{Arrivals, Generator};
use super::scenarios::STATIC_PATH;
use super::wrk::{self, Load};
use super::{Env, ports, procs, shop};
use crate::supervisor;

/// wrk's connections and goose's users: the same concurrency for both.
const CONCURRENCY: usize = 64;
/// The open model's bound on iterations at once: the load tester's default.
const MAX_IN_FLIGHT: usize = 1000;
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// wrk, then goose, against `/static-ok` through the bench's gateway.
pub fn compare(env: &Env) -> Result<Vec<Generator>> {
    // Goose ramps its users up: give it a few seconds even in the smoke.
    let duration = env.plan.measure.max(Duration::from_secs(3));
    let load = Load::Get(STATIC_PATH.to_owned());
    let wrk_run = wrk::Run {
        base: ports::url(ports::GATEWAY),
        load: &load,
        connections: CONCURRENCY,
        duration,
        rate: None,
    };
    let wrk = measure(
        env,
        "wrk",
        wrk_run.command(&env.wrk, &env.scripts())?,
        duration,
    )?;
    let users = CONCURRENCY.to_string();
    let closed = goose(
        env,
        duration,
        &["--users", &users, "--increase-rate", &users],
    );
    let goose_closed = measure(env, "goose (loadtester)", closed, duration)?;
    let rate = format!("{}/s", env.plan.arrival_rate);
    let max_in_flight = MAX_IN_FLIGHT.to_string();
    let open = goose(
        env,
        duration,
        &["--arrival-rate", &rate, "--max-in-flight", &max_in_flight],
    );
    let mut goose_open = measure(env, "goose (loadtester), open model", open, duration)?;
    goose_open.concurrency = MAX_IN_FLIGHT;
    let log = std::fs::read_to_string(env.log(&log_name(&goose_open.name)))?;
    goose_open.arrivals = Some(
        open_model_figures(&log)
            .context("the load tester printed no open-model summary (\"Open model: ...\")")?,
    );
    Ok(vec![wrk, goose_closed, goose_open])
}

/// The load tester with only the static journey and no think time, and `model`'s flags:
/// goose's users all at once, or an arrival rate.
fn goose(env: &Env, duration: Duration, model: &[&str]) -> Command {
    let mut command = Command::new(env.bin.join("loadtester"));
    command.args([
        "run",
        "--host",
        &ports::url(ports::GATEWAY),
        "--mix",
        "static=1",
        "--think-time-ms",
        "0-0",
        "--metrics-listen",
        &format!("127.0.0.1:{}", ports::LOADTESTER_METRICS),
        "--run-time",
        &format!("{}s", duration.as_secs()),
        "--no-telnet",
        "--quiet",
    ]);
    command.args(model);
    // The caller's LOADTEST_* settings (a --direct, a trace file) are not the bench's.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOADTEST_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs a generator to its end, sampling nginx's request count meanwhile.
fn measure(env: &Env, name: &str, mut command: Command, duration: Duration) -> Result<Generator> {
    let log_path = env.log(&log_name(name));
    let log = File::create(&log_path)?;
    let before = shop::gateway_requests(env)?;
    let cpu_before = procs::children_cpu()?;
    let started = Instant::now();
    let mut child = procs::Generating::spawn(
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log),
    )
    .with_context(|| format!("could not run {name}"))?;
    // nginx counts each stub_status request too: subtract the probes made since `before`.
    let mut probes = 0;
    let mut samples = vec![(0.0, 0)];
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        thread::sleep(SAMPLE_EVERY);
        probes += 1;
        let served = shop::gateway_requests(env)? - before - probes;
        samples.push((started.elapsed().as_secs_f64(), served));
    };
    let cpu = procs::children_cpu()? - cpu_before;
    if !status.success() {
        bail!(
            "{name} failed ({status}):\n{}\n(log: {})",
            supervisor::tail(&log_path, 15),
            log_path.display()
        );
    }
    let requests = shop::gateway_requests(env)? - before - (probes + 1);
    let per_s = best_rate(&samples, duration.as_secs_f64() / 2.0)
        .context("the run was too short to measure a rate")?;
    println!(
        "  {name:<20} {per_s:>9.0} req/s  {:.2} s CPU for {requests} requests",
        cpu.as_secs_f64()
    );
    Ok(Generator {
        name: name.to_owned(),
        concurrency: CONCURRENCY,
        per_s,
        requests,
        cpu_s: cpu.as_secs_f64(),
        arrivals: None,
    })
}

/// `generator-wrk`, `generator-goose-loadtester-open-model`.
fn log_name(generator: &str) -> String {
    let words: Vec<String> = generator
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("generator-{}", words.join("-"))
}

/// The arrivals of the load tester's summary line: `Open model: target 20000.0
/// arrivals/s, achieved 19876.3/s (99.4%) over 10.0 s; 198763 iterations started, 12
/// dropped (...)`.
fn open_model_figures(log: &str) -> Option<Arrivals> {
    let line = log.lines().find(|line| line.starts_with("Open model: "))?;
    let number_after = |label: &str| -> Option<f64> {
        let rest = &line[line.find(label)? + label.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    Some(Arrivals {
        target_per_s: number_after("target ")?,
        achieved_per_s: number_after("achieved ")?,
        started: number_after(" s; ")? as u64,
        dropped: number_after("iterations started, ")? as u64,
    })
}

/// The highest rate between two samples (seconds, count) at least `window` seconds apart.
pub fn best_rate(samples: &[(f64, u64)], window: f64) -> Option<f64> {
    let mut best: Option<f64> = None;
    for (i, &(t0, c0)) in samples.iter().enumerate() {
        if let Some(&(t1, c1)) = samples[i..].iter().find(|(t, _)| t - t0 >= window) {
            let rate = c1.saturating_sub(c0) as f64 / (t1 - t0);
            best = Some(best.map_or(rate, |b| b.max(rate)));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_window_skips_the_ramp() {
        // Nothing for a second, then 1000 per second.
        let samples: Vec<(f64, u64)> = (0..=10)
            .map(|i| {
                let t = f64::from(i) * 0.5;
                (t, ((t - 1.0).max(0.0) * 1000.0) as u64)
            })
            .collect();
        let rate = best_rate(&samples, 2.0).unwrap();
        assert!((rate - 1000.0).abs() < 1e-9, "{rate}");
        assert_eq!(best_rate(&samples, 10.0), None);
    }

    #[test]
    fn the_open_models_summary_gives_its_arrivals() {
        let log = "Load tester metrics: http://127.0.0.1:18390/metrics\n\
                   Open model: target 20000.0 arrivals/s, achieved 19876.3/s (99.4%) over \
                   10.0 s; 198763 iterations started, 2008 dropped (1.00% of 200771 arrivals)\n";
        let arrivals = open_model_figures(log).unwrap();
        assert_eq!(
            arrivals,
            Arrivals {
                target_per_s: 20_000.0,
                achieved_per_s: 19_876.3,
                started: 198_763,
                dropped: 2008,
            }
        );
        assert!((arrivals.dropped_share() - 0.01).abs() < 1e-4);
        assert_eq!(open_model_figures("Open model: garbled"), None);
        assert_eq!(open_model_figures(""), None);
    }

    #[test]
    fn generators_log_under_their_own_names() {
        assert_eq!(log_name("wrk"), "generator-wrk");
        assert_eq!(
            log_name("goose (loadtester), open model"),
            "generator-goose-loadtester-open-model"
        );
    }

    #[test]
    fn cpu_per_request_is_in_microseconds() {
        let generator = Generator {
            name: "wrk".into(),
            concurrency: 64,
            per_s: 1000.0,
            requests: 2_000_000,
            cpu_s: 3.0,
            arrivals: None,
        };
        assert_eq!(generator.cpu_us_per_request(), 1.5);
    }
}
