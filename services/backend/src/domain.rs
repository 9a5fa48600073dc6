//! Products and stock reservations, with the limits the API enforces.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_common::ApiError;
pub use shop_common::models::catalog::{
    Product, Reservation, ReservationRequest, ReservedLine, StockLine,
};
use shop_common::validate::Validator;
use utoipa::ToSchema;
use uuid::Uuid;

pub const MAX_PRICE_CENTS: i64 = 100_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_RESERVATION_LINES: usize = 100;
pub const MAX_LINE_QUANTITY: i64 = 10_000;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreate {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    #[serde(default = "default_category")]
    #[schema(min_length = 1, max_length = 100, default = "general")]
    pub category: String,
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub price_cents: i64,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: i64,
}

fn default_category() -> String {
    "general".to_owned()
}

/// A partial update: absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub category: Option<String>,
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub price_cents: Option<i64>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<i64>,
}

impl ProductCreate {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut v = Validator::new();
        check_name(&mut v, &self.name);
        check_description(&mut v, &self.description);
        check_category(&mut v, &self.category);
        v.range("price_cents", self.price_cents, 0, MAX_PRICE_CENTS)
            .range("stock", self.stock, 0, MAX_STOCK)
            .finish()
    }

    pub fn into_product(self, now: DateTime<Utc>) -> Product {
        Product {
            id: Uuid::new_v4(),
            name: self.name.trim().to_owned(),
            description: self.description,
            category: self.category.trim().to_owned(),
            price_cents: self.price_cents,
            stock: self.stock,
            created_at: now,
            updated_at: now,
        }
    }
}

impl ProductUpdate {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut v = Validator::new();
        if let Some(name) = &self.name {
            check_name(&mut v, name);
        }
        if let Some(description) = &self.description {
            check_description(&mut v, description);
        }
        if let Some(category) = &self.category {
            check_category(&mut v, category);
        }
        if let Some(price) = self.price_cents {
            v.range("price_cents", price, 0, MAX_PRICE_CENTS);
        }
        if let Some(stock) = self.stock {
            v.range("stock", stock, 0, MAX_STOCK);
        }
        v.finish()
    }

    pub fn apply(&self, product: &mut Product, now: DateTime<Utc>) {
        if let Some(name) = &self.name {
            product.name = name.trim().to_owned();
        }
        if let Some(description) = &self.description {
            product.description.clone_from(description);
        }
        if let Some(category) = &self.category {
            product.category = category.trim().to_owned();
        }
        if let Some(price) = self.price_cents {
            product.price_cents = price;
        }
        if let Some(stock) = self.stock {
            product.stock = stock;
        }
        product.updated_at = now;
    }
}

fn check_name(v: &mut Validator, name: &str) {
    v.text("name", name, 1, 200).non_blank("name", name);
}

fn check_description(v: &mut Validator, description: &str) {
    v.text("description", description, 0, 2000);
}

fn check_category(v: &mut Validator, category: &str) {
    v.text("category", category, 1, 100)
        .non_blank("category", category);
}

/// Validates and merges repeated products, so each product is checked once.
pub fn reservation_lines(request: ReservationRequest) -> Result<Vec<StockLine>, ApiError> {
    let mut v = Validator::new();
    v.check(
        (1..=MAX_RESERVATION_LINES).contains(&request.items.len()),
        "items",
        || format!("must hold between 1 and {MAX_RESERVATION_LINES} lines"),
    );
    for (index, line) in request.items.iter().enumerate() {
        v.range(
            &format!("items.{index}.quantity"),
            line.quantity,
            1,
            MAX_LINE_QUANTITY,
        );
    }
    v.finish()?;
    let mut merged: Vec<StockLine> = Vec::with_capacity(request.items.len());
    for line in request.items {
        match merged.iter_mut().find(|m| m.product_id == line.product_id) {
            Some(existing) => existing.quantity += line.quantity,
            None => merged.push(line),
        }
    }
    Ok(merged)
}

/// Why a reservation was refused, or the reservation itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved(Reservation),
    UnknownProduct(Uuid),
    InsufficientStock {
        product_id: Uuid,
        available: i64,
    },
    /// The id was used before and its stock already returned; ids are never reused.
    AlreadyReleased,
}

/// Where a reservation is in its life. Stock is held from `Pending` (line by line) until
/// `Released`; only a `Committed` reservation belongs to an order, and only a reservation
/// that is not committed can expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReservationState {
    /// Claimed; its lines are being taken.
    Pending,
    /// Every line taken; waiting for its order to commit it before it expires.
    Reserved,
    /// Its order exists: held until the order is cancelled, or for good once it ships.
    Committed,
    /// Its stock is being returned; a retry or the sweeper finishes the job.
    Releasing,
    /// Its stock is back. Final.
    Released,
}

impl ReservationState {
    pub const ALL: [ReservationState; 5] = [
        Self::Pending,
        Self::Reserved,
        Self::Committed,
        Self::Releasing,
        Self::Released,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Committed => "committed",
            Self::Releasing => "releasing",
            Self::Released => "released",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Whether the sweeper may take this reservation's stock back once it has expired.
    pub fn is_reclaimable(self) -> bool {
        matches!(self, Self::Pending | Self::Reserved | Self::Releasing)
    }
}

/// What committing a reservation to its order came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed(Reservation),
    /// Its stock went back (it expired, or was released): the order must not go ahead.
    Released,
    /// Still being made by another call; try again.
    NotReady,
    Unknown,
}

/// One product's stock books: what came in, what is on the shelf and what reservations hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductLedger {
    pub product_id: Uuid,
    pub name: String,
    /// Units on sale now.
    pub stock: i64,
    /// Units held by reservations that are not released (committed ones belong to orders).
    pub held: i64,
    /// Units ever put in: the stock it was created with, plus every restock, minus every
    /// reduction an admin made. `None` for a product written before the ledger existed.
    pub received: Option<i64>,
    /// Whether `stock + held == received`.
    pub conserved: bool,
}

/// A reservation the audit finds wrong: expired with no order, or stuck half-way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReservationFinding {
    pub reservation_id: Uuid,
    pub state: ReservationState,
    pub expires_at: DateTime<Utc>,
}

/// The backend's own books: every product's ledger and every reservation past its expiry
/// that no order committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StockAudit {
    pub checked_at: DateTime<Utc>,
    pub products: Vec<ProductLedger>,
    /// Reservations not committed and not released although their expiry has passed.
    pub overdue: Vec<ReservationFinding>,
    /// Reservations still being made or returned (a busy shop always has a few young ones).
    pub in_flight: i64,
    pub committed: i64,
    /// Whether every product's stock is conserved and nothing is overdue.
    pub passed: bool,
}

impl StockAudit {
    pub fn new(
        checked_at: DateTime<Utc>,
        products: Vec<ProductLedger>,
        overdue: Vec<ReservationFinding>,
        in_flight: i64,
        committed: i64,
    ) -> Self {
        let passed = overdue.is_empty() && products.iter().all(|p| p.conserved);
        Self {
            checked_at,
            products,
            overdue,
            in_flight,
            committed,
            passed,
        }
    }
}

impl ProductLedger {
    pub fn new(
        product_id: Uuid,
        name: String,
        stock: i64,
        received: Option<i64>,
        held: i64,
    ) -> Self {
        Self {
            product_id,
            name,
            stock,
            held,
            received,
            conserved: received.is_none_or(|received| stock + held == received),
        }
    }
}
