//! The one way services call each other: timeouts, bounded retries for idempotent calls,
//! calls spread over an upstream's replicas, and a circuit breaker per replica. Failures
//! become 502/503/504 problems, never hangs.

mod base_urls;
mod breaker;
mod replicas;
mod service_token;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

pub use base_urls::BaseUrls;
pub use breaker::{BreakerState, CircuitBreaker, Permit};
pub use service_token::ServiceTokens;

use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::faults::{Faults, Injection};
use crate::models::operation::{Body, Operation};
use crate::problem::{ApiError, Problem};
use crate::telemetry::metrics::ClientMetrics;
use crate::telemetry::trace;

use replicas::{Replica, Replicas};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// One call as it goes out, and again on each retry.
struct Call<'a> {
    method: Method,
    path: String,
    body: Option<Body>,
    credentials: Credentials<'a>,
    idempotency_key: Option<String>,
}

/// How a call authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    None,
    /// The end user's own token, forwarded on a call made on their behalf.
    Bearer(&'a str),
    /// This service's client-credentials token, for calls on no user's behalf.
    Service,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("{upstream} is unavailable right now (circuit open)")]
    CircuitOpen { upstream: &'static str },
    /// No connection could be made, so the request was not sent.
    #[error("{upstream} could not be reached")]
    Unreachable { upstream: &'static str },
    /// The connection failed after the request may have been sent.
    #[error("{upstream} dropped the connection")]
    ConnectionLost { upstream: &'static str },
    #[error("{upstream} did not answer in time")]
    Timeout { upstream: &'static str },
    #[error("{upstream} answered {status}")]
    Status {
        upstream: &'static str,
        status: StatusCode,
        problem: Option<Box<Problem>>,
    },
    #[error("{upstream} sent a response this service does not understand")]
    InvalidResponse { upstream: &'static str },
    #[error("a request to {upstream} could not be encoded")]
    Unencodable { upstream: &'static str },
}

impl UpstreamError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::ConnectionLost { .. } | Self::Timeout { .. } => true,
            Self::Status { status, .. } => matches!(
                *status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ),
            Self::CircuitOpen { .. } | Self::InvalidResponse { .. } | Self::Unencodable { .. } => {
                false
            }
        }
    }

    /// Whether the replica that failed so seems to be stopping, gone or not ready yet: it
    /// refused or dropped the connection, or answered 503 (a service does while its store
    /// is not connected, e.g. as it starts). Its next calls go to other replicas first.
    fn seems_leaving(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::ConnectionLost { .. } => true,
            Self::Status { status, .. } => *status == StatusCode::SERVICE_UNAVAILABLE,
            _ => false,
        }
    }

    /// Client errors mean the upstream is healthy, so they do not count against its breaker.
    fn counts_against_breaker(&self) -> bool {
        match self {
            Self::Status { status, .. } => status.is_server_error(),
            Self::Unreachable { .. }
            | Self::ConnectionLost { .. }
            | Self::Timeout { .. }
            | Self::InvalidResponse { .. } => true,
            Self::CircuitOpen { .. } | Self::Unencodable { .. } => false,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(err: UpstreamError) -> Self {
        match &err {
            UpstreamError::CircuitOpen { .. }
            | UpstreamError::Unreachable { .. }
            | UpstreamError::ConnectionLost { .. } => ApiError::ServiceUnavailable(err.to_string()),
            UpstreamError::Timeout { .. } => ApiError::GatewayTimeout(err.to_string()),
            UpstreamError::Status {
                status,
                problem: Some(problem),
                ..
            } if status.is_client_error() => ApiError::Relayed(problem.clone()),
            UpstreamError::Unencodable { .. } => ApiError::Internal(err.to_string()),
            // Unavailable and out of time say what the caller can do (try again, maybe
            // elsewhere); as a 502 they would read as a defect in the upstream.
            UpstreamError::Status { status, .. } if *status == StatusCode::SERVICE_UNAVAILABLE => {
                ApiError::ServiceUnavailable(err.to_string())
            }
            UpstreamError::Status { status, .. } if *status == StatusCode::GATEWAY_TIMEOUT => {
                ApiError::GatewayTimeout(err.to_string())
            }
            UpstreamError::Status { upstream, .. }
            | UpstreamError::InvalidResponse { upstream } => {
                ApiError::BadGateway(format!("{upstream} failed to handle the request"))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub retry_backoff: Duration,
    pub breaker_failure_threshold: u32,
    pub breaker_open_for: Duration,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
            max_retries: 2,
            retry_backoff: Duration::from_millis(50),
            breaker_failure_threshold: 5,
            breaker_open_for: Duration::from_secs(5),
        }
    }
}

/// Shorter than a stopping replica's drain (`SHUTDOWN_DRAIN_MS`, 3 s by default): a
/// connection used during the drain is closed by the replica's `Connection: close`, and one
/// left idle through it is dropped here before the replica closes it under a new request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

impl UpstreamSettings {
    /// One connection pool shared by every upstream of a service.
    pub fn http_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .expect("a plain HTTP client without TLS always builds")
    }
}

struct Inner {
    name: &'static str,
    replicas: Arc<Replicas>,
    http: reqwest::Client,
    settings: UpstreamSettings,
    service_tokens: Option<Arc<ServiceTokens>>,
    metrics: ClientMetrics,
    faults: Faults,
}

/// A named dependency, at one base URL or several (its replicas). Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

impl Upstream {
    pub fn new(
        name: &'static str,
        base_urls: &BaseUrls,
        http: reqwest::Client,
        settings: UpstreamSettings,
        service_tokens: Option<Arc<ServiceTokens>>,
        metrics: ClientMetrics,
        faults: Faults,
    ) -> Self {
        faults.register_upstream(name);
        let replicas = Arc::new(Replicas::new(
            base_urls,
            settings.breaker_failure_threshold,
            settings.breaker_open_for,
        ));
        let watched = replicas.clone();
        metrics.watch_breaker(name, move || watched.state().as_gauge());
        Self {
            inner: Arc::new(Inner {
                name,
                replicas,
                http,
                settings,
                service_tokens,
                metrics,
                faults,
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Open only while the circuit of every replica is open.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.replicas.state()
    }

    /// Makes `operation`'s call, authenticated with `credentials`, and reads its answer.
    pub async fn call<O: Operation>(
        &self,
        operation: &O,
        credentials: Credentials<'_>,
    ) -> Result<O::Response, UpstreamError> {
        let body = operation.body().map_err(|err| {
            tracing::warn!(upstream = self.name(), error = %err, "unencodable request");
            UpstreamError::Unencodable {
                upstream: self.name(),
            }
        })?;
        let call = Call {
            method: O::METHOD,
            path: operation.path(),
            body,
            credentials,
            idempotency_key: operation.idempotency_key(),
        };
        let bytes = self.send(&call).await?;
        self.decode(&bytes)
    }

    /// An empty answer (204) reads as JSON `null`, i.e. `()`.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, UpstreamError> {
        let json = if bytes.is_empty() { b"null" } else { bytes };
        serde_json::from_slice(json).map_err(|err| {
            tracing::warn!(upstream = self.name(), error = %err, "undecodable upstream response");
            self.invalid_response()
        })
    }

    /// Sends with retries (idempotent calls only) and returns a 2xx body.
    async fn send(&self, call: &Call<'_>) -> Result<Bytes, UpstreamError> {
        let credentials = call.credentials;
        let retries_allowed = if call.idempotency_key.is_some() || is_idempotent(&call.method) {
            self.inner.settings.max_retries
        } else {
            0
        };
        let mut token_refreshed = false;
        let mut attempt = 0;
        loop {
            let result = self.attempt(call).await;
            match result {
                Err(UpstreamError::Status {
                    status: StatusCode::UNAUTHORIZED,
                    ..
                }) if matches!(credentials, Credentials::Service) && !token_refreshed => {
                    // The issuer may have restarted with a new key: fetch a fresh token once.
                    token_refreshed = true;
                    if let Some(tokens) = &self.inner.service_tokens {
                        tokens.invalidate().await;
                    }
                }
                Err(err) if err.is_transient() && attempt < retries_allowed => {
                    attempt += 1;
                    self.inner.metrics.record_retry(self.inner.name);
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(UpstreamError::Status {
                    upstream, status, ..
                }) if matches!(credentials, Credentials::Service)
                    && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) =>
                {
                    // Our own credentials were refused: that is a fault between services, which
                    // must not reach the end user as if their token were bad.
                    return Err(UpstreamError::Status {
                        upstream,
                        status,
                        problem: None,
                    });
                }
                other => return other,
            }
        }
    }

    /// One try of the call, on the next replica whose circuit lets it through. A replica
    /// that cannot be connected to never saw the request, so for any method the try moves
    /// on to the next one; other failures end the try (the retry policy decides).
    async fn attempt(&self, call: &Call<'_>) -> Result<Bytes, UpstreamError> {
        let inner = &self.inner;
        let mut refused = None;
        for replica in inner.replicas.in_turn() {
            match self.attempt_on(replica, call).await {
                Some(Err(err @ UpstreamError::Unreachable { .. })) => refused = Some(err),
                Some(result) => return result,
                None => {}
            }
        }
        Err(refused.unwrap_or_else(|| {
            inner
                .metrics
                .record_call(inner.name, &call.method, "circuit_open", None);
            UpstreamError::CircuitOpen {
                upstream: inner.name,
            }
        }))
    }

    /// The call on `replica`, or `None` while its circuit is open.
    async fn attempt_on(
        &self,
        replica: &Replica,
        call: &Call<'_>,
    ) -> Option<Result<Bytes, UpstreamError>> {
        let method = &call.method;
        let inner = &self.inner;
        // Held across the call: if this future is dropped mid-call, the permit resolves itself.
        let permit = replica.breaker.try_acquire()?;
        let started = std::time::Instant::now();
        let result = match inner.faults.for_upstream(inner.name) {
            None => self.exchange(replica, call).await,
            Some(injection) => self.exchange_with_fault(injection, replica, call).await,
        };
        match &result {
            Err(err) if err.counts_against_breaker() => permit.failed(),
            _ => permit.succeeded(),
        }
        if matches!(&result, Err(err) if err.seems_leaving()) {
            replica.seems_leaving();
        }
        inner.metrics.record_call(
            inner.name,
            method,
            outcome(&result),
            Some(started.elapsed().as_secs_f64()),
        );
        Some(result)
    }

    /// One HTTP exchange with `replica`, in a client span whose context travels in
    /// `traceparent`.
    async fn exchange(&self, replica: &Replica, call: &Call<'_>) -> Result<Bytes, UpstreamError> {
        let inner = &self.inner;
        let method = &call.method;
        let url = format!("{}{}", replica.base_url, call.path);
        let span = tracing::info_span!(
            "upstream call",
            otel.name = %method,
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = %method,
            url.full = %url,
            peer.service = inner.name,
            http.response.status_code = Empty,
        );
        let mut headers = axum::http::HeaderMap::new();
        span.in_scope(|| trace::inject_context(&mut headers));
        let mut request = inner
            .http
            .request(method.clone(), url)
            .headers(headers)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request
                .header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(body.content_type()),
                )
                .body(body.bytes());
        }
        if let Some(key) = &call.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        match call.credentials {
            Credentials::None => {}
            Credentials::Bearer(token) => request = request.bearer_auth(token),
            Credentials::Service => request = request.bearer_auth(self.service_token().await?),
        }
        let answer = async {
            let response = request
                .send()
                .await
                .map_err(|err| self.transport_error(&err))?;
            let status = response.status();
            if closes_connection(response.headers()) {
                replica.seems_leaving();
            }
            // As on the server span: a field (re-formatted by the log layer) only when a
            // failure may be logged next; otherwise the exported span alone carries it.
            let current = tracing::Span::current();
            if status.is_success() {
                current.set_attribute("http.response.status_code", i64::from(status.as_u16()));
            } else {
                current.record("http.response.status_code", status.as_u16());
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|err| self.transport_error(&err))?;
            if status.is_success() {
                return Ok(bytes);
            }
            Err(UpstreamError::Status {
                upstream: inner.name,
                status,
                problem: serde_json::from_slice(&bytes).ok().map(Box::new),
            })
        };
        let result = answer.instrument(span.clone()).await;
        if matches!(&result, Err(err) if err.counts_against_breaker()) {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    /// An exchange an injected fault delays, or replaces with the failure it injects: the
    /// caller sees, counts, retries and trips its breaker on it as on a real one.
    async fn exchange_with_fault(
        &self,
        injection: Injection,
        replica: &Replica,
        call: &Call<'_>,
    ) -> Result<Bytes, UpstreamError> {
        // An injected delay is bounded by the call's timeout, as a slow upstream would be.
        let budget = self.inner.settings.request_timeout;
        if injection.delay >= budget {
            tokio::time::sleep(budget).await;
            return Err(UpstreamError::Timeout {
                upstream: self.inner.name,
            });
        }
        tokio::time::sleep(injection.delay).await;
        match injection.failure {
            Some(failure) => {
                tracing::debug!(upstream = self.inner.name, fault = %failure.fault,
                    status = failure.status.as_u16(), "injected upstream failure");
                Err(UpstreamError::Status {
                    upstream: self.inner.name,
                    status: failure.status,
                    problem: None,
                })
            }
            None => self.exchange(replica, call).await,
        }
    }

    async fn service_token(&self) -> Result<String, UpstreamError> {
        match &self.inner.service_tokens {
            Some(tokens) => tokens.token().await,
            None => Err(self.invalid_response()),
        }
    }

    fn transport_error(&self, err: &reqwest::Error) -> UpstreamError {
        let upstream = self.inner.name;
        // Before the timeout check: a connect timeout, too, means the request was not sent.
        if err.is_connect() {
            UpstreamError::Unreachable { upstream }
        } else if err.is_timeout() {
            UpstreamError::Timeout { upstream }
        } else {
            UpstreamError::ConnectionLost { upstream }
        }
    }

    fn invalid_response(&self) -> UpstreamError {
        UpstreamError::InvalidResponse {
            upstream: self.inner.name,
        }
    }

    /// Exponential backoff with full jitter, so retrying callers do not move in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.inner.settings.retry_backoff * 2u32.saturating_pow(attempt - 1);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// The `outcome` label of `http_client_requests_total`.
fn outcome(result: &Result<Bytes, UpstreamError>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(UpstreamError::Status { status, .. }) if status.is_client_error() => "client_error",
        Err(UpstreamError::Status { .. } | UpstreamError::InvalidResponse { .. }) => "server_error",
        Err(UpstreamError::Timeout { .. }) => "timeout",
        Err(UpstreamError::Unreachable { .. } | UpstreamError::ConnectionLost { .. }) => {
            "connect_error"
        }
        Err(UpstreamError::CircuitOpen { .. }) => "circuit_open",
        Err(UpstreamError::Unencodable { .. }) => "client_error",
    }
}

/// A response that closes its connection: the services answer so only while they drain
/// before stopping (`crate::shutdown`).
fn closes_connection(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case("close"))
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}
