//! The caller's own cart. Every handler works on the cart of the token's user only.

use axum::extract::State;
use axum::http::StatusCode;
use shop_common::auth::AuthUser;
use shop_common::extract::{Json, Path};
use shop_common::models::cart::{
    Cart, CartItemCreate, CartItemUpdate, CartTotal, CheckoutCart, GetCart, MAX_CART_LINES,
    MAX_ITEM_QUANTITY,
};
use shop_common::models::catalog::{Product, StockLine};
use shop_common::models::operation::Operation;
use shop_common::models::order::{Order, OrderCreate, PlaceOrder};
use shop_common::{ApiError, ApiResult, Problem};
use uuid::Uuid;

use super::AppState;
use crate::domain::{check_quantity, checkout_key};
use crate::store::{AddOutcome, NewItem};

/// The caller's cart.
#[utoipa::path(get, path = GetCart::ROUTE, tag = "cart", security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart (empty if never used)", body = Cart),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_cart(State(state): State<AppState>, caller: AuthUser) -> ApiResult<Json<Cart>> {
    Ok(Json(state.store.get(caller.id).await?))
}

/// Empties the caller's cart.
#[utoipa::path(delete, path = "/cart/", tag = "cart", security(("bearer" = [])),
    responses(
        (status = 200, description = "The emptied cart", body = Cart),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn clear_cart(State(state): State<AppState>, caller: AuthUser) -> ApiResult<Json<Cart>> {
    Ok(Json(state.store.clear(caller.id).await?))
}

/// Adds a product, after checking with the backend that it exists and has the stock.
/// Adding a product already in the cart adds to its line.
///
/// A product read from the backend less than `PRODUCT_CACHE_TTL_MS` ago (1 s by default) may
/// accept the add; a refusal is always read afresh, and the checkout reserves the stock.
#[utoipa::path(post, path = "/cart/items", tag = "cart", request_body = CartItemCreate,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The cart with the item", body = Cart),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid quantity, unknown product, or a new product for a cart already holding as many as an order accepts", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The backend failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store or the backend is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The backend did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_item(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(create): Json<CartItemCreate>,
) -> ApiResult<(StatusCode, Json<Cart>)> {
    let result = add_checked_item(&state, &caller, create).await;
    state.business.item_added(&result);
    result
}

async fn add_checked_item(
    state: &AppState,
    caller: &AuthUser,
    create: CartItemCreate,
) -> ApiResult<(StatusCode, Json<Cart>)> {
    check_quantity(create.quantity)?;
    let cart = state.store.get(caller.id).await?;
    let in_cart: i64 = cart
        .items
        .iter()
        .filter(|i| i.product_id == create.product_id)
        .map(|i| i.quantity)
        .sum();
    let product = state
        .catalog
        .checked(create.product_id, |product| {
            check_stock(product, create.quantity, in_cart)
        })
        .await?;
    let item = NewItem {
        product_id: product.id,
        name: product.name.clone(),
        unit_price_cents: product.price_cents,
        quantity: create.quantity,
    };
    match state.store.add_item(caller.id, item).await? {
        AddOutcome::Added(cart) => Ok((StatusCode::CREATED, Json(cart))),
        AddOutcome::TooMany { in_cart } => Err(ApiError::validation(
            "quantity",
            format!("a cart line holds at most {MAX_ITEM_QUANTITY} units; {in_cart} already in it"),
        )),
        AddOutcome::CartFull => Err(ApiError::validation(
            "product_id",
            format!(
                "a cart holds at most {MAX_CART_LINES} different products, as many as one order accepts"
            ),
        )),
    }
}

/// Changes the quantity of a line of the cart.
#[utoipa::path(put, path = "/cart/items/{item_id}", tag = "cart", request_body = CartItemUpdate,
    params(("item_id" = Uuid, Path, description = "The cart line's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated cart", body = Cart),
        (status = 400, description = "Malformed JSON or id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such line in the caller's cart", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid quantity, or the product no longer exists", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The backend failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store or the backend is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The backend did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_item(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(item_id): Path<Uuid>,
    Json(update): Json<CartItemUpdate>,
) -> ApiResult<Json<Cart>> {
    check_quantity(update.quantity)?;
    let cart = state.store.get(caller.id).await?;
    let line = cart
        .items
        .iter()
        .find(|item| item.id == item_id)
        .ok_or_else(|| no_such_item(item_id))?;
    state
        .catalog
        .checked(line.product_id, |product| {
            check_stock(product, update.quantity, 0)
        })
        .await?;
    let cart = state
        .store
        .set_quantity(caller.id, item_id, update.quantity)
        .await?;
    cart.map(Json).ok_or_else(|| no_such_item(item_id))
}

/// Stock is checked again at checkout, where it is reserved; this only spares the customer a
/// cart that cannot be ordered, so it may use a product read a moment ago (`crate::catalog`).
fn check_stock(product: &Product, wanted: i64, in_cart: i64) -> ApiResult<()> {
    if product.stock < in_cart + wanted {
        return Err(ApiError::Conflict(format!(
            "only {} of {} in stock, {in_cart} already in your cart",
            product.stock, product.name
        )));
    }
    Ok(())
}

/// Removes a line from the cart.
#[utoipa::path(delete, path = "/cart/items/{item_id}", tag = "cart",
    params(("item_id" = Uuid, Path, description = "The cart line's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart without the line", body = Cart),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such line in the caller's cart", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_item(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(item_id): Path<Uuid>,
) -> ApiResult<Json<Cart>> {
    let cart = state.store.remove_item(caller.id, item_id).await?;
    cart.map(Json).ok_or_else(|| no_such_item(item_id))
}

fn no_such_item(item_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("your cart has no item {item_id}"))
}

/// What the cart costs at the prices its items were added at.
#[utoipa::path(get, path = "/cart/total", tag = "cart", security(("bearer" = [])),
    responses(
        (status = 200, description = "The total", body = CartTotal),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn total(State(state): State<AppState>, caller: AuthUser) -> ApiResult<Json<CartTotal>> {
    let cart = state.store.get(caller.id).await?;
    Ok(Json(CartTotal {
        total_cents: cart.total_cents,
        item_count: cart.item_count,
    }))
}

/// Turns the cart into an order at the prices of this moment, then empties it.
///
/// Checking out the same cart twice (a retry, a double click) yields one order.
#[utoipa::path(post, path = CheckoutCart::ROUTE, tag = "cart", security(("bearer" = [])),
    responses(
        (status = 201, description = "The order", body = Order),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The cart is empty or a product is out of stock", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A product in the cart no longer exists", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The order service failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store or the order service is unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The order service did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn checkout(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<(StatusCode, Json<Order>)> {
    let cart = state.store.get(caller.id).await?;
    let result = order_cart(&state, &caller, &cart).await;
    state.business.checkout(&result, cart.items.is_empty());
    result
}

async fn order_cart(
    state: &AppState,
    caller: &AuthUser,
    cart: &Cart,
) -> ApiResult<(StatusCode, Json<Order>)> {
    if cart.items.is_empty() {
        return Err(ApiError::Conflict("the cart is empty".to_owned()));
    }
    let request = OrderCreate {
        items: cart
            .items
            .iter()
            .map(|item| StockLine {
                product_id: item.product_id,
                quantity: item.quantity,
            })
            .collect(),
    };
    let place = PlaceOrder {
        request,
        idempotency_key: checkout_key(cart),
    };
    let order = state
        .order_service
        .call(&place, caller.credentials())
        .await?;
    state.store.remove_ordered(caller.id, &cart.items).await?;
    Ok((StatusCode::CREATED, Json(order)))
}
