//! The product store: one trait, an in-process implementation as the embedded default.

mod cql;
mod memory;

use async_trait::async_trait;
use shop_common::store::{Page, Ping, StoreResult};
use uuid::Uuid;

use crate::domain::{Product, ProductUpdate, ReserveOutcome, StockLine};

pub use cql::{CqlProductStore, DEFAULT_KEYSPACE, SCHEMA};
pub use memory::MemoryProductStore;

#[async_trait]
pub trait ProductStore: Ping {
    /// Products in a stable order; `cursor` comes from the previous page.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Product>>;
    async fn get(&self, id: Uuid) -> StoreResult<Option<Product>>;
    async fn create(&self, product: &Product) -> StoreResult<()>;
    /// Applies the update and returns the product as it is now, or `None` if it does not exist.
    async fn update(&self, id: Uuid, update: &ProductUpdate) -> StoreResult<Option<Product>>;
    async fn delete(&self, id: Uuid) -> StoreResult<bool>;
    /// Takes stock for every line or for none. Idempotent per reservation id.
    async fn reserve(
        &self,
        reservation_id: Uuid,
        lines: &[StockLine],
    ) -> StoreResult<ReserveOutcome>;
    /// Returns a reservation's stock once; later calls do nothing and return `false`.
    async fn release(&self, reservation_id: Uuid) -> StoreResult<bool>;
}
