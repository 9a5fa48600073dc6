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
    /// Request metrics alone (no request span), not exported, straight to the service;
    /// product by id only.
    pub metrics_only: Option<Outcome>,
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

    /// The share of throughput the instrumentation costs without export: 1 - no export / off.
    pub fn instrumentation_cost(&self) -> Option<f64> {
        cost(
            self.telemetry_no_export.as_ref()?,
            self.telemetry_off.as_ref()?,
        )
    }

    /// The share of throughput the request metrics alone cost: 1 - metrics only / off.
    pub fn metrics_cost(&self) -> Option<f64> {
        cost(self.metrics_only.as_ref()?, self.telemetry_off.as_ref()?)
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
            metrics_only: Some(outcome((off * 3.0 + on) / 4.0, 2.0)),
            telemetry_off: Some(outcome(off, 2.0)),
            half_telemetry_off: Some(outcome(gateway / 2.0, half_p99 / 2.0)),
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
                        metrics_only: None,
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
            }],
            notes: vec!["A note.".into()],
        }
    }
}
