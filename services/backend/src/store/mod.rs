//! The product store: one trait, an in-process implementation as the embedded default.

mod cql;
mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shop_common::service::Stores;
use shop_common::store::{Page, Ping, StoreResult};
use uuid::Uuid;

use crate::domain::{
    CommitOutcome, Product, ProductUpdate, ReservationState, ReserveOutcome, StockAudit, StockLine,
};

pub use cql::{CqlProductStore, DEFAULT_KEYSPACE, SCHEMA};
pub use memory::MemoryProductStore;

/// The two kinds of store, for the service and its store contract tests.
pub static STORES: Stores<dyn ProductStore> = Stores {
    schema: &SCHEMA,
    default_keyspace: DEFAULT_KEYSPACE,
    memory: || Arc::new(MemoryProductStore::new()),
    cql: |cql| Arc::new(CqlProductStore::new(cql)),
};

#[async_trait]
pub trait ProductStore: Ping {
    /// Products in a stable order; `cursor` comes from the previous page.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Product>>;
    async fn get(&self, id: Uuid) -> StoreResult<Option<Product>>;
    async fn create(&self, product: &Product) -> StoreResult<()>;
    /// Applies the update and returns the product as it is now, or `None` if it does not exist.
    async fn update(&self, id: Uuid, update: &ProductUpdate) -> StoreResult<Option<Product>>;
    async fn delete(&self, id: Uuid) -> StoreResult<bool>;
    /// Takes stock for every line or for none, held until `expires_at` unless committed.
    /// Idempotent per reservation id: a retry returns the first reservation, or finishes one
    /// that a cut-off call left half-made.
    async fn reserve(
        &self,
        reservation_id: Uuid,
        lines: &[StockLine],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<ReserveOutcome>;
    /// Binds a reservation to its order: from now on only `release` returns its stock.
    /// Idempotent.
    async fn commit(&self, reservation_id: Uuid) -> StoreResult<CommitOutcome>;
    /// Returns a reservation's stock once; later calls do nothing and return `false`. A
    /// release cut off half-way is finished by the next call.
    async fn release(&self, reservation_id: Uuid) -> StoreResult<bool>;
    /// Releases reservations that expired before `now` without being committed, and
    /// returns the states they were in.
    async fn reclaim_expired(&self, now: DateTime<Utc>) -> StoreResult<Vec<ReservationState>>;
    /// Every product's ledger, and the uncommitted reservations that expired before
    /// `overdue_before` and still hold stock.
    async fn audit(&self, overdue_before: DateTime<Utc>) -> StoreResult<StockAudit>;
}
