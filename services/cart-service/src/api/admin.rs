use axum::extract::State;
use serde::Deserialize;
use shop_common::auth::AdminUser;
use shop_common::extract::{Json, Query};
use shop_common::models::cart::Cart;
use shop_common::validate::Validator;
use shop_common::{ApiResult, Problem};
use utoipa::IntoParams;

use super::AppState;

const MAX_CARTS_LISTED: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many carts at most.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
}

/// Every non-empty cart (admins only).
#[utoipa::path(get, path = "/carts/", tag = "admin", params(ListParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "The carts", body = Vec<Cart>),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_carts(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Vec<Cart>>> {
    let limit = params.limit.unwrap_or(100);
    Validator::new()
        .range("limit", limit, 1, MAX_CARTS_LISTED)
        .finish()?;
    Ok(Json(state.store.list(limit as usize).await?))
}
