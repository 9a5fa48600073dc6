//! The tester's own Prometheus metrics, its `/metrics` endpoint, and the trace ids of the
//! requests worth a second look (failed or slow).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The services' buckets (services/common/src/telemetry/metrics.rs), so both sides of a
/// request can be compared bucket by bucket.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct LoadMetrics {
    registry: Registry,
    requests: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
    pub users: IntGauge,
}

impl LoadMetrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "loadtest_requests_total",
                "Requests the load tester sent, by journey, step and response status (`error` when no response came).",
            ),
            &["scenario", "step", "status"],
        )
        .expect("valid metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "loadtest_failed_requests_total",
                "Requests the load tester judged failed: an unexpected status, no response, or a wrong body.",
            ),
            &["scenario", "step"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "loadtest_request_duration_seconds",
                "Time from sending a request to its whole response body, as the load tester saw it.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["scenario", "step"],
        )
        .expect("valid metric");
        let users =
            IntGauge::new("loadtest_users", "Simulated users running now.").expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(users.clone()),
        ] {
            registry.register(collector).expect("registered once");
        }
        Arc::new(Self {
            registry,
            requests,
            failures,
            duration,
            users,
        })
    }

    pub fn observe(&self, scenario: &str, step: &str, status: &str, elapsed: Duration) {
        self.requests
            .with_label_values(&[scenario, step, status])
            .inc();
        self.duration
            .with_label_values(&[scenario, step])
            .observe(elapsed.as_secs_f64());
    }

    pub fn failed(&self, scenario: &str, step: &str) {
        self.failures.with_label_values(&[scenario, step]).inc();
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }

    /// Serves `GET /metrics` on `listen` until the handle is aborted.
    pub async fn serve(
        self: &Arc<Self>,
        listen: SocketAddr,
    ) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = TcpListener::bind(listen).await.map_err(|err| {
            anyhow::anyhow!("the metrics endpoint cannot listen on {listen}: {err}")
        })?;
        let address = listener.local_addr()?;
        let app = Router::new()
            .route("/metrics", get(metrics_handler))
            .with_state(self.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((address, server))
    }
}

async fn metrics_handler(State(metrics): State<Arc<LoadMetrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}

/// A fresh W3C `traceparent` (version 00, sampled) and its trace id.
pub fn traceparent() -> (String, String) {
    let trace_id = format!("{:032x}", fastrand::u128(1..));
    let span_id = format!("{:016x}", fastrand::u64(1..));
    (format!("00-{trace_id}-{span_id}-01"), trace_id)
}

/// A request worth looking up in the tracing backend.
#[derive(Debug, Clone, Serialize)]
pub struct NotableTrace {
    pub trace_id: String,
    /// `failed` or `slow`.
    pub kind: &'static str,
    pub scenario: String,
    pub step: String,
    /// The HTTP status, 0 when no response came.
    pub status: u16,
    pub millis: u64,
    pub detail: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Keeps the first [`TraceLog::CAPACITY`] notable traces of a run, and counts the rest.
#[derive(Default)]
pub struct TraceLog {
    inner: Mutex<(Vec<NotableTrace>, usize)>,
}

impl TraceLog {
    pub const CAPACITY: usize = 10_000;

    pub fn record(&self, trace: NotableTrace) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.1 += 1;
        if inner.0.len() < Self::CAPACITY {
            inner.0.push(trace);
        }
    }

    /// The kept traces and how many were recorded in all.
    pub fn snapshot(&self) -> (Vec<NotableTrace>, usize) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
