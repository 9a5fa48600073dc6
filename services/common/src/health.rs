//! Liveness (the process answers) and readiness (it can do its own job).
//!
//! Readiness decides whether a balancer sends this instance traffic, so only what the
//! service cannot do its own job without makes it unready: its store, and for services that
//! verify tokens, the signing keys. A dependency it calls for some requests only (another
//! service behind a circuit breaker) is reported, and makes the report `degraded`, but the
//! instance stays ready: every replica calls the same dependency, so taking them all out of
//! the balancer would turn one service's outage into an outage of everything, login included.
//!
//! The body names each check and whether it passes, nothing more: it is public, and a
//! check's error (hosts, ports, driver messages) goes to the log instead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::Json;
use crate::shutdown::Drain;
use crate::store::Ping;

#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Err` carries the cause, for the log only.
    async fn check(&self) -> Result<(), String>;
    /// Whether the service cannot do its own job while this check fails: a failing required
    /// check makes it unready (503); a failing optional one only degraded (still 200).
    fn required(&self) -> bool {
        true
    }
}

/// The whole service's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    /// Ready, but an optional dependency fails: what needs it fails fast, the rest works.
    Degraded,
    Unavailable,
}

/// One check's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Unavailable,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub status: CheckStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthReport {
    pub status: HealthStatus,
    /// One entry per check, by name.
    #[serde(default)]
    pub checks: BTreeMap<String, CheckResult>,
}

impl HealthReport {
    /// 503 only when the service cannot do its job; ready and degraded both answer 200.
    pub fn http_status(&self) -> StatusCode {
        match self.status {
            HealthStatus::Ok | HealthStatus::Degraded => StatusCode::OK,
            HealthStatus::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

struct Watched {
    check: Arc<dyn HealthCheck>,
    /// Whether the last run failed: a failure is logged as a warning when it starts, not on
    /// every probe of the balancer while it lasts.
    failing: AtomicBool,
}

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Watched>>,
}

impl Readiness {
    pub fn new(checks: Vec<Arc<dyn HealthCheck>>) -> Self {
        let checks = checks
            .into_iter()
            .map(|check| Watched {
                check,
                failing: AtomicBool::new(false),
            })
            .collect();
        Self {
            checks: Arc::new(checks),
        }
    }

    pub async fn report(&self) -> HealthReport {
        let results =
            futures_util::future::join_all(self.checks.iter().map(|w| w.check.check())).await;
        let mut status = HealthStatus::Ok;
        let mut checks = BTreeMap::new();
        for (watched, result) in self.checks.iter().zip(results) {
            let check = &watched.check;
            let passed = watched.log_outcome(&result);
            if !passed && check.required() {
                status = HealthStatus::Unavailable;
            } else if !passed && status == HealthStatus::Ok {
                status = HealthStatus::Degraded;
            }
            let status = if passed {
                CheckStatus::Ok
            } else {
                CheckStatus::Unavailable
            };
            checks.insert(check.name().to_owned(), CheckResult { status });
        }
        HealthReport { status, checks }
    }
}

impl Watched {
    /// Logs the cause of a failure (which the public body leaves out), and a recovery.
    /// Whether the check passed.
    fn log_outcome(&self, result: &Result<(), String>) -> bool {
        let check = self.check.name();
        let required = self.check.required();
        match result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(check, "readiness check passes again");
                }
                true
            }
            Err(error) => {
                if self.failing.swap(true, Ordering::Relaxed) {
                    tracing::debug!(check, required, %error, "readiness check still failing");
                } else {
                    tracing::warn!(check, required, %error, "readiness check failing");
                }
                false
            }
        }
    }
}

/// Readiness check: the service's store answers.
pub struct StoreCheck(pub Arc<dyn Ping>);

#[async_trait::async_trait]
impl HealthCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|err| err.to_string())
    }
}

/// The process is up and serving.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process is alive", body = HealthReport)))]
async fn live() -> Json<HealthReport> {
    Json(HealthReport {
        status: HealthStatus::Ok,
        checks: BTreeMap::new(),
    })
}

/// The service can do its job: its store (and signing keys) answer.
///
/// A failing optional dependency (another service's open circuit) makes the report
/// `degraded`, still 200. From the moment the service is told to stop it answers 503 with
/// the one check `draining`, so balancers take it out before it goes.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready (`ok`, or `degraded` while an optional dependency fails)", body = HealthReport),
        (status = 503, description = "Not ready; the report says which check fails (`draining` while the service shuts down)", body = HealthReport),
    ))]
async fn ready(
    State(readiness): State<Readiness>,
    drain: Option<Extension<Drain>>,
) -> (StatusCode, Json<HealthReport>) {
    let report = if drain.is_some_and(|Extension(drain)| drain.is_draining()) {
        draining()
    } else {
        readiness.report().await
    };
    (report.http_status(), Json(report))
}

fn draining() -> HealthReport {
    let check = CheckResult {
        status: CheckStatus::Unavailable,
    };
    HealthReport {
        status: HealthStatus::Unavailable,
        checks: BTreeMap::from([("draining".to_owned(), check)]),
    }
}

/// `/health/live` and `/health/ready`, for nesting under a service's prefix.
pub fn routes<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> OpenApiRouter<S> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .with_state(readiness)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::client::{
        BaseUrls, BreakerState, Credentials, Upstream, UpstreamError, UpstreamSettings,
    };
    use crate::connections::UpstreamCheck;
    use crate::faults::Faults;
    use crate::models::cart::GetCart;
    use crate::telemetry::metrics::Metrics;

    struct Fixed(&'static str, Result<(), &'static str>);

    #[async_trait::async_trait]
    impl HealthCheck for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }

        async fn check(&self) -> Result<(), String> {
            self.1.map_err(str::to_owned)
        }
    }

    async fn answer(checks: Vec<Arc<dyn HealthCheck>>) -> (StatusCode, Value) {
        let (status, Json(report)) = ready(State(Readiness::new(checks)), None).await;
        (status, serde_json::to_value(report).unwrap())
    }

    /// An upstream on a port nothing listens on, whose breaker the first failure opens.
    async fn upstream_with_an_open_breaker() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let settings = UpstreamSettings {
            max_retries: 0,
            breaker_failure_threshold: 1,
            breaker_open_for: Duration::from_secs(60),
            ..UpstreamSettings::default()
        };
        let upstream = Upstream::new(
            "cart-service",
            &BaseUrls::single(format!("http://{address}")),
            settings.http_client(),
            settings,
            None,
            Metrics::new("health-test").client.clone(),
            Faults::default(),
        );
        let refused = upstream
            .call(&GetCart, Credentials::None)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, UpstreamError::Unreachable { .. }),
            "{refused:?}"
        );
        assert_eq!(upstream.breaker_state(), BreakerState::Open);
        upstream
    }

    #[tokio::test]
    async fn a_failing_store_makes_the_service_unready() {
        let (status, body) = answer(vec![
            Arc::new(Fixed("store", Err("down"))),
            Arc::new(Fixed("signing_keys", Ok(()))),
        ])
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unavailable", "{body}");
        assert_eq!(body["checks"]["store"], json!({"status": "unavailable"}));
        assert_eq!(body["checks"]["signing_keys"], json!({"status": "ok"}));
    }

    #[tokio::test]
    async fn the_body_names_failing_checks_without_their_hosts_or_errors() {
        let error = "cannot connect to 10.1.2.3:9042: Connection refused (os error 111)";
        let (_, body) = answer(vec![Arc::new(Fixed("store", Err(error)))]).await;
        let text = body.to_string();
        for secret in ["10.1.2.3", "9042", "refused", "error"] {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
        assert_eq!(body["checks"]["store"], json!({"status": "unavailable"}));
    }

    #[tokio::test]
    async fn an_open_breaker_to_an_upstream_leaves_the_service_ready_but_degraded() {
        let upstream = upstream_with_an_open_breaker().await;
        let (status, body) = answer(vec![
            Arc::new(Fixed("store", Ok(()))),
            Arc::new(UpstreamCheck(upstream)),
        ])
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "degraded", "{body}");
        assert_eq!(body["checks"]["store"], json!({"status": "ok"}));
        assert_eq!(
            body["checks"]["cart-service"],
            json!({"status": "unavailable"})
        );
    }
}
