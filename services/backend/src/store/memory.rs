//! Everything in one process's memory: fast, and gone on restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shop_common::store::{Page, Ping, StoreError, StoreResult};
use uuid::Uuid;

use super::ProductStore;
use crate::domain::{
    CommitOutcome, Product, ProductLedger, ProductUpdate, Reservation, ReservationFinding,
    ReservationState, ReserveOutcome, ReservedLine, StockAudit, StockLine,
};

#[derive(Default)]
struct Catalogue {
    /// Ordered by id, which makes the id of a page's last product a stable cursor.
    products: BTreeMap<Uuid, Product>,
    /// Units each product ever received, for the audit.
    received: HashMap<Uuid, i64>,
    reservations: HashMap<Uuid, StoredReservation>,
}

struct StoredReservation {
    reservation: Reservation,
    state: ReservationState,
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
        let mut catalogue = self.write();
        catalogue.received.insert(product.id, product.stock);
        catalogue.products.insert(product.id, product.clone());
        Ok(())
    }

    async fn update(&self, id: Uuid, update: &ProductUpdate) -> StoreResult<Option<Product>> {
        let mut catalogue = self.write();
        let Catalogue {
            products, received, ..
        } = &mut *catalogue;
        Ok(products.get_mut(&id).map(|product| {
            let before = product.stock;
            update.apply(product, Utc::now());
            *received.entry(id).or_insert(before) += product.stock - before;
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
        expires_at: DateTime<Utc>,
    ) -> StoreResult<ReserveOutcome> {
        let mut catalogue = self.write();
        if let Some(existing) = catalogue.reservations.get(&reservation_id) {
            return Ok(match existing.state {
                ReservationState::Releasing | ReservationState::Released => {
                    ReserveOutcome::AlreadyReleased
                }
                _ => ReserveOutcome::Reserved(existing.reservation.clone()),
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
            expires_at,
        };
        catalogue.reservations.insert(
            reservation_id,
            StoredReservation {
                reservation: reservation.clone(),
                state: ReservationState::Reserved,
            },
        );
        Ok(ReserveOutcome::Reserved(reservation))
    }

    async fn commit(&self, reservation_id: Uuid) -> StoreResult<CommitOutcome> {
        let mut catalogue = self.write();
        let Some(stored) = catalogue.reservations.get_mut(&reservation_id) else {
            return Ok(CommitOutcome::Unknown);
        };
        Ok(match stored.state {
            ReservationState::Reserved | ReservationState::Committed => {
                stored.state = ReservationState::Committed;
                CommitOutcome::Committed(stored.reservation.clone())
            }
            ReservationState::Pending => CommitOutcome::NotReady,
            ReservationState::Releasing | ReservationState::Released => CommitOutcome::Released,
        })
    }

    async fn release(&self, reservation_id: Uuid) -> StoreResult<bool> {
        Ok(self.write().release(reservation_id))
    }

    async fn reclaim_expired(&self, now: DateTime<Utc>) -> StoreResult<Vec<ReservationState>> {
        let mut catalogue = self.write();
        let expired: Vec<(Uuid, ReservationState)> = catalogue
            .reservations
            .values()
            .filter(|stored| stored.state.is_reclaimable())
            .filter(|stored| stored.reservation.expires_at <= now)
            .map(|stored| (stored.reservation.id, stored.state))
            .collect();
        for (id, _) in &expired {
            catalogue.release(*id);
        }
        Ok(expired.into_iter().map(|(_, state)| state).collect())
    }

    async fn audit(&self, overdue_before: DateTime<Utc>) -> StoreResult<StockAudit> {
        let catalogue = self.read();
        let mut held: HashMap<Uuid, i64> = HashMap::new();
        let mut overdue = Vec::new();
        let mut committed = 0;
        for stored in catalogue.reservations.values() {
            if stored.state == ReservationState::Released {
                continue;
            }
            committed += i64::from(stored.state == ReservationState::Committed);
            if stored.state.is_reclaimable() && stored.reservation.expires_at <= overdue_before {
                overdue.push(ReservationFinding {
                    reservation_id: stored.reservation.id,
                    state: stored.state,
                    expires_at: stored.reservation.expires_at,
                });
            }
            for line in &stored.reservation.items {
                *held.entry(line.product_id).or_default() += line.quantity;
            }
        }
        let products = catalogue
            .products
            .values()
            .map(|product| {
                ProductLedger::new(
                    product.id,
                    product.name.clone(),
                    product.stock,
                    catalogue.received.get(&product.id).copied(),
                    held.get(&product.id).copied().unwrap_or(0),
                )
            })
            .collect();
        Ok(StockAudit::new(Utc::now(), products, overdue, 0, committed))
    }
}

impl Catalogue {
    /// Returns a reservation's stock if it still holds any.
    fn release(&mut self, reservation_id: Uuid) -> bool {
        let Some(stored) = self.reservations.get_mut(&reservation_id) else {
            return false;
        };
        if stored.state == ReservationState::Released {
            return false;
        }
        stored.state = ReservationState::Released;
        let now = Utc::now();
        // A product deleted since the reservation has no stock left to return to.
        for line in &stored.reservation.items {
            if let Some(product) = self.products.get_mut(&line.product_id) {
                product.stock += line.quantity;
                product.updated_at = now;
            }
        }
        true
    }
}

#[async_trait]
impl Ping for MemoryProductStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
