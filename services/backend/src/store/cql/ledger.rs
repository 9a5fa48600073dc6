//! The audit's view of the database: every product's books against every reservation.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shop_common::store::StoreResult;
use uuid::Uuid;

use super::CqlProductStore;
use super::reservations::ReservationRow;
use crate::domain::{ProductLedger, ReservationFinding, ReservationState, StockAudit};

impl CqlProductStore {
    pub(super) async fn ledger(&self, overdue_before: DateTime<Utc>) -> StoreResult<StockAudit> {
        let checked_at = Utc::now();
        let reservations: Vec<ReservationRow> = self.scan("list_reservations", ()).await?;
        let mut held: HashMap<Uuid, i64> = HashMap::new();
        let mut overdue = Vec::new();
        let (mut in_flight, mut committed) = (0, 0);
        for row in &reservations {
            let state = row.state()?;
            match state {
                ReservationState::Released => continue,
                ReservationState::Committed => committed += 1,
                ReservationState::Pending | ReservationState::Releasing => in_flight += 1,
                ReservationState::Reserved => {}
            }
            if state.is_reclaimable() && row.expires_at() <= overdue_before {
                overdue.push(ReservationFinding {
                    reservation_id: row.id,
                    state,
                    expires_at: row.expires_at(),
                });
            }
            for (product_id, units) in self.held_by(row, state).await? {
                *held.entry(product_id).or_default() += units;
            }
        }
        let rows: Vec<(Uuid, String, i64, Option<i64>)> = self.scan("list_ledger", ()).await?;
        let products = rows
            .into_iter()
            .map(|(id, name, stock, received)| {
                ProductLedger::new(
                    id,
                    name,
                    stock,
                    received,
                    held.get(&id).copied().unwrap_or(0),
                )
            })
            .collect();
        Ok(StockAudit::new(
            checked_at, products, overdue, in_flight, committed,
        ))
    }

    /// What a reservation holds of each product. One caught half-way (being made, or being
    /// returned) holds what its recorded moves say, line by line.
    async fn held_by(
        &self,
        row: &ReservationRow,
        state: ReservationState,
    ) -> StoreResult<Vec<(Uuid, i64)>> {
        let items = row.items()?;
        let in_flight = matches!(
            state,
            ReservationState::Pending | ReservationState::Releasing
        );
        let mut held = Vec::new();
        if items.is_empty() {
            for line in row.requested()? {
                let units = self.units_held(row.id, line.product_id, None).await?;
                held.push((line.product_id, units));
            }
        } else {
            for line in items {
                let units = if in_flight {
                    self.units_held(row.id, line.product_id, Some(line.quantity))
                        .await?
                } else {
                    line.quantity
                };
                held.push((line.product_id, units));
            }
        }
        Ok(held)
    }
}
