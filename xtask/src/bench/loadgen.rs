//! Load-generator efficiency: the project's goose load tester against wrk on the gateway's
//! static answer, each counted the same way: by nginx (stub_status), not by itself.

use std::fs::File;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::scenarios::STATIC_PATH;
use super::wrk::{self, Load};
use super::{Env, ports, procs, shop};

/// wrk's connections and goose's users: the same concurrency for both.
const CONCURRENCY: usize = 64;
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generator {
    pub name: String,
    pub concurrency: usize,
    /// The highest rate nginx served over half the run: the steady state, whatever the
    /// generator's start-up and ramp.
    pub per_s: f64,
    /// Requests nginx served during the generator's whole life.
    pub requests: u64,
    /// The generator's CPU time (user + system) over its whole life.
    pub cpu_s: f64,
}

impl Generator {
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.cpu_s * 1e6 / self.requests as f64
    }
}

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
    let goose = measure(env, "goose (loadtester)", goose(env, duration), duration)?;
    Ok(vec![wrk, goose])
}

/// The load tester with only the static journey, no think time, all users at once.
fn goose(env: &Env, duration: Duration) -> Command {
    let users = CONCURRENCY.to_string();
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
        "--users",
        &users,
        "--increase-rate",
        &users,
        "--run-time",
        &format!("{}s", duration.as_secs()),
        "--no-telnet",
        "--quiet",
    ]);
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
    let log_path = env.log(&format!(
        "generator-{}",
        name.split(' ').next().unwrap_or(name)
    ));
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
            procs::tail(&log_path, 15),
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
    fn cpu_per_request_is_in_microseconds() {
        let generator = Generator {
            name: "wrk".into(),
            concurrency: 64,
            per_s: 1000.0,
            requests: 2_000_000,
            cpu_s: 3.0,
        };
        assert_eq!(generator.cpu_us_per_request(), 1.5);
    }
}
