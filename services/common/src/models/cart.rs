//! Carts, as the cart service serves them and the user service relays them, and the calls
//! that read and check out a cart.

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::operation::Operation;
use super::order::Order;
use crate::topology;

pub const MAX_ITEM_QUANTITY: i64 = 100;
/// Distinct products one cart holds: as many lines as one order accepts, so that a cart
/// that could be filled can also be checked out.
pub const MAX_CART_LINES: usize = super::order::MAX_ORDER_LINES;

/// A product in a cart, with its price when it was added (checkout uses the price of that moment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CartItem {
    /// The cart line's own id, used to change or remove it.
    pub id: Uuid,
    pub product_id: Uuid,
    pub name: String,
    pub unit_price_cents: i64,
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
    pub line_total_cents: i64,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cart {
    pub user_id: Uuid,
    pub items: Vec<CartItem>,
    pub total_cents: i64,
    /// Units in the cart, all lines together.
    pub item_count: i64,
    /// Changes on every write; checkout uses it to tell which cart it ordered.
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartItemCreate {
    pub product_id: Uuid,
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartItemUpdate {
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CartTotal {
    pub total_cents: i64,
    pub item_count: i64,
}

/// The caller's cart.
pub struct GetCart;

impl Operation for GetCart {
    const PREFIX: &'static str = topology::CART.prefix;
    const ROUTE: &'static str = "/cart/";
    const METHOD: Method = Method::GET;
    type Response = Cart;
}

/// Orders the caller's cart.
pub struct CheckoutCart;

impl Operation for CheckoutCart {
    const PREFIX: &'static str = topology::CART.prefix;
    const ROUTE: &'static str = "/cart/checkout";
    const METHOD: Method = Method::POST;
    type Response = Order;
}
