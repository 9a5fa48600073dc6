//! Orders, as the order service serves them and the cart and user services use them, and
//! the calls that place and read them and report their changes to the user service.

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::catalog::StockLine;
use super::operation::{Body, BodyError, Operation};
use crate::topology;

pub const MAX_ORDER_LINES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        Self::Pending,
        Self::Processing,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    /// The step the background processor takes next, if any.
    pub fn next_automatic(self) -> Option<Self> {
        match self {
            Self::Pending => Some(Self::Processing),
            Self::Processing => Some(Self::Shipped),
            Self::Shipped => Some(Self::Delivered),
            Self::Delivered | Self::Cancelled => None,
        }
    }

    /// Orders can be cancelled only before they ship.
    pub fn is_cancellable(self) -> bool {
        matches!(self, Self::Pending | Self::Processing)
    }

    /// Forward moves along the life cycle, or a cancellation before shipping.
    pub fn can_become(self, next: Self) -> bool {
        if next == Self::Cancelled {
            return self.is_cancellable();
        }
        let rank = |s: Self| Self::ALL.iter().position(|x| *x == s);
        self != Self::Cancelled && rank(next) > rank(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderItem {
    pub product_id: Uuid,
    pub name: String,
    /// The price when the order was placed.
    pub unit_price_cents: i64,
    pub quantity: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusChange {
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<OrderItem>,
    pub total_cents: i64,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every status the order has had, oldest first.
    pub history: Vec<StatusChange>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCreate {
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<StockLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderStatusUpdate {
    pub status: OrderStatus,
}

/// Sent to the user service whenever an order changes status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderEvent {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub occurred_at: DateTime<Utc>,
}

/// A user's orders in numbers. Cancelled orders are not spent money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderSummary {
    pub user_id: Uuid,
    pub order_count: i64,
    pub total_spent_cents: i64,
}

/// Places an order: the cart service's checkout. Deduplicated by its key, so a retry
/// places the order once.
pub struct PlaceOrder {
    pub request: OrderCreate,
    pub idempotency_key: String,
}

impl Operation for PlaceOrder {
    const PREFIX: &'static str = topology::ORDER.prefix;
    const ROUTE: &'static str = "/orders/";
    const METHOD: Method = Method::POST;
    type Response = Order;

    fn body(&self) -> Result<Option<Body>, BodyError> {
        Body::json(&self.request).map(Some)
    }

    fn idempotency_key(&self) -> Option<String> {
        Some(self.idempotency_key.clone())
    }
}

/// The caller's own orders, newest first: `limit` of them, or the service's default page.
pub struct ListOwnOrders {
    pub limit: Option<usize>,
}

impl Operation for ListOwnOrders {
    const PREFIX: &'static str = topology::ORDER.prefix;
    const ROUTE: &'static str = "/orders/";
    const METHOD: Method = Method::GET;
    type Response = Vec<Order>;

    fn path(&self) -> String {
        let own = format!("{}{}?scope=own", Self::PREFIX, Self::ROUTE);
        match self.limit {
            Some(limit) => format!("{own}&limit={limit}"),
            None => own,
        }
    }
}

/// The caller's orders in numbers.
pub struct GetOrderSummary;

impl Operation for GetOrderSummary {
    const PREFIX: &'static str = topology::ORDER.prefix;
    const ROUTE: &'static str = "/orders/summary";
    const METHOD: Method = Method::GET;
    type Response = OrderSummary;
}

/// Tells the user service of an order's status change; deduplicated per order and status.
pub struct RecordOrderEvent {
    pub event: OrderEvent,
}

impl Operation for RecordOrderEvent {
    const PREFIX: &'static str = topology::USER.prefix;
    const ROUTE: &'static str = "/internal/order-events";
    const METHOD: Method = Method::POST;
    type Response = ();

    fn body(&self) -> Result<Option<Body>, BodyError> {
        Body::json(&self.event).map(Some)
    }

    fn idempotency_key(&self) -> Option<String> {
        Some(format!(
            "{}-{}",
            self.event.order_id,
            self.event.status.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;

    #[test]
    fn moves_only_forward_and_cancels_only_before_shipping() {
        assert!(Pending.can_become(Shipped));
        assert!(Processing.can_become(Cancelled));
        assert!(!Shipped.can_become(Cancelled));
        assert!(!Delivered.can_become(Pending));
        assert!(!Cancelled.can_become(Processing));
        assert!(!Pending.can_become(Pending));
    }
}
