//! The catalogue as other services see it: products, and stock reservations for orders.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A product of the catalogue. Prices are integer cents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub category: String,
    /// Price in cents (minor currency units).
    pub price_cents: i64,
    /// Units available for sale (not reserved by orders).
    pub stock: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Units of one product wanted by an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockLine {
    pub product_id: Uuid,
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: i64,
}

/// Stock to hold for an order: all lines or none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationRequest {
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<StockLine>,
}

/// A reserved line, with the product as it was at reservation time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReservedLine {
    pub product_id: Uuid,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reservation {
    pub id: Uuid,
    pub items: Vec<ReservedLine>,
    pub created_at: DateTime<Utc>,
    /// Until its order commits it, the stock goes back to the shelf at this moment.
    pub expires_at: DateTime<Utc>,
}
