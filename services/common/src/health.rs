//! Liveness (the process answers) and readiness (it can do its job: store and the
//! dependencies it cannot work without are reachable).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::Json;
use crate::store::Ping;

#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync {
    fn name(&self) -> &'static str;
    async fn check(&self) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub status: HealthStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthReport {
    pub status: HealthStatus,
    /// One entry per dependency, by name.
    #[serde(default)]
    pub checks: BTreeMap<String, CheckResult>,
}

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Arc<dyn HealthCheck>>>,
}

impl Readiness {
    pub fn new(checks: Vec<Arc<dyn HealthCheck>>) -> Self {
        Self {
            checks: Arc::new(checks),
        }
    }

    pub async fn report(&self) -> HealthReport {
        let results =
            futures_util::future::join_all(self.checks.iter().map(|check| check.check())).await;
        let checks: BTreeMap<_, _> = self
            .checks
            .iter()
            .zip(results)
            .map(|(check, result)| {
                let entry = match result {
                    Ok(()) => CheckResult {
                        status: HealthStatus::Ok,
                        error: None,
                    },
                    Err(error) => CheckResult {
                        status: HealthStatus::Unavailable,
                        error: Some(error),
                    },
                };
                (check.name().to_owned(), entry)
            })
            .collect();
        let all_ok = checks.values().all(|c| c.status == HealthStatus::Ok);
        HealthReport {
            status: if all_ok {
                HealthStatus::Ok
            } else {
                HealthStatus::Unavailable
            },
            checks,
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

/// The service can serve requests: its store and required dependencies answer.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthReport),
        (status = 503, description = "Not ready; the report says which check failed", body = HealthReport),
    ))]
async fn ready(State(readiness): State<Readiness>) -> (StatusCode, Json<HealthReport>) {
    let report = readiness.report().await;
    let status = match report.status {
        HealthStatus::Ok => StatusCode::OK,
        HealthStatus::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(report))
}

/// `/health/live` and `/health/ready`, for nesting under a service's prefix.
pub fn routes<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> OpenApiRouter<S> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .with_state(readiness)
}
