//! The stock audit: the backend's books, for admins and the `loadtester audit` command.

use axum::extract::State;
use chrono::Utc;
use shop_common::auth::AdminUser;
use shop_common::extract::Json;
use shop_common::{ApiResult, Problem};

use super::AppState;
use crate::domain::StockAudit;

/// Every product's stock against what it received and what reservations hold, and every
/// reservation that expired without an order yet still holds stock.
///
/// A product is conserved when `stock + held == received`; a reservation caught half-way
/// (`in_flight`) holds what its recorded stock moves say. The books are read one table after
/// the other, not at one instant: on a shop under load, audit once the load stops.
/// Reservations are overdue only once the sweeper has had its chance to take them back.
#[utoipa::path(get, path = "/admin/stock-audit", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The audit; `passed` says whether the books balance", body = StockAudit),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stock_audit(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<StockAudit>> {
    let overdue_before = Utc::now() - state.reservations.sweep_grace();
    Ok(Json(state.store.audit(overdue_before).await?))
}
