//! Users in one process's memory: fast, and gone on restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use shop_common::models::order::OrderEvent;
use shop_common::store::{Ping, StoreResult};
use uuid::Uuid;

use super::{InsertOutcome, ORDER_EVENTS_KEPT, UserStore};
use crate::domain::{StoredUser, UserChange};

#[derive(Default)]
struct Users {
    by_id: HashMap<Uuid, StoredUser>,
    id_by_username: HashMap<String, Uuid>,
    order_events: HashMap<Uuid, VecDeque<OrderEvent>>,
}

#[derive(Default)]
pub struct MemoryUserStore {
    users: RwLock<Users>,
}

impl MemoryUserStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Users> {
        self.users.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Users> {
        self.users.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn insert(&self, user: &StoredUser) -> StoreResult<InsertOutcome> {
        let mut users = self.write();
        if users.id_by_username.contains_key(&user.user.username) {
            return Ok(InsertOutcome::UsernameTaken);
        }
        users
            .id_by_username
            .insert(user.user.username.clone(), user.user.id);
        users.by_id.insert(user.user.id, user.clone());
        Ok(InsertOutcome::Inserted)
    }

    async fn by_id(&self, id: Uuid) -> StoreResult<Option<StoredUser>> {
        Ok(self.read().by_id.get(&id).cloned())
    }

    async fn by_username(&self, username: &str) -> StoreResult<Option<StoredUser>> {
        let users = self.read();
        Ok(users
            .id_by_username
            .get(username)
            .and_then(|id| users.by_id.get(id))
            .cloned())
    }

    async fn update(&self, id: Uuid, change: &UserChange) -> StoreResult<Option<StoredUser>> {
        let mut users = self.write();
        Ok(users.by_id.get_mut(&id).map(|stored| {
            if let Some(email) = &change.email {
                stored.user.email.clone_from(email);
            }
            if let Some(full_name) = &change.full_name {
                stored.user.full_name = Some(full_name.clone());
            }
            if let Some(hash) = &change.password_hash {
                stored.password_hash.clone_from(hash);
            }
            stored.clone()
        }))
    }

    async fn record_order_event(&self, event: &OrderEvent) -> StoreResult<()> {
        let mut users = self.write();
        let events = users.order_events.entry(event.user_id).or_default();
        // Delivery is at least once: an event reported again (a retry) is the same event.
        let same = |kept: &OrderEvent| {
            (kept.order_id, kept.status, kept.occurred_at)
                == (event.order_id, event.status, event.occurred_at)
        };
        if events.iter().any(same) {
            return Ok(());
        }
        events.push_front(event.clone());
        events.truncate(ORDER_EVENTS_KEPT);
        Ok(())
    }

    async fn order_events(&self, user_id: Uuid) -> StoreResult<Vec<OrderEvent>> {
        Ok(self
            .read()
            .order_events
            .get(&user_id)
            .map(|events| events.iter().cloned().collect())
            .unwrap_or_default())
    }
}

#[async_trait]
impl Ping for MemoryUserStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
