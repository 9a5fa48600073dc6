//! What happens around a status change: stock goes back on cancellation, the user service
//! hears of every change, and a background processor moves orders along their life cycle.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shop_common::client::{Credentials, Upstream};
use shop_common::models::catalog::ReleaseStock;
use shop_common::models::order::{Order, OrderEvent, OrderStatus, RecordOrderEvent};
use shop_common::{ApiError, ApiResult};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics::OrderMetrics;
use crate::placement::Commitment;
use crate::store::{OrderStore, TransitionOutcome};

const BATCH: usize = 100;

#[derive(Clone)]
pub struct Lifecycle {
    pub store: Arc<dyn OrderStore>,
    pub backend: Upstream,
    pub user_service: Upstream,
    pub metrics: OrderMetrics,
}

impl Lifecycle {
    /// Moves `order` to `to` if nobody moved it meanwhile; returns its stock on cancellation.
    pub async fn change_status(&self, order: &Order, to: OrderStatus) -> ApiResult<Order> {
        if !order.status.can_become(to) {
            return Err(ApiError::Conflict(format!(
                "an order that is {} cannot become {}",
                order.status.as_str(),
                to.as_str()
            )));
        }
        let changed = match self
            .store
            .transition(order.id, order.status, to, Utc::now())
            .await?
        {
            TransitionOutcome::Changed(changed) => changed,
            TransitionOutcome::NotFound => {
                return Err(ApiError::NotFound(format!(
                    "order {} does not exist",
                    order.id
                )));
            }
            TransitionOutcome::Conflict(now) => {
                return Err(ApiError::Conflict(format!(
                    "the order changed meanwhile and is now {}",
                    now.status.as_str()
                )));
            }
        };
        if to == OrderStatus::Cancelled {
            self.metrics.order_cancelled();
            self.release_stock(order.id).await;
        }
        self.notify(&changed);
        Ok(changed)
    }

    /// Returns a cancelled order's stock. On failure the processor tries again later, so stock
    /// is never lost, only late.
    pub async fn release_stock(&self, order_id: Uuid) {
        let release = ReleaseStock {
            reservation_id: order_id,
        };
        let released = self.backend.call(&release, Credentials::Service).await;
        match released {
            Ok(_) => {
                if let Err(err) = self.store.mark_stock_released(order_id).await {
                    tracing::warn!(%order_id, error = %err, "stock returned but not recorded");
                }
            }
            Err(err) => {
                tracing::warn!(%order_id, error = %err, "stock not returned yet; will retry");
            }
        }
    }

    /// Tells the user service, in the background: a slow notification never slows an order.
    pub fn notify(&self, order: &Order) {
        let event = OrderEvent {
            order_id: order.id,
            user_id: order.user_id,
            status: order.status,
            total_cents: order.total_cents,
            occurred_at: order.updated_at,
        };
        let user_service = self.user_service.clone();
        tokio::spawn(async move {
            let record = RecordOrderEvent { event };
            if let Err(error) = user_service.call(&record, Credentials::Service).await {
                tracing::warn!(order_id = %record.event.order_id, %error, "user service not notified");
            }
        });
    }

    /// One pass of the processor: advance every order whose step time has come, and retry
    /// stock releases that failed before.
    pub async fn process_due(&self, step: Duration) {
        let now = Utc::now();
        let cutoff = now - chrono::Duration::from_std(step).unwrap_or_default();
        self.observe(cutoff, now).await;
        match self.store.due_for_processing(cutoff, BATCH).await {
            Ok(due) => {
                for order in due {
                    self.advance(&order).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot read orders to process"),
        }
        match self.store.unreleased_cancellations(BATCH).await {
            Ok(ids) => {
                for id in ids {
                    self.release_stock(id).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot read pending stock releases"),
        }
    }

    /// Moves an order one step on. A pending order goes on only once its reservation is
    /// committed: placing it may have been cut off before the commit.
    async fn advance(&self, order: &Order) {
        let Some(next) = order.status.next_automatic() else {
            return;
        };
        if order.status == OrderStatus::Pending {
            match self.commit(order.id).await {
                Ok(Commitment::Committed) => {}
                Ok(Commitment::Lost) => return self.cancel_uncommitted(order).await,
                Err(err) => {
                    tracing::debug!(order_id = %order.id, error = %err, "reservation not committed yet");
                    return;
                }
            }
        }
        if let Err(err) = self.change_status(order, next).await {
            tracing::debug!(order_id = %order.id, error = %err, "order not advanced");
        }
    }

    /// Refreshes the status and backlog gauges. Lag counts from when an order became due.
    async fn observe(&self, cutoff: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) {
        match self.store.backlog(cutoff).await {
            Ok((overdue, oldest)) => {
                let due_since = oldest.map(|changed| changed + (now - cutoff));
                self.metrics.set_backlog(overdue, due_since, now);
            }
            Err(err) => tracing::warn!(error = %err, "cannot measure the order backlog"),
        }
        match self.store.status_counts().await {
            Ok(counts) => self.metrics.set_status_counts(&counts),
            Err(err) => tracing::warn!(error = %err, "cannot count orders by status"),
        }
    }

    /// Runs the processor until `shutdown` is cancelled.
    pub async fn run_processor(self, step: Duration, tick: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => self.process_due(step).await,
            }
        }
    }
}
