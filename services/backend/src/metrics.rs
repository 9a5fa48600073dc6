//! What the backend counts beyond HTTP: stock reservations and the conflicts among them.

use prometheus::{IntCounter, IntCounterVec, Registry};
use shop_common::telemetry::metrics::{counter, counter_vec};

use crate::domain::ReserveOutcome;

#[derive(Clone)]
pub struct BackendMetrics {
    reservations: IntCounterVec,
    conflicts: IntCounter,
}

const OUTCOMES: [&str; 4] = [
    "reserved",
    "insufficient_stock",
    "unknown_product",
    "already_released",
];

impl BackendMetrics {
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self {
            reservations: counter_vec(
                registry,
                "shop_stock_reservations_total",
                "Stock reservation requests, by outcome.",
                &["outcome"],
            ),
            conflicts: counter(
                registry,
                "shop_stock_reservation_conflicts_total",
                "Reservations refused because the stock was not there.",
            ),
        };
        // Every series exists from the start, so the first event shows up in rate().
        for outcome in OUTCOMES {
            metrics.reservations.with_label_values(&[outcome]);
        }
        metrics
    }

    pub fn record(&self, outcome: &ReserveOutcome) {
        let label = match outcome {
            ReserveOutcome::Reserved(_) => "reserved",
            ReserveOutcome::InsufficientStock { .. } => {
                self.conflicts.inc();
                "insufficient_stock"
            }
            ReserveOutcome::UnknownProduct(_) => "unknown_product",
            ReserveOutcome::AlreadyReleased => "already_released",
        };
        self.reservations.with_label_values(&[label]).inc();
    }
}
