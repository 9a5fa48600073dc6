//! The results as bench.md (tables for people and for docs/performance.md) and bench.json
//! (everything, for scripts), each with the targets and how far each figure is from them.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Plan;
use super::loadgen::Generator;
use super::machine::Machine;
use super::memory::{self, ServiceMemory};
use super::wrk::Outcome;

/// Through nginx, product by id reaches at least this share of the static ceiling.
pub const CEILING_SHARE: f64 = 0.30;
/// Telemetry costs at most this share of an endpoint's throughput.
pub const TELEMETRY_COST: f64 = 0.10;
/// p99 at half the highest throughput stays below this.
pub const HALF_LOAD_P99_MS: f64 = 10.0;
/// Goose reaches at least this share of wrk's rate.
pub const GOOSE_SHARE: f64 = 0.30;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub mode: &'static str,
    pub duration_s: f64,
    pub machine: Machine,
    pub plan: Plan,
    pub generators: Vec<Generator>,
    pub stores: Vec<StoreResult>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreResult {
    pub store: &'static str,
    pub traces_exported: bool,
    pub ceiling: Outcome,
    pub endpoints: Vec<EndpointResult>,
    pub soak_minutes: f64,
    pub soak: Outcome,
    pub memory: Vec<ServiceMemory>,
    /// Spans the exporters dropped (full queue) while telemetry was on.
    pub spans_dropped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointResult {
    pub endpoint: &'static str,
    pub service: &'static str,
    /// What wrk sends.
    pub requests: &'static str,
    pub throttled_at_gateway: bool,
    /// Telemetry on, straight to the service; `None` when no single service answers it.
    pub direct: Option<Outcome>,
    /// Telemetry on, through nginx.
    pub gateway: Outcome,
    /// Telemetry on, through nginx, offered half of `gateway`'s rate.
    pub half: Outcome,
    /// Telemetry on but not exported, straight to the service.
    pub telemetry_no_export: Option<Outcome>,
    /// Telemetry off, straight to the service.
    pub telemetry_off: Option<Outcome>,
    /// Telemetry off, through nginx, offered what `half` was offered.
    pub half_telemetry_off: Option<Outcome>,
}

impl EndpointResult {
    /// The share of throughput telemetry costs: 1 - on / off, directly.
    pub fn telemetry_cost(&self) -> Option<f64> {
        let (on, off) = (self.direct.as_ref()?, self.telemetry_off.as_ref()?);
        (off.ok_per_s > 0.0).then(|| 1.0 - on.ok_per_s / off.ok_per_s)
    }
}

/// One target, per store where it applies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub target: String,
    pub scope: String,
    pub measured: String,
    pub met: bool,
    /// How far from the target, when missed.
    pub gap: String,
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(flatten)]
    report: &'a Report,
    targets: Vec<Verdict>,
}

/// Writes bench.md and bench.json into `dir`.
pub fn write(dir: &Path, report: &Report) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let document = Document {
        report,
        targets: verdicts(report),
    };
    let json = serde_json::to_string_pretty(&document)?;
    fs::write(dir.join("bench.json"), json + "\n")?;
    fs::write(dir.join("bench.md"), markdown(report))?;
    Ok(())
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Results of {} ({} run, {:.0} min)\n",
        report.date,
        report.mode,
        report.duration_s / 60.0
    );
    machine_table(&mut out, &report.machine, &report.plan);
    for note in &report.notes {
        let _ = writeln!(out, "> {note}\n");
    }
    out.push_str(&targets_markdown(report));
    for store in &report.stores {
        store_tables(&mut out, store, &report.plan, report.machine.cores);
    }
    generator_table(&mut out, &report.generators);
    out
}

fn machine_table(out: &mut String, machine: &Machine, plan: &Plan) {
    let rows = [
        ("CPU", machine.cpu.clone()),
        ("cores", machine.cores.to_string()),
        ("memory", format!("{:.1} GiB", machine.memory_gib)),
        ("OS", machine.os.clone()),
        ("kernel", machine.kernel.clone()),
        ("rustc", machine.rustc.clone()),
        ("nginx", machine.nginx.clone()),
        ("wrk", machine.wrk.clone()),
        ("build profile", machine.profile.clone()),
        (
            "load average before the bench (1 min)",
            format!("{:.2}", machine.load_before),
        ),
        (
            "durations",
            format!(
                "{:.0} s per measurement, soak {:.0} s",
                plan.measure.as_secs_f64(),
                plan.soak.as_secs_f64()
            ),
        ),
    ];
    out.push_str("| machine | |\n| --- | --- |\n");
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    out.push('\n');
}

/// The targets alone, also printed at the end of a run.
pub fn targets_markdown(report: &Report) -> String {
    let mut out = String::from(
        "### Targets\n\n| target | scope | measured | verdict |\n| --- | --- | --- | --- |\n",
    );
    for verdict in verdicts(report) {
        let outcome = if verdict.met {
            "met".to_owned()
        } else {
            format!("**missed**: {}", verdict.gap)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {outcome} |",
            verdict.target, verdict.scope, verdict.measured
        );
    }
    out.push('\n');
    out
}

fn store_tables(out: &mut String, store: &StoreResult, plan: &Plan, cores: usize) {
    let _ = writeln!(
        out,
        "### {} store: throughput and latency\n\nTelemetry on: every request counted and traced, \
         {}. Rates count answers below 400 per second; p50 / p99 in milliseconds; \
         {:.0} s per row.\n",
        store.store,
        if store.traces_exported {
            "every trace exported to Jaeger"
        } else {
            "no trace exported (no Jaeger)"
        },
        plan.measure.as_secs_f64()
    );
    out.push_str(
        "| endpoint | service | conns | direct req/s | p50 / p99 | ÷ ceiling | nginx req/s | \
         p50 / p99 | ÷ ceiling |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let ceiling = store.ceiling.ok_per_s;
    let _ = writeln!(
        out,
        "| static nginx (ceiling) | nginx | {} | | | | {:.0} | {} | 100% |",
        store.ceiling.connections,
        ceiling,
        latencies(&store.ceiling)
    );
    for e in &store.endpoints {
        let throttled = if e.throttled_at_gateway { " ¹" } else { "" };
        let direct = e.direct.as_ref().map_or_else(
            || "— | — | —".to_owned(),
            |direct| {
                format!(
                    "{:.0} | {} | {}",
                    direct.ok_per_s,
                    latencies(direct),
                    share(direct.ok_per_s, ceiling)
                )
            },
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {direct} | {:.0}{throttled} | {} | {} |",
            e.endpoint,
            e.service,
            e.gateway.connections,
            e.gateway.ok_per_s,
            latencies(&e.gateway),
            share(e.gateway.ok_per_s, ceiling)
        );
    }
    if store.endpoints.iter().any(|e| e.throttled_at_gateway) {
        out.push_str(
            "\n¹ The gateway limits logins to 10 per second per client address (bursts of 20) \
             and answers the rest 429, which this rate leaves out.\n",
        );
    }
    cpu_table(out, store, cores);
    half_load_table(out, store);
    telemetry_table(out, store);
    memory_table(out, store);
}

/// Where the CPU goes, per request through nginx: with every process on the same cores,
/// the sum bounds the rate.
fn cpu_table(out: &mut String, store: &StoreResult, cores: usize) {
    let _ = writeln!(
        out,
        "\n#### {} store: CPU per request through nginx (µs)\n\n\
         | endpoint | nginx | services | Jaeger | wrk | total | {cores} cores ÷ total |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        store.store
    );
    let rows = std::iter::once(("static nginx (ceiling)", &store.ceiling, false)).chain(
        store
            .endpoints
            .iter()
            .map(|e| (e.endpoint, &e.gateway, e.throttled_at_gateway)),
    );
    for (name, outcome, throttled) in rows {
        let name = if throttled {
            format!("{name} ¹")
        } else {
            name.to_owned()
        };
        let nginx = cpu_us(outcome, |process| process == "nginx");
        let services = cpu_us(outcome, is_service);
        let jaeger = cpu_us(outcome, |process| process == "jaeger");
        let wrk = wrk_cpu_us(outcome);
        let total = nginx + services + jaeger + wrk;
        let bound = if total > 0.0 {
            format!("{:.0} req/s", cores as f64 * 1e6 / total)
        } else {
            "—".to_owned()
        };
        let _ = writeln!(
            out,
            "| {name} | {nginx:.0} | {services:.0} | {jaeger:.0} | {wrk:.0} | {total:.0} | {bound} |"
        );
    }
}

fn is_service(process: &str) -> bool {
    process != "nginx" && process != "jaeger"
}

/// CPU time per response of the processes `counted`, in microseconds.
fn cpu_us(outcome: &Outcome, counted: impl Fn(&str) -> bool) -> f64 {
    if outcome.requests == 0 {
        return 0.0;
    }
    let seconds: f64 = outcome
        .process_cpu_s
        .iter()
        .filter(|(process, _)| counted(process))
        .map(|(_, seconds)| seconds)
        .sum();
    seconds * 1e6 / outcome.requests as f64
}

fn wrk_cpu_us(outcome: &Outcome) -> f64 {
    if outcome.requests == 0 {
        return 0.0;
    }
    outcome.cpu_s * 1e6 / outcome.requests as f64
}

fn half_load_table(out: &mut String, store: &StoreResult) {
    let _ = writeln!(
        out,
        "\n#### {} store: latency at half the highest throughput, through nginx\n\n\
         Telemetry on; the last column: telemetry off, offered the same rate.\n\n\
         | endpoint | offered req/s | served req/s | p50 ms | p99 ms | p99 < {HALF_LOAD_P99_MS} ms | \
         p99 ms, telemetry off |\n| --- | ---: | ---: | ---: | ---: | --- | ---: |",
        store.store
    );
    for e in &store.endpoints {
        let off = e
            .half_telemetry_off
            .as_ref()
            .map_or_else(|| "—".to_owned(), |off| format!("{:.2}", off.p99_ms));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {off} |",
            e.endpoint,
            e.gateway.ok_per_s / 2.0,
            e.half.ok_per_s,
            e.half.p50_ms,
            e.half.p99_ms,
            yes_no(e.half.p99_ms < HALF_LOAD_P99_MS)
        );
    }
}

fn telemetry_table(out: &mut String, store: &StoreResult) {
    let _ = writeln!(
        out,
        "\n#### {} store: telemetry cost, directly\n\n\
         Cost: 1 − on ÷ off. \"No export\": spans made, metrics counted, nothing sent. The \
         exporters dropped {} spans (queue full) while telemetry was on.\n\n\
         | endpoint | off req/s | no export req/s | on req/s | cost | cost ≤ {:.0}% | \
         services µs/req: off | no export | on | Jaeger µs/req |\n\
         | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
        store.store,
        store.spans_dropped,
        TELEMETRY_COST * 100.0
    );
    for e in &store.endpoints {
        let (Some(on), Some(off)) = (&e.direct, &e.telemetry_off) else {
            continue;
        };
        let no_export = e.telemetry_no_export.as_ref();
        let cost = e.telemetry_cost();
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.0} | {} | {} | {:.0} | {} | {:.0} | {:.0} |",
            e.endpoint,
            off.ok_per_s,
            no_export.map_or_else(|| "—".to_owned(), |o| format!("{:.0}", o.ok_per_s)),
            on.ok_per_s,
            cost.map_or_else(|| "—".to_owned(), percent),
            cost.map_or("—", |cost| yes_no(cost <= TELEMETRY_COST)),
            cpu_us(off, is_service),
            no_export.map_or_else(
                || "—".to_owned(),
                |o| format!("{:.0}", cpu_us(o, is_service))
            ),
            cpu_us(on, is_service),
            cpu_us(on, |process| process == "jaeger")
        );
    }
}

fn memory_table(out: &mut String, store: &StoreResult) {
    let _ = writeln!(
        out,
        "\n#### {} store: resident memory (MiB)\n\nSoak: {:.1} min of reads through nginx at \
         {:.0} req/s, {} errors; samples after a warm-up of a fifth of it.\n\n\
         | service | idle | peak under load | soak first | soak last | growth | steady |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        store.store, store.soak_minutes, store.soak.ok_per_s, store.soak.errors
    );
    for m in &store.memory {
        let first = m.soak_mib.first().copied().unwrap_or_default();
        let last = m.soak_mib.last().copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {first:.1} | {last:.1} | {:+.1} | {} |",
            m.service,
            m.idle_mib,
            m.peak_mib,
            m.growth_mib(),
            yes_no(m.steady())
        );
    }
    out.push('\n');
}

fn generator_table(out: &mut String, generators: &[Generator]) {
    let Some(wrk) = generators.first() else {
        return;
    };
    out.push_str(
        "### Load generators on the static endpoint\n\nCounted by nginx; the rate is the \
         highest over half the run.\n\n| generator | users / connections | req/s | CPU s | \
         CPU µs / request | ÷ wrk |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for g in generators {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.1} | {:.1} | {} |",
            g.name,
            g.concurrency,
            g.per_s,
            g.cpu_s,
            g.cpu_us_per_request(),
            share(g.per_s, wrk.per_s)
        );
    }
    out.push('\n');
}

fn latencies(outcome: &Outcome) -> String {
    format!("{:.2} / {:.2}", outcome.p50_ms, outcome.p99_ms)
}

fn share(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        percent(part / whole)
    } else {
        "—".to_owned()
    }
}

fn percent(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "**no**" }
}

/// Every target, judged per store, and goose once.
pub fn verdicts(report: &Report) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for store in &report.stores {
        verdicts.extend(ceiling_verdict(store));
        verdicts.push(telemetry_verdict(store));
        verdicts.push(latency_verdict(store));
        verdicts.push(memory_verdict(store));
    }
    verdicts.extend(goose_verdict(&report.generators));
    verdicts
}

fn ceiling_verdict(store: &StoreResult) -> Option<Verdict> {
    let product = store
        .endpoints
        .iter()
        .find(|e| e.endpoint == "product by id")?;
    let ratio = product.gateway.ok_per_s / store.ceiling.ok_per_s;
    Some(Verdict {
        target: format!(
            "product by id through nginx ≥ {} of the static ceiling",
            percent(CEILING_SHARE)
        ),
        scope: format!("{} store", store.store),
        measured: percent(ratio),
        met: ratio >= CEILING_SHARE,
        gap: format!(
            "{:.0} points short ({:.1}× the throughput needed)",
            (CEILING_SHARE - ratio) * 100.0,
            CEILING_SHARE / ratio
        ),
    })
}

fn telemetry_verdict(store: &StoreResult) -> Verdict {
    let costs: Vec<(&str, f64)> = store
        .endpoints
        .iter()
        .filter_map(|e| Some((e.endpoint, e.telemetry_cost()?)))
        .collect();
    let target = format!(
        "telemetry costs ≤ {} of throughput",
        percent(TELEMETRY_COST)
    );
    let scope = format!("{} store", store.store);
    let Some(worst) = costs.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return Verdict {
            target,
            scope,
            measured: "not measured".to_owned(),
            met: false,
            gap: "no figures with telemetry off".to_owned(),
        };
    };
    let missed: Vec<String> = costs
        .iter()
        .filter(|(_, cost)| *cost > TELEMETRY_COST)
        .map(|(name, cost)| format!("{name} {}", percent(*cost)))
        .collect();
    Verdict {
        target,
        scope,
        measured: format!("at most {} ({})", percent(worst.1.max(0.0)), worst.0),
        met: missed.is_empty(),
        gap: format!("{} (target {})", missed.join(", "), percent(TELEMETRY_COST)),
    }
}

fn latency_verdict(store: &StoreResult) -> Verdict {
    let worst = store
        .endpoints
        .iter()
        .max_by(|a, b| a.half.p99_ms.total_cmp(&b.half.p99_ms));
    let missed: Vec<String> = store
        .endpoints
        .iter()
        .filter(|e| e.half.p99_ms >= HALF_LOAD_P99_MS)
        .map(|e| format!("{} {:.1} ms", e.endpoint, e.half.p99_ms))
        .collect();
    Verdict {
        target: format!("p99 < {HALF_LOAD_P99_MS} ms at half the highest throughput"),
        scope: format!("{} store, through nginx", store.store),
        measured: worst.map_or_else(String::new, |e| {
            format!("at most {:.1} ms ({})", e.half.p99_ms, e.endpoint)
        }),
        met: missed.is_empty(),
        gap: missed.join(", "),
    }
}

fn memory_verdict(store: &StoreResult) -> Verdict {
    let worst = store
        .memory
        .iter()
        .max_by(|a, b| a.growth_mib().total_cmp(&b.growth_mib()));
    let missed: Vec<String> = store
        .memory
        .iter()
        .filter(|m| !m.steady())
        .map(|m| format!("{} {:+.1} MiB", m.service, m.growth_mib()))
        .collect();
    Verdict {
        target: "no memory growth over the soak".to_owned(),
        scope: format!("{} store, {:.1} min", store.store, store.soak_minutes),
        measured: worst.map_or_else(String::new, |m| {
            format!("at most {:+.1} MiB ({})", m.growth_mib(), m.service)
        }),
        met: missed.is_empty(),
        gap: format!(
            "{} (noise: {} MiB or {})",
            missed.join(", "),
            memory::NOISE_MIB,
            percent(memory::NOISE_SHARE)
        ),
    }
}

fn goose_verdict(generators: &[Generator]) -> Option<Verdict> {
    let [wrk, goose] = generators else {
        return None;
    };
    let ratio = goose.per_s / wrk.per_s;
    Some(Verdict {
        target: format!("goose ≥ {} of wrk's rate", percent(GOOSE_SHARE)),
        scope: "static nginx".to_owned(),
        measured: format!(
            "{} ({:.0} against {:.0} req/s)",
            percent(ratio),
            goose.per_s,
            wrk.per_s
        ),
        met: ratio >= GOOSE_SHARE,
        gap: format!(
            "{:.0} points short ({:.1}× the rate needed)",
            (GOOSE_SHARE - ratio) * 100.0,
            GOOSE_SHARE / ratio
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn outcome(ok_per_s: f64, p99_ms: f64) -> Outcome {
        Outcome {
            connections: 64,
            seconds: 15.0,
            requests: (ok_per_s * 15.0) as u64,
            errors: 0,
            failed_responses: 0,
            ok_per_s,
            p50_ms: p99_ms / 4.0,
            p99_ms,
            cpu_s: ok_per_s * 15.0 * 10e-6,
            process_cpu_s: [
                ("nginx", ok_per_s * 15.0 * 20e-6),
                ("backend", ok_per_s * 15.0 * 50e-6),
                ("jaeger", ok_per_s * 15.0 * 30e-6),
            ]
            .into_iter()
            .map(|(process, seconds)| (process.to_owned(), seconds))
            .collect(),
        }
    }

    fn endpoint(
        name: &'static str,
        gateway: f64,
        half_p99: f64,
        on: f64,
        off: f64,
    ) -> EndpointResult {
        EndpointResult {
            endpoint: name,
            service: "backend",
            requests: "GET /api/products/{id}",
            throttled_at_gateway: false,
            direct: Some(outcome(on, 3.0)),
            gateway: outcome(gateway, 4.0),
            half: outcome(gateway / 2.0, half_p99),
            telemetry_no_export: Some(outcome((on + off) / 2.0, 2.0)),
            telemetry_off: Some(outcome(off, 2.0)),
            half_telemetry_off: Some(outcome(gateway / 2.0, half_p99 / 2.0)),
        }
    }

    fn report(product_rps: f64, goose_rps: f64, last_soak_mib: f64) -> Report {
        Report {
            date: "2025-11-24T12:00:00Z".into(),
            mode: "full",
            duration_s: 1500.0,
            machine: Machine {
                cpu: "Test CPU".into(),
                cores: 2,
                memory_gib: 23.4,
                os: "Debian".into(),
                kernel: "6.1".into(),
                rustc: "rustc 1.91.0".into(),
                nginx: "nginx/1.22.1".into(),
                wrk: "wrk debian/4.1.0".into(),
                profile: "release".into(),
                load_before: 0.5,
            },
            plan: Plan {
                profile: "release",
                measure: Duration::from_secs(15),
                soak: Duration::from_secs(300),
                soak_samples: 20,
                users: 64,
                products: 100,
                cart_products: 20,
            },
            generators: vec![
                Generator {
                    name: "wrk".into(),
                    concurrency: 64,
                    per_s: 40_000.0,
                    requests: 600_000,
                    cpu_s: 6.0,
                },
                Generator {
                    name: "goose (loadtester)".into(),
                    concurrency: 64,
                    per_s: goose_rps,
                    requests: 150_000,
                    cpu_s: 15.0,
                },
            ],
            stores: vec![StoreResult {
                store: "memory",
                traces_exported: true,
                ceiling: outcome(10_000.0, 2.0),
                endpoints: vec![
                    endpoint("product by id", product_rps, 4.0, 4_600.0, 5_000.0),
                    endpoint("checkout cycle", 500.0, 12.5, 430.0, 500.0),
                    EndpointResult {
                        direct: None,
                        telemetry_no_export: None,
                        telemetry_off: None,
                        half_telemetry_off: None,
                        ..endpoint("public checkout", 400.0, 9.0, 0.0, 0.0)
                    },
                ],
                soak_minutes: 5.0,
                soak: outcome(3_000.0, 9.0),
                memory: vec![ServiceMemory {
                    service: "backend".into(),
                    idle_mib: 8.0,
                    peak_mib: 30.0,
                    soak_mib: vec![20.0, 20.5, last_soak_mib],
                }],
                spans_dropped: 0,
            }],
            notes: vec!["A note.".into()],
        }
    }

    fn verdict<'a>(verdicts: &'a [Verdict], target: &str) -> &'a Verdict {
        verdicts
            .iter()
            .find(|v| v.target.starts_with(target))
            .unwrap_or_else(|| panic!("no verdict on {target}: {verdicts:?}"))
    }

    #[test]
    fn targets_are_judged_with_their_gap() {
        let verdicts = verdicts(&report(2_000.0, 8_000.0, 25.0));
        let ceiling = verdict(&verdicts, "product by id");
        assert_eq!((ceiling.measured.as_str(), ceiling.met), ("20%", false));
        assert_eq!(ceiling.gap, "10 points short (1.5× the throughput needed)");
        let telemetry = verdict(&verdicts, "telemetry");
        assert!(!telemetry.met);
        assert_eq!(telemetry.gap, "checkout cycle 14% (target 10%)");
        assert_eq!(telemetry.measured, "at most 14% (checkout cycle)");
        let latency = verdict(&verdicts, "p99");
        assert!(!latency.met);
        assert_eq!(latency.gap, "checkout cycle 12.5 ms");
        let memory = verdict(&verdicts, "no memory growth");
        assert!(!memory.met);
        assert!(memory.gap.starts_with("backend +5.0 MiB"), "{}", memory.gap);
        let goose = verdict(&verdicts, "goose");
        assert_eq!(goose.measured, "20% (8000 against 40000 req/s)");
        assert!(!goose.met);
    }

    #[test]
    fn figures_on_target_are_met() {
        let verdicts = verdicts(&report(3_000.0, 12_000.0, 21.0));
        for target in ["product by id", "no memory growth", "goose"] {
            assert!(verdict(&verdicts, target).met, "{target}");
        }
    }

    #[test]
    fn a_telemetry_cost_not_measured_is_not_met() {
        let mut report = report(3_000.0, 12_000.0, 21.0);
        for endpoint in &mut report.stores[0].endpoints {
            endpoint.telemetry_off = None;
        }
        let verdicts = verdicts(&report);
        let telemetry = verdict(&verdicts, "telemetry");
        assert_eq!(
            (telemetry.measured.as_str(), telemetry.met),
            ("not measured", false)
        );
        assert!(!markdown(&report).contains("| product by id | 5000 |"));
    }

    #[test]
    fn the_markdown_has_every_table() {
        let text = markdown(&report(2_000.0, 8_000.0, 25.0));
        for expected in [
            "## Results of 2025-11-24T12:00:00Z (full run, 25 min)",
            "| CPU | Test CPU |",
            "| load average before the bench (1 min) | 0.50 |",
            "> A note.",
            "| static nginx (ceiling) | nginx | 64 | | | | 10000 | 0.50 / 2.00 | 100% |",
            "| product by id | backend | 64 | 4600 | 0.75 / 3.00 | 46% | 2000 | 1.00 / 4.00 | 20% |",
            "| checkout cycle | 250 | 250 | 3.12 | 12.50 | **no** | 6.25 |",
            "| public checkout | 200 | 200 | 2.25 | 9.00 | yes | — |",
            "| product by id | 5000 | 4800 | 4600 | 8% | yes | 50 | 50 | 50 | 30 |",
            "| product by id | 20 | 50 | 30 | 10 | 110 | 18182 req/s |",
            "| backend | 8.0 | 30.0 | 20.0 | 25.0 | +5.0 | **no** |",
            "| goose (loadtester) | 64 | 8000 | 15.0 | 100.0 | 20% |",
            "| public checkout | backend | 64 | — | — | — | 400 | 1.00 / 4.00 | 4% |",
            "| product by id through nginx ≥ 30% of the static ceiling | memory store | 20% | **missed**: 10 points short",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn the_json_has_the_figures_and_the_verdicts() {
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        write(&dir, &report(2_000.0, 8_000.0, 25.0)).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("bench.json")).unwrap()).unwrap();
        assert_eq!(json["stores"][0]["ceiling"]["ok_per_s"], 10_000.0);
        assert_eq!(json["plan"]["measure"], 15.0);
        assert_eq!(json["targets"].as_array().unwrap().len(), 5);
        assert!(
            fs::read_to_string(dir.join("bench.md"))
                .unwrap()
                .contains("### Targets")
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
