use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::Utc;
use serde::Deserialize;
use shop_common::auth::AdminUser;
use shop_common::extract::{Json, Path, Query};
use shop_common::models::catalog::GetProduct;
use shop_common::models::operation::Operation;
use shop_common::{ApiError, ApiResult, Problem};
use utoipa::IntoParams;
use uuid::Uuid;

use super::AppState;
use crate::domain::{Product, ProductCreate, ProductUpdate};

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Products per page.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<usize>,
    /// Where the page starts: the `cursor` of the previous page's `Link: rel="next"`.
    #[param(max_length = 200)]
    cursor: Option<String>,
}

/// Lists products, a page at a time. Without parameters: the first page.
///
/// The body is the page's products. When more follow, a `Link` header with
/// `rel="next"` (and `X-Next-Cursor`) says how to get the next page.
#[utoipa::path(get, path = "/products/", tag = "products", params(ListParams),
    responses(
        (status = 200, description = "A page of products", body = Vec<Product>,
            headers(
                ("Link" = String, description = "The next page, as `<url>; rel=\"next\"`, when there is one"),
                ("X-Next-Cursor" = String, description = "The next page's cursor, when there is one"),
            )),
        (status = 400, description = "Invalid cursor or malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> ApiResult<(HeaderMap, Json<Vec<Product>>)> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let page = state.store.list(params.cursor.as_deref(), limit).await?;
    let mut headers = HeaderMap::new();
    if let Some(cursor) = &page.next_cursor {
        let link = format!("</api/products/?limit={limit}&cursor={cursor}>; rel=\"next\"");
        if let (Ok(link), Ok(cursor)) =
            (HeaderValue::from_str(&link), HeaderValue::from_str(cursor))
        {
            headers.insert(header::LINK, link);
            headers.insert("x-next-cursor", cursor);
        }
    }
    Ok((headers, Json(page.items)))
}

/// Adds a product to the catalogue (admins only).
#[utoipa::path(post, path = "/products/", tag = "products", request_body = ProductCreate,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Product),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(create): Json<ProductCreate>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    create.validate()?;
    let product = create.into_product(Utc::now());
    state.store.create(&product).await?;
    Ok((StatusCode::CREATED, Json(product)))
}

/// One product.
#[utoipa::path(get, path = GetProduct::ROUTE, tag = "products",
    params(("product_id" = Uuid, Path, description = "The product's id")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(State(state): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<Json<Product>> {
    state
        .store
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(id))
}

/// Changes some fields of a product, stock included (admins only).
#[utoipa::path(put, path = "/products/{product_id}", tag = "products", request_body = ProductUpdate,
    params(("product_id" = Uuid, Path, description = "The product's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated product", body = Product),
        (status = 400, description = "Malformed JSON or id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<Uuid>,
    Json(update): Json<ProductUpdate>,
) -> ApiResult<Json<Product>> {
    update.validate()?;
    state
        .store
        .update(id, &update)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(id))
}

/// Removes a product from the catalogue (admins only). Existing orders keep their copy.
#[utoipa::path(delete, path = "/products/{product_id}", tag = "products",
    params(("product_id" = Uuid, Path, description = "The product's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    if state.store.delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(id))
    }
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("product {id} does not exist"))
}
