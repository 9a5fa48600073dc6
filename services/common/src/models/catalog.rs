//! The catalogue as other services see it: products, and stock reservations for orders,
//! and the calls that read a product and reserve, commit and release stock.

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::operation::{Body, BodyError, Operation, path_with};
use crate::topology;

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

/// Reads one product (the cart service prices a new line with it).
pub struct GetProduct {
    pub product_id: Uuid,
}

impl Operation for GetProduct {
    const PREFIX: &'static str = topology::BACKEND.prefix;
    const ROUTE: &'static str = "/products/{product_id}";
    const METHOD: Method = Method::GET;
    type Response = Product;

    fn path(&self) -> String {
        path_with::<Self>(self.product_id)
    }
}

/// Holds stock for the order `reservation_id` (the order's own id).
pub struct ReserveStock {
    pub reservation_id: Uuid,
    pub request: ReservationRequest,
}

/// Binds a reservation to its written order, so it no longer expires.
pub struct CommitReservation {
    pub reservation_id: Uuid,
}

/// Returns a reservation's stock.
pub struct ReleaseStock {
    pub reservation_id: Uuid,
}

const RESERVATION: &str = "/internal/reservations/{reservation_id}";

impl Operation for ReserveStock {
    const PREFIX: &'static str = topology::BACKEND.prefix;
    const ROUTE: &'static str = RESERVATION;
    const METHOD: Method = Method::PUT;
    type Response = Reservation;

    fn path(&self) -> String {
        path_with::<Self>(self.reservation_id)
    }

    fn body(&self) -> Result<Option<Body>, BodyError> {
        Body::json(&self.request).map(Some)
    }
}

impl Operation for CommitReservation {
    const PREFIX: &'static str = topology::BACKEND.prefix;
    const ROUTE: &'static str = "/internal/reservations/{reservation_id}/commit";
    const METHOD: Method = Method::PUT;
    type Response = Reservation;

    fn path(&self) -> String {
        path_with::<Self>(self.reservation_id)
    }
}

impl Operation for ReleaseStock {
    const PREFIX: &'static str = topology::BACKEND.prefix;
    const ROUTE: &'static str = RESERVATION;
    const METHOD: Method = Method::DELETE;
    type Response = ();

    fn path(&self) -> String {
        path_with::<Self>(self.reservation_id)
    }
}
