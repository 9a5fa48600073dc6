//! The services' resident memory: idle, its peak under load, and over a soak (minutes of
//! steady load through the gateway), whose growth after a warm-up would be a leak.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::procs::{self, Proc};
use super::shop::{self, Store};
use super::wrk::{self, Load, Outcome};
use super::{Env, ports};

/// The soak's connections: a steady load, not the highest.
const SOAK_CONNECTIONS: usize = 32;
/// Share of the soak before the first sample: connection pools, caches and the allocator's
/// arenas fill up first.
const WARM_UP_SHARE: u32 = 5;
/// Growth below the larger of these is allocator noise, not a leak.
pub const NOISE_MIB: f64 = 2.0;
pub const NOISE_SHARE: f64 = 0.02;

/// Resident memory of each service, in KiB, in the order of the processes.
#[derive(Debug, Clone)]
pub struct Snapshot(Vec<(String, procs::Memory)>);

pub fn snapshot(services: &[Proc]) -> Result<Snapshot> {
    services
        .iter()
        .map(|proc| Ok((proc.name.clone(), procs::memory(proc.pid())?)))
        .collect::<Result<_>>()
        .map(Snapshot)
}

/// The soak's load and its memory samples, the first after the warm-up, the last just
/// before the load ends.
pub struct Soak {
    pub outcome: Outcome,
    pub samples: Vec<Snapshot>,
}

pub fn soak(env: &Env, store: Store, services: &[Proc], load: &Load) -> Result<Soak> {
    let plan = &env.plan;
    println!(
        "  soak: {:.0} s through nginx, memory sampled {} times",
        plan.soak.as_secs_f64(),
        plan.soak_samples
    );
    let run = wrk::Run {
        base: ports::url(ports::GATEWAY),
        load,
        connections: SOAK_CONNECTIONS,
        duration: plan.soak,
        rate: None,
    };
    let mut command = run.command(&env.wrk, &env.scripts())?;
    let started = Instant::now();
    let cpu_before = procs::children_cpu()?;
    let wrk = procs::Generating::spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped()))
        .context("could not run wrk")?;
    let warm_up = plan.soak / WARM_UP_SHARE;
    let interval = (plan.soak - warm_up) / plan.soak_samples;
    let mut samples = Vec::new();
    let mut next = warm_up;
    // The last sample must fall inside the load: stop sampling half an interval before its end.
    while next + interval / 2 < plan.soak {
        thread::sleep(next.saturating_sub(started.elapsed()));
        truncate(&shop::access_log(env))?;
        samples.push(snapshot(services)?);
        next += interval;
    }
    let output = wrk.wait_with_output()?;
    let cpu = procs::children_cpu()? - cpu_before;
    let log = env.log(&format!("{}-soak", store.name()));
    let outcome = run.outcome(&command, &output, cpu, &log)?;
    Ok(Soak { outcome, samples })
}

/// Empties a log nginx appends to (it opens its logs with O_APPEND, so writes go on at the
/// new end).
pub fn truncate(path: &Path) -> Result<()> {
    if path.exists() {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|file| file.set_len(0))
            .with_context(|| format!("truncating {}", path.display()))?;
    }
    Ok(())
}

/// One service's memory figures, in MiB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceMemory {
    pub service: String,
    pub idle_mib: f64,
    /// The highest resident size up to the soak (the kernel's high-water mark).
    pub peak_mib: f64,
    /// Every soak sample, the first after the warm-up.
    pub soak_mib: Vec<f64>,
}

impl ServiceMemory {
    pub fn combine(idle: &Snapshot, peak: &Snapshot, soak: &[Snapshot]) -> Vec<Self> {
        idle.0
            .iter()
            .zip(&peak.0)
            .enumerate()
            .map(|(index, ((service, idle), (_, peak)))| Self {
                service: service.clone(),
                idle_mib: mib(idle.rss_kib),
                peak_mib: mib(peak.peak_kib),
                soak_mib: soak.iter().map(|s| mib(s.0[index].1.rss_kib)).collect(),
            })
            .collect()
    }

    /// Resident size at the last soak sample minus the first.
    pub fn growth_mib(&self) -> f64 {
        match (self.soak_mib.first(), self.soak_mib.last()) {
            (Some(first), Some(last)) => last - first,
            _ => 0.0,
        }
    }

    /// Whether the growth stays within allocator noise.
    pub fn steady(&self) -> bool {
        let first = self.soak_mib.first().copied().unwrap_or_default();
        self.growth_mib() <= NOISE_MIB.max(first * NOISE_SHARE)
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(soak_mib: Vec<f64>) -> ServiceMemory {
        ServiceMemory {
            service: "backend".into(),
            idle_mib: 10.0,
            peak_mib: 30.0,
            soak_mib,
        }
    }

    #[test]
    fn growth_beyond_noise_is_not_steady() {
        assert!(memory(vec![200.0, 201.0, 203.9]).steady());
        assert!(!memory(vec![200.0, 202.0, 204.1]).steady());
        assert!(memory(vec![20.0, 21.9]).steady());
        assert!(!memory(vec![20.0, 22.1]).steady());
        assert!(memory(vec![50.0, 40.0]).steady());
        assert_eq!(memory(vec![]).growth_mib(), 0.0);
    }

    #[test]
    fn snapshots_combine_per_service() {
        let at = |rss_kib, peak_kib| procs::Memory { rss_kib, peak_kib };
        let snap = |values: &[(u64, u64)]| {
            Snapshot(
                ["a", "b"]
                    .iter()
                    .zip(values)
                    .map(|(name, (rss, peak))| ((*name).to_owned(), at(*rss, *peak)))
                    .collect(),
            )
        };
        let idle = snap(&[(1024, 1024), (2048, 2048)]);
        let peak = snap(&[(2048, 4096), (3072, 5120)]);
        let soak = [snap(&[(3072, 0), (4096, 0)]), snap(&[(4096, 0), (4096, 0)])];
        let combined = ServiceMemory::combine(&idle, &peak, &soak);
        assert_eq!(combined[0].idle_mib, 1.0);
        assert_eq!(combined[0].peak_mib, 4.0);
        assert_eq!(combined[0].soak_mib, vec![3.0, 4.0]);
        assert_eq!(combined[1].service, "b");
        assert_eq!(combined[1].growth_mib(), 0.0);
    }
}
