//! Prometheus metrics: one registry per service (labelled `service`), RED metrics for the
//! HTTP server, per-upstream client metrics, process metrics and build info.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{self, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tower::{Layer, Service};

/// Resolves both ~1 ms handlers and multi-second stalls.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    pub client: ClientMetrics,
    pub db: DbMetrics,
}

#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    /// The subset of `requests` a load test sent: customers' traffic is the difference.
    synthetic: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
}

/// Database statements, by statement name.
#[derive(Clone)]
pub struct DbMetrics {
    operations: IntCounterVec,
    duration: HistogramVec,
}

impl DbMetrics {
    const OUTCOMES: [&str; 3] = ["success", "error", "timeout"];

    /// Creates a statement's series at zero, so error ratios exist before the first error.
    pub fn declare(&self, statement: &str) {
        for outcome in Self::OUTCOMES {
            self.operations.with_label_values(&[statement, outcome]);
        }
    }

    pub fn record(&self, statement: &str, outcome: &str, seconds: f64) {
        self.operations
            .with_label_values(&[statement, outcome])
            .inc();
        self.duration
            .with_label_values(&[statement])
            .observe(seconds);
    }
}

/// Calls to other services, by upstream.
#[derive(Clone)]
pub struct ClientMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    retries: IntCounterVec,
    breakers: BreakerStates,
}

type StateSource = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Circuit-breaker states, read when Prometheus scrapes: a breaker's state changes with time
/// alone (its cool-down ends), not only when a call goes out.
#[derive(Clone)]
struct BreakerStates {
    gauge: IntGaugeVec,
    sources: Arc<Mutex<Vec<(&'static str, StateSource)>>>,
}

impl Collector for BreakerStates {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        // Two clients of one upstream in a service: report the worse state.
        let mut worst: BTreeMap<&str, i64> = BTreeMap::new();
        for (upstream, state) in sources.iter() {
            let value = state();
            worst
                .entry(upstream)
                .and_modify(|w| *w = (*w).max(value))
                .or_insert(value);
        }
        for (upstream, value) in worst {
            self.gauge.with_label_values(&[upstream]).set(value);
        }
        self.gauge.collect()
    }
}

impl Metrics {
    pub fn new(service: &str) -> Arc<Self> {
        let labels = [("service".to_owned(), service.to_owned())]
            .into_iter()
            .collect();
        let registry =
            Registry::new_custom(None, Some(labels)).expect("a constant service label is valid");
        let metrics = Self {
            http: HttpMetrics {
                requests: counter_vec(
                    &registry,
                    "http_server_requests_total",
                    "HTTP requests served.",
                    &["method", "route", "status"],
                ),
                synthetic: counter_vec(
                    &registry,
                    "http_server_synthetic_requests_total",
                    "HTTP requests served that carried W3C baggage synthetic_request=true \
                     (load tests); a subset of http_server_requests_total.",
                    &["method", "route", "status"],
                ),
                duration: histogram_vec(
                    &registry,
                    "http_server_request_duration_seconds",
                    "Time to serve an HTTP request.",
                    &["method", "route", "status"],
                ),
                in_flight: register(
                    &registry,
                    IntGauge::new(
                        "http_server_requests_in_flight",
                        "HTTP requests being served now.",
                    ),
                ),
            },
            client: ClientMetrics {
                requests: counter_vec(
                    &registry,
                    "http_client_requests_total",
                    "Calls to other services, by outcome.",
                    &["upstream", "method", "outcome"],
                ),
                duration: histogram_vec(
                    &registry,
                    "http_client_request_duration_seconds",
                    "Time of a call to another service.",
                    &["upstream", "method"],
                ),
                retries: counter_vec(
                    &registry,
                    "http_client_retries_total",
                    "Retries of calls to other services.",
                    &["upstream"],
                ),
                breakers: register(
                    &registry,
                    IntGaugeVec::new(
                        Opts::new(
                            "circuit_breaker_state",
                            "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open.",
                        ),
                        &["upstream"],
                    )
                    .map(|gauge| BreakerStates {
                        gauge,
                        sources: Arc::default(),
                    }),
                ),
            },
            db: DbMetrics {
                operations: counter_vec(
                    &registry,
                    "db_client_operations_total",
                    "Database statements run, by outcome.",
                    &["statement", "outcome"],
                ),
                duration: histogram_vec(
                    &registry,
                    "db_client_operation_duration_seconds",
                    "Time to run a database statement.",
                    &["statement"],
                ),
            },
            registry,
        };
        let build_info = register(
            &metrics.registry,
            IntGaugeVec::new(
                Opts::new("shop_build_info", "The running build; always 1."),
                &["version"],
            ),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let shipping = &super::logs::SHIPPING;
        register(&metrics.registry, Ok(shipping.shipped.clone()));
        register(&metrics.registry, Ok(shipping.dropped.clone()));
        #[cfg(target_os = "linux")]
        metrics
            .registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector is registered once per service");
        Arc::new(metrics)
    }

    /// Where each service registers its own business metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn encode(&self) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("the text format always encodes");
        buffer
    }
}

/// The `/metrics` handler, in Prometheus text format.
pub async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        metrics.encode(),
    )
        .into_response()
}

/// Counts and times every request by method, route template and status: a tower layer
/// rather than an axum `from_fn` middleware, which boxes the inner service and the future
/// and clones the metrics for every request.
#[derive(Clone)]
pub struct TrackRequestsLayer {
    http: Arc<HttpMetrics>,
}

impl TrackRequestsLayer {
    pub fn new(http: &HttpMetrics) -> Self {
        Self {
            http: Arc::new(http.clone()),
        }
    }
}

impl<S> Layer<S> for TrackRequestsLayer {
    type Service = TrackRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrackRequests {
            inner,
            http: self.http.clone(),
        }
    }
}

#[derive(Clone)]
pub struct TrackRequests<S> {
    inner: S,
    http: Arc<HttpMetrics>,
}

impl<S, B> Service<Request> for TrackRequests<S>
where
    S: Service<Request, Response = http::Response<B>>,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = TrackedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let observation = Observation {
            method: bounded_method(request.method()),
            // A clone of the matched path shares its text rather than copying it.
            route: request.extensions().get::<MatchedPath>().cloned(),
            synthetic: super::trace::is_synthetic(request.headers()),
            started: Instant::now(),
            in_flight: InFlight::start(&self.http),
        };
        TrackedResponse {
            inner: self.inner.call(request),
            observation: Some(observation),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's response, observed when it is ready.
    pub struct TrackedResponse<F> {
        #[pin]
        inner: F,
        observation: Option<Observation>,
    }
}

impl<F, B, E> Future for TrackedResponse<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(observation)) = (&result, this.observation.take()) {
            observation.record(response.status());
        }
        Poll::Ready(result)
    }
}

/// What is known of a request before its response.
struct Observation {
    method: &'static str,
    route: Option<MatchedPath>,
    synthetic: bool,
    started: Instant,
    in_flight: InFlight,
}

impl Observation {
    fn record(self, status: StatusCode) {
        let http = &self.in_flight.0;
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let labels = [self.method, route, status.as_str()];
        http.requests.with_label_values(&labels).inc();
        if self.synthetic {
            http.synthetic.with_label_values(&labels).inc();
        }
        http.duration
            .with_label_values(&labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// A request in flight; keeps the gauge right when a request is cancelled mid-way.
struct InFlight(Arc<HttpMetrics>);

impl InFlight {
    fn start(http: &Arc<HttpMetrics>) -> Self {
        http.in_flight.inc();
        Self(http.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// A client can send any method name; only known ones become label values.
pub(crate) fn bounded_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl ClientMetrics {
    /// Counts a call; `seconds` is `None` for calls the circuit breaker refused unsent.
    pub fn record_call(
        &self,
        upstream: &str,
        method: &Method,
        outcome: &str,
        seconds: Option<f64>,
    ) {
        let method = bounded_method(method);
        self.requests
            .with_label_values(&[upstream, method, outcome])
            .inc();
        if let Some(seconds) = seconds {
            self.duration
                .with_label_values(&[upstream, method])
                .observe(seconds);
        }
    }

    pub fn record_retry(&self, upstream: &str) {
        self.retries.with_label_values(&[upstream]).inc();
    }

    /// Reports an upstream's breaker state, read on every scrape.
    pub fn watch_breaker(
        &self,
        upstream: &'static str,
        state: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        self.breakers
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((upstream, Arc::new(state)));
    }
}

/// Registers a collector; names are fixed in code, so a clash is a programming error.
pub fn register<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: prometheus::Result<T>,
) -> T {
    let collector = collector.expect("metric definitions are valid");
    registry
        .register(Box::new(collector.clone()))
        .expect("each metric is registered once per service");
    collector
}

pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help))
}

pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

pub fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    register(
        registry,
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
            labels,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_has_its_own_labelled_registry() {
        let backend = Metrics::new("backend");
        let cart = Metrics::new("cart-service");
        backend
            .client
            .record_call("user-service", &Method::GET, "success", Some(0.002));
        let text = String::from_utf8(backend.encode()).unwrap();
        assert!(text.contains(r#"http_client_requests_total{method="GET",outcome="success",upstream="user-service",service="backend"} 1"#), "{text}");
        assert!(text.contains(r#"shop_build_info{version="0.1.0",service="backend"} 1"#));
        let other = String::from_utf8(cart.encode()).unwrap();
        assert!(
            !other.contains("http_client_requests_total{"),
            "metrics do not leak between services"
        );
    }

    #[tokio::test]
    async fn each_response_is_counted_and_a_cancelled_request_leaves_the_in_flight_gauge() {
        use axum::Router;
        use axum::body::Body;
        use tower::ServiceExt;

        let metrics = Metrics::new("test");
        let router = Router::new()
            .route("/items/{id}", axum::routing::get(|| async { "item" }))
            .route(
                "/slow",
                axum::routing::get(std::future::pending::<&'static str>),
            )
            .layer(TrackRequestsLayer::new(&metrics.http));
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(get("/items/7")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let slow = tokio::spawn(router.oneshot(get("/slow")));
        tokio::task::yield_now().await;
        assert_eq!(
            metrics.http.in_flight.get(),
            1,
            "the slow request is in flight"
        );
        slow.abort();
        let _ = slow.await;
        assert_eq!(metrics.http.in_flight.get(), 0);
        let text = String::from_utf8(metrics.encode()).unwrap();
        assert!(
            text.contains(r#"http_server_requests_total{method="GET",route="/items/{id}",status="200",service="test"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"route="/slow""#), "{text}");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(
            bounded_method(&Method::from_bytes(b"BREW").unwrap()),
            "OTHER"
        );
    }
}
