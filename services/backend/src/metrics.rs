//! What the backend counts beyond HTTP: stock reservations and the conflicts among them.

use prometheus::{IntCounter, IntCounterVec, Registry};
use shop_common::telemetry::metrics::{counter, counter_vec};

use crate::domain::{ReservationState, ReserveOutcome};

#[derive(Clone)]
pub struct BackendMetrics {
    reservations: IntCounterVec,
    conflicts: IntCounter,
    reclaimed: IntCounterVec,
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
            reclaimed: counter_vec(
                registry,
                "shop_stock_reservations_reclaimed_total",
                "Reservations that expired without an order and had their stock taken back, \
                 by the state they were left in.",
                &["state"],
            ),
        };
        // Every series exists from the start, so the first event shows up in rate().
        for outcome in OUTCOMES {
            metrics.reservations.with_label_values(&[outcome]);
        }
        for state in ReservationState::ALL
            .into_iter()
            .filter(|s| s.is_reclaimable())
        {
            metrics.reclaimed.with_label_values(&[state.as_str()]);
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

    pub fn reclaimed(&self, state: ReservationState) {
        self.reclaimed.with_label_values(&[state.as_str()]).inc();
    }
}
