//! Placing an order, in one place: reserve the stock, write the order, commit the
//! reservation to it, and only then answer 201.
//!
//! The rule that keeps stock and orders in step: an order leaves `pending` (and a client
//! sees 201) only once its reservation is committed; stock is released only when no order
//! holds it. A reservation nobody commits expires and the backend takes its stock back; an
//! order whose reservation expired is cancelled by the processor before it moves on. A
//! placing that failed after its reservation leaves the reservation to a retry of the same
//! order or to its expiry, so a retry never finds its stock already given back.

use axum::http::StatusCode;
use chrono::Utc;
use shop_common::ApiError;
use shop_common::client::{Credentials, UpstreamError};
use shop_common::models::catalog::{
    CommitReservation, Reservation, ReservationRequest, ReserveStock,
};
use shop_common::models::order::{Order, OrderCreate, OrderStatus};
use uuid::Uuid;

use crate::domain::order_from;
use crate::lifecycle::Lifecycle;
use crate::store::CreateOutcome;

/// What committing an order's reservation came to.
pub enum Commitment {
    Committed,
    /// The reservation expired or was released: the order must not go ahead.
    Lost,
}

impl Lifecycle {
    /// Places order `id` for `user_id`: 201 with the new order, or 200 with the one a
    /// repeated request placed before.
    pub async fn place(
        &self,
        id: Uuid,
        user_id: Uuid,
        create: OrderCreate,
    ) -> Result<(StatusCode, Order), ApiError> {
        let reservation = self.reserve(id, create).await?;
        let order = order_from(&reservation, user_id, Utc::now());
        let (status, order) = match self.store.create(&order).await {
            Ok(CreateOutcome::Created) => (StatusCode::CREATED, order),
            Ok(CreateOutcome::Exists(existing)) => {
                return self.confirm(StatusCode::OK, existing).await;
            }
            Err(err) => (StatusCode::CREATED, self.read_back(id, err.into()).await?),
        };
        self.metrics.order_created(order.total_cents);
        self.confirm(status, order).await
    }

    /// Commits the order's reservation before the client hears that the order exists.
    async fn confirm(
        &self,
        status: StatusCode,
        order: Order,
    ) -> Result<(StatusCode, Order), ApiError> {
        let id = order.id;
        match self.commit(id).await? {
            Commitment::Committed => {
                if status == StatusCode::CREATED {
                    self.notify(&order);
                }
                Ok((status, order))
            }
            Commitment::Lost => {
                self.cancel_uncommitted(&order).await;
                Err(ApiError::Conflict(format!(
                    "order {id} took too long to place and its stock went back on sale; try again"
                )))
            }
        }
    }

    async fn reserve(&self, id: Uuid, create: OrderCreate) -> Result<Reservation, ApiError> {
        let reserve = ReserveStock {
            reservation_id: id,
            request: ReservationRequest {
                items: create.items,
            },
        };
        Ok(self.backend.call(&reserve, Credentials::Service).await?)
    }

    /// Binds the order's reservation to it. Idempotent, so the processor may repeat it for
    /// an order whose placing was cut off.
    pub async fn commit(&self, id: Uuid) -> Result<Commitment, UpstreamError> {
        let commit = CommitReservation { reservation_id: id };
        let committed = self.backend.call(&commit, Credentials::Service).await;
        match committed {
            Ok(_) => Ok(Commitment::Committed),
            Err(UpstreamError::Status { status, .. }) if status == StatusCode::CONFLICT => {
                Ok(Commitment::Lost)
            }
            Err(err) => Err(err),
        }
    }

    /// The order was written, or not, or maybe: a write that timed out may yet have
    /// applied, and a read at quorum cannot rule out that it still will. So the
    /// reservation is never released here: a retry of the same order (the cart service
    /// retries a checkout that timed out, under the same idempotency key) finds it and
    /// finishes the order, and when no retry comes it expires, unless the processor finds
    /// the order and commits it.
    async fn read_back(&self, id: Uuid, err: ApiError) -> Result<Order, ApiError> {
        match self.store.get(id).await {
            Ok(Some(order)) => {
                tracing::warn!(order_id = %id, "the order's write failed, yet it is there");
                Ok(order)
            }
            Ok(None) => {
                tracing::warn!(order_id = %id, "the order's write failed; its reservation waits for a retry or its expiry");
                Err(err)
            }
            Err(read) => {
                tracing::warn!(order_id = %id, error = %read, "order's fate unknown; its reservation expires unless the order appears");
                Err(err)
            }
        }
    }

    /// Cancels an order whose reservation was lost before it was committed. The client
    /// was never told it was placed.
    pub async fn cancel_uncommitted(&self, order: &Order) {
        if order.status != OrderStatus::Pending {
            return;
        }
        if let Err(err) = self.change_status(order, OrderStatus::Cancelled).await {
            tracing::warn!(order_id = %order.id, error = %err, "order without stock not cancelled yet; will retry");
        }
    }
}
