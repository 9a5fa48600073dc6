use axum::extract::State;
use axum::http::StatusCode;
use shop_common::extract::Json;
use shop_common::health::HealthReport;

use super::AppState;

/// The service and its database, as in the original design.
#[utoipa::path(get, path = "/system/health", tag = "system",
    responses(
        (status = 200, description = "The service and its store work", body = HealthReport),
        (status = 503, description = "The store is unavailable", body = HealthReport),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    let report = state.readiness.report().await;
    (report.http_status(), Json(report))
}
