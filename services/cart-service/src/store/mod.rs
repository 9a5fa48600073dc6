//! The cart store: one trait, an in-process implementation as the embedded default.

mod cql;
mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use shop_common::models::cart::{Cart, CartItem};
use shop_common::service::Stores;
use shop_common::store::{Ping, StoreResult};
use uuid::Uuid;

pub use cql::{CqlCartStore, DEFAULT_KEYSPACE, SCHEMA};
pub use memory::MemoryCartStore;

/// The two kinds of store, for the service and its store contract tests.
pub static STORES: Stores<dyn CartStore> = Stores {
    schema: &SCHEMA,
    default_keyspace: DEFAULT_KEYSPACE,
    memory: || Arc::new(MemoryCartStore::new()),
    cql: |cql| Arc::new(CqlCartStore::new(cql)),
};

use crate::domain::AddRefusal;

/// A product line to add: the product as the backend described it a moment ago.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub product_id: Uuid,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    Added(Cart),
    /// The product's line would exceed the per-line limit; nothing changed.
    TooMany {
        in_cart: i64,
    },
    /// A new line would make more lines than one order accepts; nothing changed.
    CartFull,
}

impl From<AddRefusal> for AddOutcome {
    fn from(refusal: AddRefusal) -> Self {
        match refusal {
            AddRefusal::LineFull { in_cart } => Self::TooMany { in_cart },
            AddRefusal::CartFull => Self::CartFull,
        }
    }
}

#[async_trait]
pub trait CartStore: Ping {
    /// The user's cart; an empty one if they never had one.
    async fn get(&self, user_id: Uuid) -> StoreResult<Cart>;
    /// Adds a line, or adds to the quantity of the product's existing line.
    async fn add_item(&self, user_id: Uuid, item: NewItem) -> StoreResult<AddOutcome>;
    /// `None` when the cart has no such line.
    async fn set_quantity(
        &self,
        user_id: Uuid,
        item_id: Uuid,
        quantity: i64,
    ) -> StoreResult<Option<Cart>>;
    /// `None` when the cart has no such line.
    async fn remove_item(&self, user_id: Uuid, item_id: Uuid) -> StoreResult<Option<Cart>>;
    async fn clear(&self, user_id: Uuid) -> StoreResult<Cart>;
    /// Removes the lines an order was made from, unless they changed since; lines added or
    /// changed meanwhile stay.
    async fn remove_ordered(&self, user_id: Uuid, ordered: &[CartItem]) -> StoreResult<Cart>;
    /// Non-empty carts, at most `limit`.
    async fn list(&self, limit: usize) -> StoreResult<Vec<Cart>>;
}
