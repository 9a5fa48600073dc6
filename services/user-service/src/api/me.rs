//! The caller's own account, and their cart and orders as the other services hold them.

use axum::extract::State;
use axum::http::StatusCode;
use shop_common::auth::AuthUser;
use shop_common::extract::Json;
use shop_common::models::cart::{Cart, CheckoutCart, GetCart};
use shop_common::models::order::{GetOrderSummary, ListOwnOrders, Order};
use shop_common::{ApiError, ApiResult, Problem};

use super::AppState;
use crate::domain::{TotalSpent, User, UserChange, UserProfile, UserUpdate};

/// The profile shows the caller's latest orders only: it is one page, not their history
/// (`/users/me/orders` lists more).
const PROFILE_ORDERS: usize = 20;

/// The caller's account.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = User),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_me(State(state): State<AppState>, caller: AuthUser) -> ApiResult<Json<User>> {
    Ok(Json(current_user(&state, &caller).await?))
}

/// Changes the caller's email, full name or password; a new password needs the current one.
#[utoipa::path(put, path = "/users/me", tag = "users", request_body = UserUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated account", body = User),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A new password with the wrong current password", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(update): Json<UserUpdate>,
) -> ApiResult<Json<User>> {
    update.validate()?;
    let password_hash = match (update.password, update.current_password) {
        (Some(password), Some(current)) => {
            let stored = state
                .store
                .by_id(caller.id)
                .await?
                .ok_or_else(account_gone)?;
            if !state
                .hasher
                .verify(current, Some(stored.password_hash))
                .await?
            {
                return Err(ApiError::Forbidden(
                    "the current password is wrong".to_owned(),
                ));
            }
            Some(state.hasher.hash(password).await?)
        }
        // Validation has refused a new password without the current one.
        _ => None,
    };
    let change = UserChange {
        email: update.email,
        full_name: update.full_name,
        password_hash,
    };
    let stored = state.store.update(caller.id, &change).await?;
    stored.map(|s| Json(s.user)).ok_or_else(account_gone)
}

/// The caller with their cart, latest orders (at most 20), total spent and latest order news.
#[utoipa::path(get, path = "/users/me/profile", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = UserProfile),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The cart or order service failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A dependency is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "A dependency did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<UserProfile>> {
    let credentials = caller.credentials();
    let latest_orders = ListOwnOrders {
        limit: Some(PROFILE_ORDERS),
    };
    let (user, cart, orders, summary, events) = tokio::join!(
        current_user(&state, &caller),
        state.cart_service.call(&GetCart, credentials),
        state.order_service.call(&latest_orders, credentials),
        state.order_service.call(&GetOrderSummary, credentials),
        state.store.order_events(caller.id),
    );
    Ok(Json(UserProfile {
        user: user?,
        cart: cart?,
        orders: orders?,
        total_spent_cents: summary?.total_spent_cents,
        recent_order_events: events?,
    }))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/users/me/orders", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The orders", body = Vec<Order>),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The order service failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The order service is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The order service did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn orders(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Vec<Order>>> {
    let orders = state
        .order_service
        .call(&ListOwnOrders { limit: None }, caller.credentials())
        .await?;
    Ok(Json(orders))
}

/// Checks out the caller's cart: user service → cart service → order service.
#[utoipa::path(post, path = "/users/me/orders", tag = "users", security(("bearer" = [])),
    responses(
        (status = 201, description = "The new order", body = Order),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The cart is empty or a product is out of stock", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A product in the cart no longer exists", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The cart or order service failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A dependency is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "A dependency did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn checkout(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<(StatusCode, Json<Order>)> {
    let order = state
        .cart_service
        .call(&CheckoutCart, caller.credentials())
        .await?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// The caller's cart.
#[utoipa::path(get, path = "/users/me/cart", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart", body = Cart),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The cart service failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cart service is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The cart service did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cart(State(state): State<AppState>, caller: AuthUser) -> ApiResult<Json<Cart>> {
    let cart = state
        .cart_service
        .call(&GetCart, caller.credentials())
        .await?;
    Ok(Json(cart))
}

/// What the caller's orders that were not cancelled add up to.
#[utoipa::path(get, path = "/users/me/total-spent", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The total", body = TotalSpent),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The order service failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The order service is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The order service did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn total_spent(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<TotalSpent>> {
    let summary = state
        .order_service
        .call(&GetOrderSummary, caller.credentials())
        .await?;
    Ok(Json(TotalSpent {
        user_id: summary.user_id,
        order_count: summary.order_count,
        total_spent_cents: summary.total_spent_cents,
    }))
}

async fn current_user(state: &AppState, caller: &AuthUser) -> ApiResult<User> {
    let stored = state.store.by_id(caller.id).await?;
    stored.map(|s| s.user).ok_or_else(account_gone)
}

fn account_gone() -> ApiError {
    ApiError::NotFound("your account no longer exists".to_owned())
}
