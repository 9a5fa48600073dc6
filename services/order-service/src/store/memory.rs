//! Orders in one process's memory: fast, and gone on restart.

use std::collections::{HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shop_common::models::order::{Order, OrderStatus, StatusChange};
use shop_common::store::{Ping, StoreResult};
use uuid::Uuid;

use super::{CreateOutcome, OrderStore, TransitionOutcome};

#[derive(Default)]
struct Orders {
    by_id: HashMap<Uuid, Order>,
    by_user: HashMap<Uuid, Vec<Uuid>>,
    /// Orders the background processor still has to move along.
    active: HashSet<Uuid>,
    unreleased: HashSet<Uuid>,
}

#[derive(Default)]
pub struct MemoryOrderStore {
    orders: RwLock<Orders>,
}

impl MemoryOrderStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Orders> {
        self.orders.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Orders> {
        self.orders.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn newest_first(mut orders: Vec<Order>, limit: usize) -> Vec<Order> {
    orders.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    orders.truncate(limit);
    orders
}

#[async_trait]
impl OrderStore for MemoryOrderStore {
    async fn create(&self, order: &Order) -> StoreResult<CreateOutcome> {
        let mut orders = self.write();
        match orders.by_id.get(&order.id) {
            Some(existing) if existing == order => return Ok(CreateOutcome::Created),
            Some(existing) => return Ok(CreateOutcome::Exists(existing.clone())),
            None => {}
        }
        orders.by_id.insert(order.id, order.clone());
        orders
            .by_user
            .entry(order.user_id)
            .or_default()
            .push(order.id);
        if order.status.next_automatic().is_some() {
            orders.active.insert(order.id);
        }
        Ok(CreateOutcome::Created)
    }

    async fn get(&self, id: Uuid) -> StoreResult<Option<Order>> {
        Ok(self.read().by_id.get(&id).cloned())
    }

    async fn list_for_user(&self, user_id: Uuid, limit: usize) -> StoreResult<Vec<Order>> {
        let orders = self.read();
        let mine = orders
            .by_user
            .get(&user_id)
            .into_iter()
            .flatten()
            .filter_map(|id| orders.by_id.get(id).cloned())
            .collect();
        Ok(newest_first(mine, limit))
    }

    async fn list_all(&self, limit: usize) -> StoreResult<Vec<Order>> {
        Ok(newest_first(
            self.read().by_id.values().cloned().collect(),
            limit,
        ))
    }

    async fn transition(
        &self,
        id: Uuid,
        from: OrderStatus,
        to: OrderStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<TransitionOutcome> {
        let mut orders = self.write();
        let Some(order) = orders.by_id.get_mut(&id) else {
            return Ok(TransitionOutcome::NotFound);
        };
        if order.status != from {
            return Ok(TransitionOutcome::Conflict(order.clone()));
        }
        order.status = to;
        order.updated_at = at;
        order.history.push(StatusChange { status: to, at });
        let changed = order.clone();
        if to.next_automatic().is_none() {
            orders.active.remove(&id);
        }
        if to == OrderStatus::Cancelled {
            orders.unreleased.insert(id);
        }
        Ok(TransitionOutcome::Changed(changed))
    }

    async fn due_for_processing(
        &self,
        changed_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Order>> {
        let orders = self.read();
        Ok(orders
            .active
            .iter()
            .filter_map(|id| orders.by_id.get(id))
            .filter(|order| order.updated_at <= changed_before)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn backlog(
        &self,
        changed_before: DateTime<Utc>,
    ) -> StoreResult<(i64, Option<DateTime<Utc>>)> {
        let orders = self.read();
        let due = orders
            .active
            .iter()
            .filter_map(|id| orders.by_id.get(id))
            .filter(|order| order.updated_at <= changed_before);
        let (count, oldest) = due.fold(
            (0, None),
            |(count, oldest): (i64, Option<DateTime<Utc>>), order| {
                (
                    count + 1,
                    Some(oldest.map_or(order.updated_at, |o| o.min(order.updated_at))),
                )
            },
        );
        Ok((count, oldest))
    }

    async fn status_counts(&self) -> StoreResult<Vec<(OrderStatus, i64)>> {
        let orders = self.read();
        Ok(OrderStatus::ALL
            .iter()
            .map(|status| {
                let count = orders
                    .by_id
                    .values()
                    .filter(|o| o.status == *status)
                    .count();
                (*status, count as i64)
            })
            .collect())
    }

    async fn unreleased_cancellations(&self, limit: usize) -> StoreResult<Vec<Uuid>> {
        Ok(self.read().unreleased.iter().take(limit).copied().collect())
    }

    async fn mark_stock_released(&self, id: Uuid) -> StoreResult<()> {
        self.write().unreleased.remove(&id);
        Ok(())
    }
}

#[async_trait]
impl Ping for MemoryOrderStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
