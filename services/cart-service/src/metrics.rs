//! What the cart service counts beyond HTTP: items added and checkouts, by outcome.

use axum::http::StatusCode;
use prometheus::{IntCounterVec, Registry};
use shop_common::ApiError;
use shop_common::telemetry::metrics::counter_vec;

#[derive(Clone)]
pub struct CartMetrics {
    adds: IntCounterVec,
    checkouts: IntCounterVec,
}

const ADD_OUTCOMES: [&str; 4] = ["success", "out_of_stock", "unknown_product", "error"];
const CHECKOUT_OUTCOMES: [&str; 4] = ["success", "empty_cart", "out_of_stock", "error"];

impl CartMetrics {
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self {
            adds: counter_vec(
                registry,
                "shop_cart_item_adds_total",
                "Attempts to add an item to a cart, by outcome.",
                &["outcome"],
            ),
            checkouts: counter_vec(
                registry,
                "shop_checkouts_total",
                "Checkouts, by outcome. The checkout SLI is success / (success + error).",
                &["outcome"],
            ),
        };
        // Every series exists from the start, so the first event shows up in rate().
        for outcome in ADD_OUTCOMES {
            metrics.adds.with_label_values(&[outcome]);
        }
        for outcome in CHECKOUT_OUTCOMES {
            metrics.checkouts.with_label_values(&[outcome]);
        }
        metrics
    }

    pub fn item_added<T>(&self, result: &Result<T, ApiError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(err) if err.status() == StatusCode::CONFLICT => "out_of_stock",
            Err(err) if err.status() == StatusCode::UNPROCESSABLE_ENTITY => "unknown_product",
            Err(err) if err.status().is_client_error() => return,
            Err(_) => "error",
        };
        self.adds.with_label_values(&[outcome]).inc();
    }

    /// Client mistakes other than an empty cart or missing stock are not checkouts at all.
    pub fn checkout<T>(&self, result: &Result<T, ApiError>, cart_was_empty: bool) {
        let outcome = match result {
            Ok(_) => "success",
            Err(_) if cart_was_empty => "empty_cart",
            Err(err) if err.status() == StatusCode::CONFLICT => "out_of_stock",
            Err(err) if err.status().is_client_error() => return,
            Err(_) => "error",
        };
        self.checkouts.with_label_values(&[outcome]).inc();
    }
}
