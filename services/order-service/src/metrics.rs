//! What the order service counts beyond HTTP: orders, revenue, statuses and the processor's
//! backlog.

use chrono::{DateTime, Utc};
use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};
use shop_common::models::order::OrderStatus;
use shop_common::telemetry::metrics::{counter, register};

#[derive(Clone)]
pub struct OrderMetrics {
    created: IntCounter,
    cancelled: IntCounter,
    revenue_cents: IntCounter,
    by_status: IntGaugeVec,
    backlog: IntGauge,
    lag_seconds: IntGauge,
}

impl OrderMetrics {
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self {
            created: counter(registry, "shop_orders_created_total", "Orders placed."),
            cancelled: counter(registry, "shop_orders_cancelled_total", "Orders cancelled."),
            revenue_cents: counter(
                registry,
                "shop_revenue_cents_total",
                "Value of orders placed, in cents.",
            ),
            by_status: register(
                registry,
                IntGaugeVec::new(
                    Opts::new("shop_orders", "Orders by current status."),
                    &["status"],
                ),
            ),
            backlog: register(
                registry,
                IntGauge::new(
                    "shop_order_processing_backlog",
                    "Orders overdue for their next automatic status step.",
                ),
            ),
            lag_seconds: register(
                registry,
                IntGauge::new(
                    "shop_order_processing_lag_seconds",
                    "How overdue the oldest overdue order is, in seconds.",
                ),
            ),
        };
        // Every status has a series from the start, even at zero.
        for status in OrderStatus::ALL {
            metrics.by_status.with_label_values(&[status.as_str()]);
        }
        metrics
    }

    pub fn order_created(&self, total_cents: i64) {
        self.created.inc();
        self.revenue_cents
            .inc_by(u64::try_from(total_cents).unwrap_or_default());
    }

    pub fn order_cancelled(&self) {
        self.cancelled.inc();
    }

    pub fn set_status_counts(&self, counts: &[(OrderStatus, i64)]) {
        for (status, count) in counts {
            self.by_status
                .with_label_values(&[status.as_str()])
                .set(*count);
        }
    }

    pub fn set_backlog(
        &self,
        overdue: i64,
        oldest_due_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        self.backlog.set(overdue);
        let lag = oldest_due_since.map_or(0, |since| (now - since).num_seconds().max(0));
        self.lag_seconds.set(lag);
    }
}
