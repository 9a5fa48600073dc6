//! What the bench measured: the figures that the report renders and the targets judge.

use serde::Serialize;

use super::Plan;
use super::machine::Machine;
use super::memory::ServiceMemory;
use super::peer::PeerResult;
use super::wrk::Outcome;

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
    /// The seed's stack serving product by id, measured with the memory store only: its
    /// products are in memory too.
    pub peer: Option<PeerResult>,
    /// The request telemetry's configurations side by side, memory store only.
    pub side_by_side: Option<SideBySide>,
}

impl StoreResult {
    pub fn endpoint(&self, name: &str) -> Option<&EndpointResult> {
        self.endpoints.iter().find(|e| e.endpoint == name)
    }

    /// How many times the peer's rate the Rust backend serves product by id directly,
    /// telemetry on: `None` without the figures.
    pub fn peer_ratio(&self) -> Option<f64> {
        let peer = self.peer.as_ref()?;
        let backend = self.endpoint(PRODUCT_BY_ID)?.direct.as_ref()?;
        (peer.outcome.ok_per_s > 0.0).then(|| backend.ok_per_s / peer.outcome.ok_per_s)
    }
}

/// The endpoint the ceiling and the peer are compared with.
pub const PRODUCT_BY_ID: &str = "product by id";

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
        cost(on, off)
    }
}

/// Product by id straight to one backend per telemetry configuration, in rounds.
#[derive(Debug, Clone, Serialize)]
pub struct SideBySide {
    pub run_seconds: f64,
    /// Telemetry off first.
    pub configurations: Vec<SideBySideRuns>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideBySideRuns {
    pub name: &'static str,
    /// Each round's rate of good answers.
    pub ok_per_s: Vec<f64>,
    /// Each round's backend CPU time per answer.
    pub backend_cpu_us: Vec<f64>,
}

impl SideBySideRuns {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            ok_per_s: Vec::new(),
            backend_cpu_us: Vec::new(),
        }
    }
}

impl SideBySide {
    pub fn runs(&self, name: &str) -> Option<&SideBySideRuns> {
        self.configurations.iter().find(|runs| runs.name == name)
    }

    /// The share of throughput `name` costs against telemetry off: the median over the
    /// rounds of 1 - its rate / off's rate in the same round.
    pub fn cost(&self, name: &str) -> Option<f64> {
        let off = self.configurations.first()?;
        let with = self.runs(name)?;
        let per_round: Vec<f64> = with
            .ok_per_s
            .iter()
            .zip(&off.ok_per_s)
            .filter(|(_, off)| **off > 0.0)
            .map(|(with, off)| 1.0 - with / off)
            .collect();
        median(&per_round)
    }
}

/// The middle value (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

fn cost(with: &Outcome, without: &Outcome) -> Option<f64> {
    (without.ok_per_s > 0.0).then(|| 1.0 - with.ok_per_s / without.ok_per_s)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generator {
    pub name: String,
    /// Connections or users of the closed model; the open model's bound on iterations at
    /// once (`--max-in-flight`).
    pub concurrency: usize,
    /// The highest rate nginx served over half the run: the steady state, whatever the
    /// generator's start-up and ramp.
    pub per_s: f64,
    /// Requests nginx served during the generator's whole life.
    pub requests: u64,
    /// The generator's CPU time (user + system) over its whole life.
    pub cpu_s: f64,
    /// The open model's arrivals, as the load tester counted them; `None` for the closed
    /// model.
    pub arrivals: Option<Arrivals>,
}

impl Generator {
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.cpu_s * 1e6 / self.requests as f64
    }
}

/// What an open-model run's arrivals did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arrivals {
    /// Arrivals per second asked for.
    pub target_per_s: f64,
    /// Iterations started per second over the run.
    pub achieved_per_s: f64,
    pub started: u64,
    /// Arrivals that found `concurrency` iterations running and were dropped.
    pub dropped: u64,
}

impl Arrivals {
    pub fn dropped_share(&self) -> f64 {
        let arrivals = self.started + self.dropped;
        if arrivals == 0 {
            return 0.0;
        }
        self.dropped as f64 / arrivals as f64
    }
}

#[cfg(test)]
pub mod fixtures {
    //! A report with made-up figures, for the tests of what reads one.

    use std::time::Duration;

    use super::*;

    pub fn outcome(ok_per_s: f64, p99_ms: f64) -> Outcome {
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

    pub fn endpoint(
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

    /// Rounds of telemetry off, metrics only and no export.
    pub fn side_by_side(off: [f64; 3], metrics: [f64; 3], no_export: [f64; 3]) -> SideBySide {
        let runs = |name, rates: [f64; 3]| SideBySideRuns {
            name,
            ok_per_s: rates.to_vec(),
            backend_cpu_us: rates.iter().map(|rate| 1e5 / rate).collect(),
        };
        SideBySide {
            run_seconds: 5.0,
            configurations: vec![
                runs("off", off),
                runs("metrics only", metrics),
                runs("no export", no_export),
            ],
        }
    }

    pub fn report(product_rps: f64, goose_rps: f64, last_soak_mib: f64) -> Report {
        report_with_drops(product_rps, goose_rps, last_soak_mib, 300)
    }

    /// With `open_dropped` of the open model's 300,000 arrivals dropped.
    pub fn report_with_drops(
        product_rps: f64,
        goose_rps: f64,
        last_soak_mib: f64,
        open_dropped: u64,
    ) -> Report {
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
                arrival_rate: 20_000,
                bcrypt_cost: None,
                side_by_side_rounds: 3,
                side_by_side_run: Duration::from_secs(5),
            },
            generators: vec![
                Generator {
                    name: "wrk".into(),
                    concurrency: 64,
                    per_s: 40_000.0,
                    requests: 600_000,
                    cpu_s: 6.0,
                    arrivals: None,
                },
                Generator {
                    name: "goose (loadtester)".into(),
                    concurrency: 64,
                    per_s: goose_rps,
                    requests: 150_000,
                    cpu_s: 15.0,
                    arrivals: None,
                },
                Generator {
                    name: "goose (loadtester), open model".into(),
                    concurrency: 1000,
                    per_s: 19_950.0,
                    requests: 300_000,
                    cpu_s: 20.0,
                    arrivals: Some(Arrivals {
                        target_per_s: 20_000.0,
                        achieved_per_s: 19_980.0,
                        started: 299_700,
                        dropped: open_dropped,
                    }),
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
                peer: Some(PeerResult {
                    stack: vec!["fastapi 0.165.0".into(), "uvicorn 0.55.0".into()],
                    workers: 2,
                    outcome: Outcome {
                        process_cpu_s: [("peer".to_owned(), 1_150.0 * 15.0 * 400e-6)].into(),
                        ..outcome(1_150.0, 90.0)
                    },
                }),
                side_by_side: Some(side_by_side(
                    [5_000.0, 4_000.0, 6_000.0],
                    [4_900.0, 3_920.0, 5_880.0],
                    [4_600.0, 3_500.0, 5_500.0],
                )),
            }],
            notes: vec!["A note.".into()],
        }
    }
}
