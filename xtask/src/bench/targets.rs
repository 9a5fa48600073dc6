//! The targets of docs/performance.md, and how far each figure is from them.

use serde::Serialize;

use super::memory;
use super::results::{Generator, PRODUCT_BY_ID, Report, StoreResult};

/// Through nginx, product by id reaches at least this share of the static ceiling.
pub const CEILING_SHARE: f64 = 0.30;
/// Telemetry costs at most this share of an endpoint's throughput.
pub const TELEMETRY_COST: f64 = 0.10;
/// The request metrics alone cost at most this share of product by id's throughput.
pub const METRICS_COST: f64 = 0.03;
/// p99 at half the highest throughput stays below this.
pub const HALF_LOAD_P99_MS: f64 = 10.0;
/// Goose's closed model reaches at least this share of wrk's rate.
pub const GOOSE_SHARE: f64 = 0.60;
/// The open model drops at most this share of its arrivals at the plan's rate...
pub const OPEN_DROPPED: f64 = 0.01;
/// ...and starts at least this share of them on time.
pub const OPEN_ACHIEVED: f64 = 0.99;
/// The Rust backend serves product by id, telemetry on, at least this many times the rate
/// of the seed's stack (the FastAPI peer).
pub const PEER_RATIO: f64 = 8.0;

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

/// Every target, judged per store, and goose once.
pub fn verdicts(report: &Report) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for store in &report.stores {
        verdicts.extend(ceiling_verdict(store));
        verdicts.push(telemetry_verdict(store));
        verdicts.extend(instrumentation_verdicts(store));
        verdicts.push(latency_verdict(store));
        verdicts.push(memory_verdict(store));
        verdicts.extend(peer_verdict(store));
    }
    verdicts.extend(goose_verdict(&report.generators));
    verdicts.extend(open_verdict(&report.generators, report.plan.arrival_rate));
    verdicts
}

fn ceiling_verdict(store: &StoreResult) -> Option<Verdict> {
    let product = store.endpoint(PRODUCT_BY_ID)?;
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

/// Product by id directly, side by side with telemetry off: the span, metrics and logs
/// without export (≤ 10%), and the metrics alone (≤ 3%). Measured on the memory store,
/// where the instrumentation is not hidden behind the database.
fn instrumentation_verdicts(store: &StoreResult) -> Vec<Verdict> {
    if store.store != "memory" {
        return Vec::new();
    }
    let side_by_side = store.side_by_side.as_ref();
    let scope = format!(
        "{PRODUCT_BY_ID}, directly, {} store, side by side",
        store.store
    );
    [
        (
            "the request span, metrics and logs (not exported)",
            side_by_side.and_then(|measured| measured.cost("no export")),
            TELEMETRY_COST,
        ),
        (
            "the request metrics alone",
            side_by_side.and_then(|measured| measured.cost("metrics only")),
            METRICS_COST,
        ),
    ]
    .into_iter()
    .map(|(what, cost, threshold)| Verdict {
        target: format!(
            "cost of {what} ≤ {} of the telemetry-off rate",
            percent(threshold)
        ),
        scope: scope.clone(),
        measured: cost.map_or_else(|| "not measured".to_owned(), |cost| percent(cost.max(0.0))),
        met: cost.is_some_and(|cost| cost <= threshold),
        gap: cost.map_or_else(
            || "no figures".to_owned(),
            |cost| format!("{:.0} points over", (cost - threshold) * 100.0),
        ),
    })
    .collect()
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

/// Only where the peer ran (the memory store); a peer that ran but whose ratio cannot be
/// computed (nothing served) is missed.
fn peer_verdict(store: &StoreResult) -> Option<Verdict> {
    let peer = store.peer.as_ref()?;
    let target = format!("Rust backend ≥ {PEER_RATIO}× the seed's stack (FastAPI peer)");
    let scope = format!(
        "{PRODUCT_BY_ID}, directly, telemetry on, {} store",
        store.store
    );
    let Some(ratio) = store.peer_ratio() else {
        return Some(Verdict {
            target,
            scope,
            measured: format!("peer {:.0} req/s", peer.outcome.ok_per_s),
            met: false,
            gap: "no ratio: the peer or the backend served nothing".to_owned(),
        });
    };
    Some(Verdict {
        target,
        scope,
        measured: format!(
            "{ratio:.1}× ({:.0} against {:.0} req/s)",
            ratio * peer.outcome.ok_per_s,
            peer.outcome.ok_per_s
        ),
        met: ratio >= PEER_RATIO,
        gap: format!(
            "{:.1}× short: the backend needs {:.1}× its rate",
            PEER_RATIO - ratio,
            PEER_RATIO / ratio
        ),
    })
}

/// The closed model against wrk: the first generator, then the first without arrivals.
fn goose_verdict(generators: &[Generator]) -> Option<Verdict> {
    let (wrk, others) = generators.split_first()?;
    let goose = others.iter().find(|g| g.arrivals.is_none())?;
    let ratio = goose.per_s / wrk.per_s;
    Some(Verdict {
        target: format!("goose ≥ {} of wrk's rate", percent(GOOSE_SHARE)),
        scope: "static nginx, closed model".to_owned(),
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

/// The open model holds the plan's arrival rate: few drops, and the rest started.
fn open_verdict(generators: &[Generator], rate: u32) -> Option<Verdict> {
    let arrivals = generators.iter().find_map(|g| g.arrivals.as_ref())?;
    let dropped = arrivals.dropped_share();
    let achieved = arrivals.achieved_per_s / f64::from(rate);
    let mut gaps = Vec::new();
    if dropped > OPEN_DROPPED {
        gaps.push(format!(
            "{:.1}% dropped, {:.1} points over",
            dropped * 100.0,
            (dropped - OPEN_DROPPED) * 100.0
        ));
    }
    if achieved < OPEN_ACHIEVED {
        gaps.push(format!(
            "{:.0} of {rate} arrivals/s started ({})",
            arrivals.achieved_per_s,
            percent(achieved)
        ));
    }
    Some(Verdict {
        target: format!(
            "open model holds {rate} arrivals/s with ≤ {} dropped",
            percent(OPEN_DROPPED)
        ),
        scope: "static nginx, open model".to_owned(),
        measured: format!(
            "{:.0} arrivals/s started, {:.2}% dropped",
            arrivals.achieved_per_s,
            dropped * 100.0
        ),
        met: gaps.is_empty(),
        gap: gaps.join("; "),
    })
}

pub fn percent(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

#[cfg(test)]
mod tests {
    use super::super::results::fixtures::{report, report_with_drops, side_by_side};
    use super::*;

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
        let open = verdict(&verdicts, "open model");
        assert!(open.met, "{open:?}");
        assert_eq!(open.measured, "19980 arrivals/s started, 0.10% dropped");
        let peer = verdict(&verdicts, "Rust backend");
        assert_eq!(peer.measured, "4.0× (4600 against 1150 req/s)");
        assert!(!peer.met);
        assert_eq!(peer.gap, "4.0× short: the backend needs 2.0× its rate");
    }

    #[test]
    fn the_peer_is_judged_where_it_ran() {
        let mut report = report(3_000.0, 24_000.0, 21.0);
        let peer = report.stores[0].peer.as_mut().expect("a peer");
        peer.outcome.ok_per_s = 500.0;
        let met = verdict(&verdicts(&report), "Rust backend").clone();
        assert_eq!(met.measured, "9.2× (4600 against 500 req/s)");
        assert!(met.met);
        report.stores[0]
            .peer
            .as_mut()
            .expect("a peer")
            .outcome
            .ok_per_s = 0.0;
        let unmeasured = verdict(&verdicts(&report), "Rust backend").clone();
        assert!(!unmeasured.met);
        report.stores[0].peer = None;
        assert!(
            !verdicts(&report)
                .iter()
                .any(|v| v.target.starts_with("Rust backend"))
        );
    }

    #[test]
    fn figures_on_target_are_met() {
        let verdicts = verdicts(&report(3_000.0, 24_000.0, 21.0));
        for target in ["product by id", "no memory growth", "goose", "open model"] {
            assert!(verdict(&verdicts, target).met, "{target}");
        }
    }

    #[test]
    fn the_instrumentation_and_the_metrics_are_judged_round_by_round_against_telemetry_off() {
        let mut report = report(3_000.0, 24_000.0, 21.0);
        let judged = verdicts(&report);
        let span = verdict(&judged, "cost of the request span");
        assert_eq!((span.measured.as_str(), span.met), ("8%", true));
        let metrics = verdict(&judged, "cost of the request metrics");
        assert_eq!((metrics.measured.as_str(), metrics.met), ("2%", true));
        // The machine slows down in the second round: each round is judged on its own.
        report.stores[0].side_by_side = Some(side_by_side(
            [5_000.0, 2_000.0, 6_000.0],
            [4_750.0, 1_900.0, 5_700.0],
            [4_000.0, 1_600.0, 4_800.0],
        ));
        let slower = verdicts(&report);
        let metrics = verdict(&slower, "cost of the request metrics");
        assert_eq!((metrics.measured.as_str(), metrics.met), ("5%", false));
        assert_eq!(metrics.gap, "2 points over");
        let span = verdict(&slower, "cost of the request span");
        assert_eq!((span.measured.as_str(), span.met), ("20%", false));
        report.stores[0].side_by_side = None;
        let unmeasured = verdicts(&report);
        let metrics = verdict(&unmeasured, "cost of the request metrics");
        assert_eq!(
            (metrics.measured.as_str(), metrics.met),
            ("not measured", false)
        );
    }

    #[test]
    fn an_open_model_that_drops_misses_its_target() {
        let verdicts = verdicts(&report_with_drops(3_000.0, 24_000.0, 21.0, 6_000));
        let open = verdict(&verdicts, "open model");
        assert!(!open.met);
        assert_eq!(open.gap, "2.0% dropped, 1.0 points over");
    }
}
