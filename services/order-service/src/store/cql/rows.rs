//! How orders and index entries are read from, and written to, their rows.

use chrono::{DateTime, Utc};
use scylla::value::Counter;
use scylla::{DeserializeRow, DeserializeValue, SerializeValue};
use shop_common::cql::results::decode_error;
use shop_common::models::order::{Order, OrderItem, OrderStatus, StatusChange};
use shop_common::store::{StoreError, StoreResult};
use uuid::Uuid;

#[derive(SerializeValue, DeserializeValue)]
pub(super) struct StatusChangeValue {
    pub(super) status: String,
    pub(super) at: DateTime<Utc>,
}

#[derive(DeserializeRow)]
pub(super) struct OrderRow {
    pub(super) id: Uuid,
    pub(super) user_id: Uuid,
    pub(super) items: String,
    pub(super) total_cents: i64,
    pub(super) status: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) history: Option<Vec<StatusChangeValue>>,
}

impl OrderRow {
    pub(super) fn into_order(self) -> StoreResult<Order> {
        let items: Vec<OrderItem> = serde_json::from_str(&self.items).map_err(|err| {
            StoreError::Unavailable(format!("order {} is unreadable: {err}", self.id))
        })?;
        let history = self
            .history
            .unwrap_or_default()
            .into_iter()
            .map(|change| {
                Ok(StatusChange {
                    status: parse_status(&change.status)?,
                    at: change.at,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Order {
            id: self.id,
            user_id: self.user_id,
            items,
            total_cents: self.total_cents,
            status: parse_status(&self.status)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            history,
        })
    }
}

#[derive(DeserializeRow)]
pub(super) struct UserOrderRow {
    pub(super) created_at: DateTime<Utc>,
    pub(super) order_id: Uuid,
}

#[derive(DeserializeRow)]
pub(super) struct ActiveRow {
    pub(super) order_id: Uuid,
    pub(super) status: String,
    pub(super) updated_at: DateTime<Utc>,
}

#[derive(DeserializeRow)]
pub(super) struct UnreleasedRow {
    pub(super) order_id: Uuid,
}

#[derive(DeserializeRow)]
pub(super) struct StatusCountRow {
    pub(super) status: String,
    pub(super) orders: Option<Counter>,
}

impl From<&StatusChange> for StatusChangeValue {
    fn from(change: &StatusChange) -> Self {
        Self {
            status: change.status.as_str().to_owned(),
            at: change.at,
        }
    }
}

pub(super) fn parse_status(text: &str) -> StoreResult<OrderStatus> {
    OrderStatus::ALL
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| decode_error(format!("unknown order status {text:?}")))
}
