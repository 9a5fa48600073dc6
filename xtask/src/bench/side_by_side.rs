//! What the request telemetry costs, measured side by side: one backend per configuration
//! (telemetry off, the request metrics alone, everything but the export), all running at
//! once with the memory store, loaded with product by id in turn, round after round.
//!
//! The passes that restart the shop in each configuration are minutes apart, and on a
//! shared machine one 15-second run moves by ±25% from the next: far more than the 3% and
//! 10% judged. Rounds a few seconds apart see the same machine, so each round's ratio to
//! telemetry off, and their median, are what the targets are judged on.

use anyhow::Result;

use super::procs::{self, Proc};
use super::results::{SideBySide, SideBySideRuns};
use super::shop::{self, Telemetry};
use super::wrk::{self, Load};
use super::{Env, ports, seed};

/// The configurations compared; telemetry off first: the others are judged against it.
const CONFIGURATIONS: [(&str, Telemetry); 3] = [
    ("off", Telemetry::Off),
    ("metrics only", Telemetry::MetricsOnly),
    ("no export", Telemetry::On { export: false }),
];

/// Product by id's connections, as in its other runs.
const CONNECTIONS: usize = 64;

pub fn measure(env: &Env) -> Result<SideBySide> {
    println!("== memory store, the request telemetry side by side");
    let telemetry = CONFIGURATIONS.map(|(_, telemetry)| telemetry);
    let procs = shop::start_side_by_side(env, &telemetry)?;
    let backends = &procs[1..];
    let admin = seed::admin_token(&env.http)?;
    let loads = ports::SIDE_BY_SIDE
        .iter()
        .map(|&port| {
            let product = seed::create_product_at(&env.http, port, &admin, "side by side")?;
            Ok(Load::Get(format!("/api/products/{product}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut runs: Vec<SideBySideRuns> = CONFIGURATIONS
        .iter()
        .map(|(name, _)| SideBySideRuns::new(name))
        .collect();
    for round in 1..=env.plan.side_by_side_rounds {
        for (index, backend) in backends.iter().enumerate() {
            let name = format!("side-by-side-{}-round-{round}", backend.name);
            let (ok_per_s, cpu_us) = run(
                env,
                backend,
                ports::SIDE_BY_SIDE[index],
                &loads[index],
                &name,
            )?;
            runs[index].ok_per_s.push(ok_per_s);
            runs[index].backend_cpu_us.push(cpu_us);
        }
    }
    Ok(SideBySide {
        run_seconds: env.plan.side_by_side_run.as_secs_f64(),
        configurations: runs,
    })
}

/// One wrk run against `backend`: its rate of good answers and the backend's CPU time per
/// answer, in microseconds.
fn run(env: &Env, backend: &Proc, port: u16, load: &Load, name: &str) -> Result<(f64, f64)> {
    let before = procs::cpu_time(backend.pid())?;
    let outcome = wrk::Run {
        base: ports::url(port),
        load,
        connections: CONNECTIONS,
        duration: env.plan.side_by_side_run,
        rate: None,
    }
    .execute(&env.wrk, &env.scripts(), &env.log(name))?;
    let spent = procs::cpu_time(backend.pid())? - before;
    super::scenarios::check(&outcome, name, false)?;
    let answered = (outcome.ok_per_s * outcome.seconds).max(1.0);
    let cpu_us = spent.as_secs_f64() * 1e6 / answered;
    Ok((outcome.ok_per_s, cpu_us))
}
