//! Products and stock reservations, with the limits the API enforces.

use chrono::{DateTime, Utc};
use serde::Deserialize;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_repeated_products() {
        let id = Uuid::new_v4();
        let lines = reservation_lines(ReservationRequest {
            items: vec![
                StockLine {
                    product_id: id,
                    quantity: 2,
                },
                StockLine {
                    product_id: id,
                    quantity: 3,
                },
            ],
        })
        .unwrap();
        assert_eq!(
            lines,
            [StockLine {
                product_id: id,
                quantity: 5
            }]
        );
    }

    #[test]
    fn refuses_negative_prices_and_blank_names() {
        let create = ProductCreate {
            name: "   ".into(),
            description: String::new(),
            category: "general".into(),
            price_cents: -1,
            stock: 1,
        };
        let Err(ApiError::Validation(errors)) = create.validate() else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "price_cents"]);
    }

    #[test]
    fn refuses_zero_quantities() {
        let request = ReservationRequest {
            items: vec![StockLine {
                product_id: Uuid::new_v4(),
                quantity: 0,
            }],
        };
        assert!(reservation_lines(request).is_err());
    }
}
