//! The order store: one trait, an in-process implementation as the embedded default.

mod cql;
mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shop_common::models::order::{Order, OrderStatus};
use shop_common::service::Stores;
use shop_common::store::{Ping, StoreResult};
use uuid::Uuid;

pub use cql::{CqlOrderStore, DEFAULT_KEYSPACE, SCHEMA};
pub use memory::MemoryOrderStore;

/// The two kinds of store, for the service and its store contract tests.
pub static STORES: Stores<dyn OrderStore> = Stores {
    schema: &SCHEMA,
    default_keyspace: DEFAULT_KEYSPACE,
    memory: || Arc::new(MemoryOrderStore::new()),
    cql: |cql| Arc::new(CqlOrderStore::new(cql)),
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// An order with this id exists already (a retried checkout): here it is.
    Exists(Order),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionOutcome {
    Changed(Order),
    NotFound,
    /// The order was not in the expected status (someone moved it first); here it is now.
    Conflict(Order),
}

#[async_trait]
pub trait OrderStore: Ping {
    /// Stores a new order. An order with its id already stored stands: `Exists` returns
    /// it, unless it is this very order, field for field, which a repeated write finds
    /// and reports `Created`.
    async fn create(&self, order: &Order) -> StoreResult<CreateOutcome>;
    async fn get(&self, id: Uuid) -> StoreResult<Option<Order>>;
    /// A user's orders, newest first.
    async fn list_for_user(&self, user_id: Uuid, limit: usize) -> StoreResult<Vec<Order>>;
    /// Everyone's orders, newest first.
    async fn list_all(&self, limit: usize) -> StoreResult<Vec<Order>>;
    /// Moves an order to `to` only if its status is still `from` (compare-and-set).
    async fn transition(
        &self,
        id: Uuid,
        from: OrderStatus,
        to: OrderStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<TransitionOutcome>;
    /// Orders in a non-final status whose last change is at or before `changed_before`.
    async fn due_for_processing(
        &self,
        changed_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Order>>;
    /// How many orders are due at `changed_before`, and the oldest one's last change.
    async fn backlog(
        &self,
        changed_before: DateTime<Utc>,
    ) -> StoreResult<(i64, Option<DateTime<Utc>>)>;
    /// How many orders are in each status now.
    async fn status_counts(&self) -> StoreResult<Vec<(OrderStatus, i64)>>;
    /// Cancelled orders whose stock has not been returned to the backend yet.
    async fn unreleased_cancellations(&self, limit: usize) -> StoreResult<Vec<Uuid>>;
    async fn mark_stock_released(&self, id: Uuid) -> StoreResult<()>;
}
