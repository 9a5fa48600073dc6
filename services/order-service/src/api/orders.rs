use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use shop_common::auth::{AdminUser, AuthUser};
use shop_common::client::IDEMPOTENCY_KEY;
use shop_common::extract::{Json, Path, Query};
use shop_common::models::operation::Operation;
use shop_common::models::order::{
    GetOrderSummary, ListOwnOrders, Order, OrderCreate, OrderStatus, OrderStatusUpdate,
    OrderSummary, PlaceOrder,
};
use shop_common::validate::Validator;
use shop_common::{ApiError, ApiResult, Problem};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use crate::domain::{order_id, summarize, validate};

const MAX_LISTED: i64 = 1000;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Own,
    All,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `own` orders, or `all` orders (admins only). Admins get all by default, users their own.
    #[param(inline)]
    scope: Option<Scope>,
    /// How many orders at most, newest first.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
}

/// The caller's orders, or everyone's for an admin; newest first.
#[utoipa::path(get, path = ListOwnOrders::ROUTE, tag = "orders", params(ListParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "The orders", body = Vec<Order>),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "scope=all without being an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Vec<Order>>> {
    let limit = params.limit.unwrap_or(100);
    Validator::new()
        .range("limit", limit, 1, MAX_LISTED)
        .finish()?;
    let default_scope = if caller.is_admin() {
        Scope::All
    } else {
        Scope::Own
    };
    let store = &state.lifecycle.store;
    let orders = match params.scope.unwrap_or(default_scope) {
        Scope::Own => store.list_for_user(caller.id, limit as usize).await?,
        Scope::All if caller.is_admin() => store.list_all(limit as usize).await?,
        Scope::All => {
            return Err(ApiError::Forbidden(
                "only admins see everyone's orders".to_owned(),
            ));
        }
    };
    Ok(Json(orders))
}

/// Places an order: reserves the stock (all lines or none) at the prices of this moment.
///
/// With an `Idempotency-Key` header, repeating the request returns the first order (200)
/// instead of placing another.
#[utoipa::path(post, path = PlaceOrder::ROUTE, tag = "orders", request_body = OrderCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: one order per key and user")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new order", body = Order),
        (status = 200, description = "The order this idempotency key placed before", body = Order),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock, or the order took so long to place that its stock went back on sale", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines or an unknown product", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The backend failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store or the backend is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The backend did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
    Json(create): Json<OrderCreate>,
) -> ApiResult<(StatusCode, Json<Order>)> {
    validate(&create)?;
    let key = idempotency_key(&headers)?;
    let id = order_id(caller.id, key);
    let store = &state.lifecycle.store;
    if key.is_some()
        && let Some(existing) = store.get(id).await?
    {
        return Ok((StatusCode::OK, Json(existing)));
    }
    let (status, order) = state.lifecycle.place(id, caller.id, create).await?;
    Ok((status, Json(order)))
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=200).contains(&key.len()) => Ok(Some(key)),
        _ => Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 200 visible ASCII characters".to_owned(),
        )),
    }
}

/// How many orders the caller has and what they spent (cancelled orders left out).
///
/// Over the caller's latest 1000 orders, the most a listing returns.
#[utoipa::path(get, path = GetOrderSummary::ROUTE, tag = "orders", security(("bearer" = [])),
    responses(
        (status = 200, description = "The summary", body = OrderSummary),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn summary(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<OrderSummary>> {
    // Bounded like a listing: in the CQL store every order is one more read, so an
    // unbounded summary would cost as much as the caller's whole history.
    let orders = state
        .lifecycle
        .store
        .list_for_user(caller.id, MAX_LISTED as usize)
        .await?;
    Ok(Json(summarize(caller.id, &orders)))
}

/// Every status an order can have, in life-cycle order.
#[utoipa::path(get, path = "/orders/statuses/list", tag = "orders",
    responses((status = 200, description = "The statuses", body = Vec<OrderStatus>)))]
pub async fn statuses() -> Json<Vec<OrderStatus>> {
    Json(OrderStatus::ALL.to_vec())
}

/// One of the caller's orders (any order, for an admin).
#[utoipa::path(get, path = "/orders/{order_id}", tag = "orders",
    params(("order_id" = Uuid, Path, description = "The order's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Order>> {
    Ok(Json(visible_order(&state, &caller, id).await?))
}

/// Moves an order to a status (admins only): forward along the life cycle, or cancelled
/// before it ships.
#[utoipa::path(put, path = "/orders/{order_id}/status", tag = "orders", request_body = OrderStatusUpdate,
    params(("order_id" = Uuid, Path, description = "The order's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order in its new status", body = Order),
        (status = 400, description = "Malformed JSON or id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order cannot move to that status", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_status(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    Json(update): Json<OrderStatusUpdate>,
) -> ApiResult<Json<Order>> {
    let order = visible_order(&state, &admin, id).await?;
    Ok(Json(
        state.lifecycle.change_status(&order, update.status).await?,
    ))
}

/// Cancels one of the caller's orders (any order, for an admin) and returns its stock.
/// Only before it ships.
#[utoipa::path(put, path = "/orders/{order_id}/cancel", tag = "orders",
    params(("order_id" = Uuid, Path, description = "The order's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled order", body = Order),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already shipped, delivered or cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Order>> {
    let order = visible_order(&state, &caller, id).await?;
    Ok(Json(
        state
            .lifecycle
            .change_status(&order, OrderStatus::Cancelled)
            .await?,
    ))
}

/// Another user's order is answered exactly like a missing one, so ids leak nothing.
async fn visible_order(state: &AppState, caller: &AuthUser, id: Uuid) -> ApiResult<Order> {
    match state.lifecycle.store.get(id).await? {
        Some(order) if order.user_id == caller.id || caller.is_admin() => Ok(order),
        _ => Err(ApiError::NotFound(format!("order {id} does not exist"))),
    }
}
