//! The user store: one trait, an in-process implementation as the embedded default.

mod cql;
mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use shop_common::models::order::OrderEvent;
use shop_common::service::Stores;
use shop_common::store::{Ping, StoreResult};
use uuid::Uuid;

use crate::domain::{StoredUser, UserChange};

pub use cql::{CqlUserStore, DEFAULT_KEYSPACE, SCHEMA};
pub use memory::MemoryUserStore;

/// The two kinds of store, for the service and its store contract tests.
pub static STORES: Stores<dyn UserStore> = Stores {
    schema: &SCHEMA,
    default_keyspace: DEFAULT_KEYSPACE,
    memory: || Arc::new(MemoryUserStore::new()),
    cql: |cql| Arc::new(CqlUserStore::new(cql)),
};

/// How many order events are kept per user.
pub const ORDER_EVENTS_KEPT: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    UsernameTaken,
}

#[async_trait]
pub trait UserStore: Ping {
    /// Inserts unless the (normalized) username is taken.
    async fn insert(&self, user: &StoredUser) -> StoreResult<InsertOutcome>;
    async fn by_id(&self, id: Uuid) -> StoreResult<Option<StoredUser>>;
    async fn by_username(&self, username: &str) -> StoreResult<Option<StoredUser>>;
    async fn update(&self, id: Uuid, change: &UserChange) -> StoreResult<Option<StoredUser>>;
    async fn record_order_event(&self, event: &OrderEvent) -> StoreResult<()>;
    /// The user's latest order events, newest first.
    async fn order_events(&self, user_id: Uuid) -> StoreResult<Vec<OrderEvent>>;
}
