//! Stock reservations: internal endpoints the order service calls with its service token.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use shop_common::auth::ServiceCaller;
use shop_common::extract::{Json, Path};
use shop_common::models::catalog::{CommitReservation, ReleaseStock, ReserveStock};
use shop_common::models::operation::Operation;
use shop_common::{ApiError, ApiResult, Problem};
use uuid::Uuid;

use super::AppState;
use crate::domain::{
    CommitOutcome, Reservation, ReservationRequest, ReserveOutcome, reservation_lines,
};

/// Holds stock for an order: every line or none, at the current prices, until
/// `expires_at` unless the order commits it first.
///
/// Idempotent: repeating a reservation id returns the first reservation unchanged, or
/// finishes one a cut-off call left half-made, so a retried call never takes stock twice.
#[utoipa::path(put, path = ReserveStock::ROUTE, tag = "internal",
    request_body = ReservationRequest,
    params(("reservation_id" = Uuid, Path, description = "Chosen by the caller: the order's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reserved; lines carry the product's name and price at this moment", body = Reservation),
        (status = 400, description = "Malformed JSON or id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a shop service", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock, or the reservation was already released (or expired)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines or an unknown product", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reserve(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Path(reservation_id): Path<Uuid>,
    Json(request): Json<ReservationRequest>,
) -> ApiResult<Json<Reservation>> {
    let lines = reservation_lines(request)?;
    let expires_at = Utc::now() + state.reservations.ttl;
    let outcome = state
        .store
        .reserve(reservation_id, &lines, expires_at)
        .await?;
    state.business.record(&outcome);
    match outcome {
        ReserveOutcome::Reserved(reservation) => Ok(Json(reservation)),
        ReserveOutcome::UnknownProduct(product_id) => Err(ApiError::Unprocessable(format!(
            "product {product_id} does not exist"
        ))),
        ReserveOutcome::InsufficientStock {
            product_id,
            available,
        } => Err(ApiError::Conflict(format!(
            "not enough stock for product {product_id}: {available} available"
        ))),
        ReserveOutcome::AlreadyReleased => Err(ApiError::Conflict(format!(
            "reservation {reservation_id} was released and cannot be reused"
        ))),
    }
}

/// Binds a reservation to its order: it no longer expires, and only a release returns its
/// stock. The order service commits after writing the order. Idempotent.
#[utoipa::path(put, path = CommitReservation::ROUTE, tag = "internal",
    params(("reservation_id" = Uuid, Path, description = "The order's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Committed", body = Reservation),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a shop service", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The reservation expired or was released: its stock is back", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable, or the reservation is still being made", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn commit(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Path(reservation_id): Path<Uuid>,
) -> ApiResult<Json<Reservation>> {
    match state.store.commit(reservation_id).await? {
        CommitOutcome::Committed(reservation) => Ok(Json(reservation)),
        CommitOutcome::Released => Err(ApiError::Conflict(format!(
            "reservation {reservation_id} expired or was released: its stock is back on sale"
        ))),
        CommitOutcome::NotReady => Err(ApiError::ServiceUnavailable(format!(
            "reservation {reservation_id} is still being made; try again"
        ))),
        CommitOutcome::Unknown => Err(ApiError::NotFound(format!(
            "reservation {reservation_id} does not exist"
        ))),
    }
}

/// Returns a reservation's stock. Idempotent: releasing twice returns it once, and a
/// release that was cut off half-way is finished by the next one.
#[utoipa::path(delete, path = ReleaseStock::ROUTE, tag = "internal",
    params(("reservation_id" = Uuid, Path, description = "The order's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Released (or nothing left to release)"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a shop service", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn release(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Path(reservation_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.store.release(reservation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
