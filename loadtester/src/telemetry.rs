//! The tester's own Prometheus metrics, its `/metrics` endpoint, and the trace ids of the
//! requests worth a second look (failed or slow).

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use prometheus::proto::MetricType;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::thresholds::Sample;

tokio::task_local! {
    /// In an open-model iteration: how late it started after its intended start. A request's
    /// latency from the intended start adds it, so a generator that falls behind shows.
    pub static ITERATION_LATENESS: Duration;
}

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
    intended_duration: HistogramVec,
    pub users: IntGauge,
    /// Open-model iterations started, and arrivals dropped for want of a free slot.
    pub iterations: IntCounterVec,
    pub dropped: IntCounterVec,
    /// This worker's target arrival rate now (0 in the closed model).
    pub target_rate: Gauge,
    /// When the open model's current schedule began, for live achieved rates.
    pub arrivals_began: Mutex<Option<std::time::Instant>>,
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
        let intended_duration = HistogramVec::new(
            HistogramOpts::new(
                "loadtest_request_intended_duration_seconds",
                "Open model: a request's duration plus how late its iteration started after its due arrival time (coordinated omission corrected).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["scenario", "step"],
        )
        .expect("valid metric");
        let users = IntGauge::new(
            "loadtest_users",
            "Simulated users (closed model) or iterations in flight (open model) now.",
        )
        .expect("valid metric");
        let iterations = IntCounterVec::new(
            Opts::new(
                "loadtest_iterations_total",
                "Open model: journey iterations started on their arrival.",
            ),
            &["scenario"],
        )
        .expect("valid metric");
        let dropped = IntCounterVec::new(
            Opts::new(
                "loadtest_dropped_iterations_total",
                "Open model: arrivals that found all --max-in-flight slots busy and did not run.",
            ),
            &["scenario"],
        )
        .expect("valid metric");
        let target_rate = Gauge::new(
            "loadtest_target_arrival_rate",
            "Open model: the arrivals per second this worker is asked for now.",
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(intended_duration.clone()),
            Box::new(users.clone()),
            Box::new(iterations.clone()),
            Box::new(dropped.clone()),
            Box::new(target_rate.clone()),
        ] {
            registry.register(collector).expect("registered once");
        }
        Arc::new(Self {
            registry,
            requests,
            failures,
            duration,
            intended_duration,
            users,
            iterations,
            dropped,
            target_rate,
            arrivals_began: Mutex::new(None),
        })
    }

    pub fn observe(&self, scenario: &str, step: &str, status: &str, elapsed: Duration) {
        self.requests
            .with_label_values(&[scenario, step, status])
            .inc();
        self.duration
            .with_label_values(&[scenario, step])
            .observe(elapsed.as_secs_f64());
        if let Ok(lateness) = ITERATION_LATENESS.try_with(|lateness| *lateness) {
            self.intended_duration
                .with_label_values(&[scenario, step])
                .observe((elapsed + lateness).as_secs_f64());
        }
    }

    /// The counters and histogram buckets as [`Sample`]s, for thresholds and the summary.
    pub fn samples(&self) -> Vec<Sample> {
        let mut samples = Vec::new();
        for family in self.registry.gather() {
            let name = family.name();
            for metric in family.get_metric() {
                let labels: std::collections::BTreeMap<String, String> = metric
                    .get_label()
                    .iter()
                    .map(|pair| (pair.name().to_owned(), pair.value().to_owned()))
                    .collect();
                let sample = |name: String, labels, value| Sample {
                    name,
                    labels,
                    value,
                };
                match family.get_field_type() {
                    MetricType::COUNTER => samples.push(sample(
                        name.to_owned(),
                        labels,
                        metric.get_counter().value(),
                    )),
                    MetricType::HISTOGRAM => {
                        let histogram = metric.get_histogram();
                        let buckets = histogram
                            .get_bucket()
                            .iter()
                            .map(|b| (b.upper_bound().to_string(), b.cumulative_count()))
                            .chain([("+Inf".to_owned(), histogram.sample_count())]);
                        for (le, count) in buckets {
                            let mut labels = labels.clone();
                            labels.insert("le".to_owned(), le);
                            samples.push(sample(format!("{name}_bucket"), labels, count as f64));
                        }
                    }
                    _ => {}
                }
            }
        }
        samples
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
        ship(&trace);
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

/// Where notable requests are shipped: the log store OTEL_EXPORTER_OTLP_LOGS_ENDPOINT
/// names, as the services' lines are (bounded and asynchronous alike). Set up at the first
/// notable request; a malformed endpoint is reported then, and nothing is shipped.
static LOG_STORE: LazyLock<Option<(SdkLoggerProvider, SdkLogger)>> = LazyLock::new(log_store);

fn log_store() -> Option<(SdkLoggerProvider, SdkLogger)> {
    match shop_common::telemetry::logs::provider_from_env("loadtester") {
        Ok(provider) => provider.map(|provider| {
            let logger = provider.logger("loadtester");
            (provider, logger)
        }),
        Err(error) => {
            eprintln!("notable requests are not shipped to the log store: {error:#}");
            None
        }
    }
}

/// One WARN line per failed or slow request, with its trace id as the services' lines
/// have theirs, so that one query finds the tester's, the gateway's and the services' lines.
fn ship(trace: &NotableTrace) {
    let Some((_, logger)) = LOG_STORE.as_ref() else {
        return;
    };
    let mut record = logger.create_log_record();
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    record.set_body(format!("{} request: {}", trace.kind, trace.detail).into());
    record.add_attributes([
        ("trace_id", trace.trace_id.clone()),
        ("kind", trace.kind.to_owned()),
        ("scenario", trace.scenario.clone()),
        ("step", trace.step.clone()),
    ]);
    let millis = i64::try_from(trace.millis).unwrap_or(i64::MAX);
    record.add_attributes([
        ("http.response.status_code", i64::from(trace.status)),
        ("duration_ms", millis),
    ]);
    logger.emit(record);
}

/// Ships what is still queued for the log store, at the end of a run.
pub fn flush_log_store() {
    if let Some((provider, _)) = LOG_STORE.as_ref() {
        let _ = provider.force_flush();
    }
}

/// The LogsQL query that shows a request's lines in the log store (VictoriaLogs): the
/// services' lines carry its `trace_id` field, the gateway's access line has the id as a
/// word of its JSON message.
pub fn logs_query(trace_id: &str) -> String {
    format!(r#"trace_id:="{trace_id}" or "{trace_id}""#)
}

/// Failed and slow requests as a short table after the run's summary.
pub fn print_notable(notable: &[NotableTrace], notable_total: usize) {
    flush_log_store();
    if notable_total == 0 {
        println!("\nNo failed or slow requests.");
        return;
    }
    let failed = notable.iter().filter(|t| t.kind == "failed").count();
    println!(
        "\nFailed or slow requests: {notable_total} ({failed} failed among the first {}); look them up by trace id:",
        notable.len()
    );
    println!(
        " {:<32} | {:<6} | {:<10} | {:<22} | {:>6} | {:>7} | detail",
        "trace id", "kind", "journey", "step", "status", "ms"
    );
    for trace in notable.iter().take(20) {
        let detail: String = trace.detail.chars().take(80).collect();
        println!(
            " {:<32} | {:<6} | {:<10} | {:<22} | {:>6} | {:>7} | {}",
            trace.trace_id,
            trace.kind,
            trace.scenario,
            trace.step,
            trace.status,
            trace.millis,
            detail
        );
    }
    if notable_total > 20 {
        println!(
            " … {} more (--trace-file writes them all)",
            notable_total - 20
        );
    }
    println!(
        "Their log lines, service and gateway, in the log store (LogsQL; VictoriaLogs' UI at \
         /select/vmui/, natively http://127.0.0.1:9428/select/vmui/):"
    );
    for trace in notable.iter().take(20) {
        println!(" {}", logs_query(&trace.trace_id));
    }
}
