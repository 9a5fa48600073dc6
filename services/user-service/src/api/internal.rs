//! Endpoints only the shop's services may call.

use axum::extract::State;
use axum::http::StatusCode;
use shop_common::auth::ServiceCaller;
use shop_common::extract::Json;
use shop_common::models::operation::Operation;
use shop_common::models::order::{OrderEvent, RecordOrderEvent};
use shop_common::topology;
use shop_common::{ApiError, ApiResult, Problem};

use super::AppState;

/// The order service reports an order's status change.
#[utoipa::path(post, path = RecordOrderEvent::ROUTE, tag = "internal", request_body = OrderEvent,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the order service", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn order_event(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Json(event): Json<OrderEvent>,
) -> ApiResult<StatusCode> {
    if caller.name != topology::ORDER.name {
        return Err(ApiError::Forbidden(
            "only the order service reports order events".to_owned(),
        ));
    }
    state.store.record_order_event(&event).await?;
    Ok(StatusCode::NO_CONTENT)
}
