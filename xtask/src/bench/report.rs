//! The results as bench.md (tables for people and for docs/performance.md) and bench.json
//! (everything, for scripts), each with the targets and how far each figure is from them.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Plan;
use super::machine::Machine;
use super::results::{Generator, PRODUCT_BY_ID, Report, StoreResult, median};
use super::targets::{
    HALF_LOAD_P99_MS, METRICS_COST, PEER_RATIO, TELEMETRY_COST, Verdict, percent, verdicts,
};
use super::wrk::Outcome;

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
    side_by_side_table(out, store);
    peer_table(out, store);
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

/// The request telemetry's configurations side by side: each round, then the medians.
fn side_by_side_table(out: &mut String, store: &StoreResult) {
    let Some(side_by_side) = &store.side_by_side else {
        return;
    };
    let _ = writeln!(
        out,
        "\n#### {} store: the request telemetry side by side\n\n\
         {PRODUCT_BY_ID} straight to one backend per configuration, all running at once, \
         loaded in turn for {:.0} s each, round after round. Off: `REQUEST_TELEMETRY=false`; \
         metrics only: `REQUEST_TRACING=false`; no export: the request span, metrics and \
         logs, every trace sampled, no exporter. The cost is the median over the rounds of \
         1 − rate ÷ off's rate in the same round.\n\n\
         | configuration | req/s per round | median req/s | backend µs/req (median) | cost | target |\n\
         | --- | --- | ---: | ---: | ---: | --- |",
        store.store, side_by_side.run_seconds
    );
    let thresholds = [
        ("metrics only", METRICS_COST),
        ("no export", TELEMETRY_COST),
    ];
    for runs in &side_by_side.configurations {
        let rounds: Vec<String> = runs
            .ok_per_s
            .iter()
            .map(|rate| format!("{rate:.0}"))
            .collect();
        let cost = side_by_side.cost(runs.name);
        let threshold = thresholds
            .iter()
            .find(|(name, _)| *name == runs.name)
            .map(|(_, threshold)| *threshold);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            runs.name,
            rounds.join(" · "),
            median(&runs.ok_per_s).map_or_else(|| "—".to_owned(), |rate| format!("{rate:.0}")),
            median(&runs.backend_cpu_us).map_or_else(|| "—".to_owned(), |us| format!("{us:.1}")),
            threshold
                .and(cost)
                .map_or_else(|| "—".to_owned(), |cost| percent(cost.max(0.0))),
            match (threshold, cost) {
                (Some(threshold), Some(cost)) => format!(
                    "≤ {}: {}",
                    percent(threshold),
                    if cost <= threshold {
                        "met"
                    } else {
                        "**missed**"
                    }
                ),
                _ => "—".to_owned(),
            },
        );
    }
}

/// The seed's stack against the Rust backend, product by id directly, where the peer ran.
fn peer_table(out: &mut String, store: &StoreResult) {
    let (Some(peer), Some(backend)) = (
        &store.peer,
        store
            .endpoint(PRODUCT_BY_ID)
            .and_then(|e| e.direct.as_ref()),
    ) else {
        return;
    };
    let _ = writeln!(
        out,
        "\n#### {} store: the seed's stack as a peer, {PRODUCT_BY_ID} directly\n\n\
         The peer: {}; {} uvicorn workers with uvloop and httptools, no access log. The Rust \
         backend: telemetry on. Same wrk settings, same run.\n\n\
         | server | conns | req/s | p50 / p99 | CPU µs/req | Rust ÷ peer | ≥ {PEER_RATIO}× |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        store.store,
        peer.stack.join(", "),
        peer.workers
    );
    let ratio = store.peer_ratio();
    let _ = writeln!(
        out,
        "| Rust backend | {} | {:.0} | {} | {:.0} | {} | {} |",
        backend.connections,
        backend.ok_per_s,
        latencies(backend),
        cpu_us(backend, |process| process == "backend"),
        ratio.map_or_else(|| "—".to_owned(), |ratio| format!("{ratio:.1}×")),
        ratio.map_or("**no**", |ratio| yes_no(ratio >= PEER_RATIO))
    );
    let _ = writeln!(
        out,
        "| FastAPI peer | {} | {:.0} | {} | {:.0} | | |",
        peer.outcome.connections,
        peer.outcome.ok_per_s,
        latencies(&peer.outcome),
        cpu_us(&peer.outcome, |process| process == "peer")
    );
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
         highest over half the run. The open model's concurrency is its bound on iterations \
         at once (`--max-in-flight`); its arrivals are the load tester's own count.\n\n\
         | generator | concurrency | arrivals/s asked | started/s | dropped | req/s | CPU s | \
         CPU µs / request | ÷ wrk |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for g in generators {
        // An open model's rate is the one it was asked for, not a share of wrk's.
        let (asked, started, dropped, of_wrk) = match &g.arrivals {
            Some(a) => (
                format!("{:.0}", a.target_per_s),
                format!("{:.0}", a.achieved_per_s),
                format!("{:.2}%", a.dropped_share() * 100.0),
                "—".to_owned(),
            ),
            None => (
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                share(g.per_s, wrk.per_s),
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {asked} | {started} | {dropped} | {:.0} | {:.1} | {:.1} | {of_wrk} |",
            g.name,
            g.concurrency,
            g.per_s,
            g.cpu_s,
            g.cpu_us_per_request(),
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

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "**no**" }
}

#[cfg(test)]
mod tests {
    use super::super::results::fixtures::report;
    use super::*;

    #[test]
    fn a_telemetry_cost_not_measured_is_not_met() {
        let mut report = report(3_000.0, 12_000.0, 21.0);
        for endpoint in &mut report.stores[0].endpoints {
            endpoint.telemetry_off = None;
        }
        let verdicts = verdicts(&report);
        let telemetry = verdicts
            .iter()
            .find(|v| v.target.starts_with("telemetry"))
            .expect("a telemetry verdict");
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
            "#### memory store: the request telemetry side by side",
            "| off | 5000 · 4000 · 6000 | 5000 | 20.0 | — | — |",
            "| metrics only | 4900 · 3920 · 5880 | 4900 | 20.4 | 2% | ≤ 3%: met |",
            "| no export | 4600 · 3500 · 5500 | 4600 | 21.7 | 8% | ≤ 10%: met |",
            "| product by id | 20 | 50 | 30 | 10 | 110 | 18182 req/s |",
            "| backend | 8.0 | 30.0 | 20.0 | 25.0 | +5.0 | **no** |",
            "| goose (loadtester) | 64 | — | — | — | 8000 | 15.0 | 100.0 | 20% |",
            "| goose (loadtester), open model | 1000 | 20000 | 19980 | 0.10% | 19950 | 20.0 | 66.7 | — |",
            "| public checkout | backend | 64 | — | — | — | 400 | 1.00 / 4.00 | 4% |",
            "| product by id through nginx ≥ 30% of the static ceiling | memory store | 20% | **missed**: 10 points short",
            "The peer: fastapi 0.165.0, uvicorn 0.55.0; 2 uvicorn workers",
            "| Rust backend | 64 | 4600 | 0.75 / 3.00 | 50 | 4.0× | **no** |",
            "| FastAPI peer | 64 | 1150 | 22.50 / 90.00 | 400 | | |",
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
        assert_eq!(json["targets"].as_array().unwrap().len(), 9);
        assert_eq!(json["stores"][0]["peer"]["outcome"]["ok_per_s"], 1_150.0);
        assert!(
            fs::read_to_string(dir.join("bench.md"))
                .unwrap()
                .contains("### Targets")
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
