//! Everything in one process's memory: fast, and gone on restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::Utc;
use shop_common::store::{Page, Ping, StoreError, StoreResult};
use uuid::Uuid;

use super::ProductStore;
use crate::domain::{Product, ProductUpdate, Reservation, ReserveOutcome, ReservedLine, StockLine};

#[derive(Default)]
struct Catalogue {
    /// Ordered by id, which makes the id of a page's last product a stable cursor.
    products: BTreeMap<Uuid, Product>,
    reservations: HashMap<Uuid, StoredReservation>,
}

struct StoredReservation {
    reservation: Reservation,
    released: bool,
}

#[derive(Default)]
pub struct MemoryProductStore {
    catalogue: RwLock<Catalogue>,
}

impl MemoryProductStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Catalogue> {
        self.catalogue.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Catalogue> {
        self.catalogue.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ProductStore for MemoryProductStore {
    async fn list(&self, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Product>> {
        let after = cursor
            .map(|c| Uuid::parse_str(c).map_err(|_| StoreError::InvalidCursor))
            .transpose()?;
        let catalogue = self.read();
        let range = match after {
            Some(after) => catalogue
                .products
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => catalogue.products.range(..),
        };
        let mut items: Vec<Product> = range.take(limit + 1).map(|(_, p)| p.clone()).collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|p| p.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn get(&self, id: Uuid) -> StoreResult<Option<Product>> {
        Ok(self.read().products.get(&id).cloned())
    }

    async fn create(&self, product: &Product) -> StoreResult<()> {
        self.write().products.insert(product.id, product.clone());
        Ok(())
    }

    async fn update(&self, id: Uuid, update: &ProductUpdate) -> StoreResult<Option<Product>> {
        let mut catalogue = self.write();
        Ok(catalogue.products.get_mut(&id).map(|product| {
            update.apply(product, Utc::now());
            product.clone()
        }))
    }

    async fn delete(&self, id: Uuid) -> StoreResult<bool> {
        Ok(self.write().products.remove(&id).is_some())
    }

    async fn reserve(
        &self,
        reservation_id: Uuid,
        lines: &[StockLine],
    ) -> StoreResult<ReserveOutcome> {
        let mut catalogue = self.write();
        if let Some(existing) = catalogue.reservations.get(&reservation_id) {
            return Ok(if existing.released {
                ReserveOutcome::AlreadyReleased
            } else {
                ReserveOutcome::Reserved(existing.reservation.clone())
            });
        }
        // Check every line before touching any, so a refusal changes nothing.
        for line in lines {
            let Some(product) = catalogue.products.get(&line.product_id) else {
                return Ok(ReserveOutcome::UnknownProduct(line.product_id));
            };
            if product.stock < line.quantity {
                return Ok(ReserveOutcome::InsufficientStock {
                    product_id: line.product_id,
                    available: product.stock,
                });
            }
        }
        let now = Utc::now();
        let mut reserved = Vec::with_capacity(lines.len());
        for line in lines {
            let product = catalogue
                .products
                .get_mut(&line.product_id)
                .expect("checked above under the same lock");
            product.stock -= line.quantity;
            product.updated_at = now;
            reserved.push(ReservedLine {
                product_id: product.id,
                name: product.name.clone(),
                unit_price_cents: product.price_cents,
                quantity: line.quantity,
            });
        }
        let reservation = Reservation {
            id: reservation_id,
            items: reserved,
            created_at: now,
        };
        catalogue.reservations.insert(
            reservation_id,
            StoredReservation {
                reservation: reservation.clone(),
                released: false,
            },
        );
        Ok(ReserveOutcome::Reserved(reservation))
    }

    async fn release(&self, reservation_id: Uuid) -> StoreResult<bool> {
        let mut catalogue = self.write();
        let Catalogue {
            products,
            reservations,
        } = &mut *catalogue;
        let Some(stored) = reservations.get_mut(&reservation_id) else {
            return Ok(false);
        };
        if stored.released {
            return Ok(false);
        }
        stored.released = true;
        let now = Utc::now();
        // A product deleted since the reservation has no stock left to return to.
        for line in &stored.reservation.items {
            if let Some(product) = products.get_mut(&line.product_id) {
                product.stock += line.quantity;
                product.updated_at = now;
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl Ping for MemoryProductStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
