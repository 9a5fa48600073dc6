//! Carts in one process's memory: fast, and gone on restart.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::Utc;
use shop_common::models::cart::{Cart, CartItem};
use shop_common::store::{Ping, StoreResult};
use uuid::Uuid;

use super::{AddOutcome, CartStore, NewItem};
use crate::domain::{add_line, empty_cart, recompute};

#[derive(Default)]
pub struct MemoryCartStore {
    carts: RwLock<HashMap<Uuid, Cart>>,
}

impl MemoryCartStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Uuid, Cart>> {
        self.carts.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `change` on the user's cart and, when it changed something, bumps the version.
    fn modify<T>(
        &self,
        user_id: Uuid,
        change: impl FnOnce(&mut Cart) -> Option<T>,
    ) -> Option<(T, Cart)> {
        let mut carts = self.write();
        let cart = carts.entry(user_id).or_insert_with(|| empty_cart(user_id));
        let result = change(cart)?;
        cart.version += 1;
        recompute(cart);
        Some((result, cart.clone()))
    }
}

#[async_trait]
impl CartStore for MemoryCartStore {
    async fn get(&self, user_id: Uuid) -> StoreResult<Cart> {
        let carts = self.carts.read().unwrap_or_else(|p| p.into_inner());
        Ok(carts
            .get(&user_id)
            .cloned()
            .unwrap_or_else(|| empty_cart(user_id)))
    }

    async fn add_item(&self, user_id: Uuid, item: NewItem) -> StoreResult<AddOutcome> {
        let mut refused = None;
        let changed = self.modify(user_id, |cart| {
            add_line(cart, &item, Uuid::new_v4(), Utc::now())
                .map_err(|refusal| refused = Some(refusal))
                .ok()
        });
        Ok(match (changed, refused) {
            (Some((_, cart)), _) => AddOutcome::Added(cart),
            (None, refusal) => refusal.map_or(AddOutcome::CartFull, AddOutcome::from),
        })
    }

    async fn set_quantity(
        &self,
        user_id: Uuid,
        item_id: Uuid,
        quantity: i64,
    ) -> StoreResult<Option<Cart>> {
        Ok(self
            .modify(user_id, |cart| {
                let item = cart.items.iter_mut().find(|i| i.id == item_id)?;
                item.quantity = quantity;
                Some(())
            })
            .map(|((), cart)| cart))
    }

    async fn remove_item(&self, user_id: Uuid, item_id: Uuid) -> StoreResult<Option<Cart>> {
        Ok(self
            .modify(user_id, |cart| {
                let index = cart.items.iter().position(|i| i.id == item_id)?;
                cart.items.remove(index);
                Some(())
            })
            .map(|((), cart)| cart))
    }

    async fn clear(&self, user_id: Uuid) -> StoreResult<Cart> {
        let ((), cart) = self
            .modify(user_id, |cart| {
                cart.items.clear();
                Some(())
            })
            .expect("clearing always changes the cart");
        Ok(cart)
    }

    async fn remove_ordered(&self, user_id: Uuid, ordered: &[CartItem]) -> StoreResult<Cart> {
        let ((), cart) = self
            .modify(user_id, |cart| {
                cart.items.retain(|item| {
                    !ordered
                        .iter()
                        .any(|o| o.id == item.id && o.quantity == item.quantity)
                });
                Some(())
            })
            .expect("removing ordered lines always yields a cart");
        Ok(cart)
    }

    async fn list(&self, limit: usize) -> StoreResult<Vec<Cart>> {
        let carts = self.carts.read().unwrap_or_else(|p| p.into_inner());
        Ok(carts
            .values()
            .filter(|cart| !cart.items.is_empty())
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Ping for MemoryCartStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
