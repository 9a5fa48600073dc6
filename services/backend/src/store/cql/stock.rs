//! One product's stock, moved by one operation at a time.
//!
//! Every move is a compare-and-set on the stock that also records the operation's id in
//! the product's row (`stock_ops`), and only applies if that id is not there yet. So a move
//! is applied at most once however often it is retried, and a caller whose answer was lost
//! (a timeout after the write applied) learns the outcome by reading the id back. A take
//! that must never happen is voided by recording its id with 0 units: a late retry of it
//! then finds the id and stops.

use chrono::{DateTime, Utc};
use scylla::DeserializeRow;
use shop_common::cql::results::{decode_error, lwt_applied, rows};
use shop_common::store::{StoreError, StoreResult};
use uuid::Uuid;

use super::{CqlProductStore, MAX_CAS_ATTEMPTS};
use crate::domain::Product;

/// Failed statements tolerated in one move: each retry first reads whether the last one
/// applied.
const MAX_FAILED_ATTEMPTS: usize = 3;

/// A product as a move sees it: its row, its books and what one operation did to it.
pub(super) struct ProductOp {
    pub product: Product,
    pub received: Option<i64>,
    /// Units the operation moved, if it happened (0: voided).
    pub moved: Option<i64>,
}

#[derive(DeserializeRow)]
struct ProductOpRow {
    id: Uuid,
    name: String,
    description: String,
    category: String,
    price_cents: i64,
    stock: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    received: Option<i64>,
    moved: Option<i64>,
}

/// What taking a reservation's units of one product came to.
pub(super) enum Take {
    Taken(Product),
    Missing,
    Insufficient {
        available: i64,
    },
    /// The reservation was given up (expired) before this line was taken.
    Voided,
}

/// The id under which a reservation's units of a product go back: derived from the
/// reservation, so every retry of the return uses the same one.
pub(super) fn return_op(reservation_id: Uuid) -> Uuid {
    Uuid::new_v5(&reservation_id, b"return")
}

impl CqlProductStore {
    pub(super) async fn product_op(&self, id: Uuid, op: Uuid) -> StoreResult<Option<ProductOp>> {
        let result = self.cql.execute("select_product_op", (op, id)).await?;
        let Some(row) = rows(result)?
            .maybe_first_row::<ProductOpRow>()
            .map_err(decode_error)?
        else {
            return Ok(None);
        };
        let product = Product {
            id: row.id,
            name: row.name,
            description: row.description,
            category: row.category,
            price_cents: row.price_cents,
            stock: row.stock,
            created_at: row.created_at,
            updated_at: row.updated_at,
        };
        Ok(Some(ProductOp {
            product,
            received: row.received,
            moved: row.moved,
        }))
    }

    /// Moves `units` of a product's stock under `op`, unless `op` is recorded already.
    /// `Ok(false)`: someone else moved the stock first; read again and decide again.
    async fn move_stock(&self, product: &Product, op: Uuid, units: i64) -> StoreResult<bool> {
        let result = self
            .cql
            .execute(
                "move_stock",
                (
                    product.stock + units,
                    Utc::now(),
                    product.id,
                    product.stock,
                    op,
                    op,
                    units,
                    product.id,
                ),
            )
            .await?;
        lwt_applied(result)
    }

    /// The units of a product a reservation holds now, read from its recorded moves: for a
    /// reservation caught half-way through being made or returned. `taken` is what it is
    /// known to have taken (every line of one that got as far as `reserved`); otherwise its
    /// take is read too.
    pub(super) async fn units_held(
        &self,
        reservation_id: Uuid,
        product_id: Uuid,
        taken: Option<i64>,
    ) -> StoreResult<i64> {
        let moved = |op: Option<ProductOp>| op.and_then(|op| op.moved).unwrap_or(0);
        let taken = match taken {
            Some(units) => units,
            None => -moved(self.product_op(product_id, reservation_id).await?),
        };
        let returned = moved(
            self.product_op(product_id, return_op(reservation_id))
                .await?,
        );
        Ok(taken - returned)
    }

    /// Takes a reservation's units of one product, once.
    pub(super) async fn take(
        &self,
        reservation_id: Uuid,
        product_id: Uuid,
        units: i64,
    ) -> StoreResult<Take> {
        let mut attempts = Attempts::default();
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(seen) = self.product_op(product_id, reservation_id).await? else {
                return Ok(Take::Missing);
            };
            let step = match seen.moved {
                Some(0) => Ok(Some(Take::Voided)),
                Some(_) => Ok(Some(Take::Taken(seen.product))),
                None if seen.product.stock < units => Ok(Some(Take::Insufficient {
                    available: seen.product.stock,
                })),
                None => self
                    .move_stock(&seen.product, reservation_id, -units)
                    .await
                    .map(|moved| {
                        moved.then(|| {
                            let mut product = seen.product;
                            product.stock -= units;
                            Take::Taken(product)
                        })
                    }),
            };
            if let Some(done) = attempts.judge(step)? {
                return Ok(done);
            }
        }
        Err(too_busy(product_id))
    }

    /// Undoes a take that may or may not have happened: returns its units if it did, and
    /// voids it if it did not, so that it never happens later.
    pub(super) async fn undo_take(
        &self,
        reservation_id: Uuid,
        product_id: Uuid,
        units: i64,
    ) -> StoreResult<()> {
        let mut attempts = Attempts::default();
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(seen) = self.product_op(product_id, reservation_id).await? else {
                return Ok(());
            };
            let step = match seen.moved {
                Some(0) => Ok(Some(())),
                Some(_) => return self.give_back(reservation_id, product_id, units).await,
                None => self
                    .move_stock(&seen.product, reservation_id, 0)
                    .await
                    .map(|voided| voided.then_some(())),
            };
            if let Some(done) = attempts.judge(step)? {
                return Ok(done);
            }
        }
        Err(too_busy(product_id))
    }

    /// Returns a reservation's units of one product, once. A product deleted since has
    /// nowhere to return them to.
    pub(super) async fn give_back(
        &self,
        reservation_id: Uuid,
        product_id: Uuid,
        units: i64,
    ) -> StoreResult<()> {
        let op = return_op(reservation_id);
        let mut attempts = Attempts::default();
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(seen) = self.product_op(product_id, op).await? else {
                return Ok(());
            };
            if seen.moved.is_some() {
                return Ok(());
            }
            let step = self
                .move_stock(&seen.product, op, units)
                .await
                .map(|moved| moved.then_some(()));
            if let Some(done) = attempts.judge(step)? {
                return Ok(done);
            }
        }
        Err(too_busy(product_id))
    }
}

/// Counts the failed statements of one move. A failed move is tried again after a read,
/// which shows whether it applied after all.
#[derive(Default)]
struct Attempts {
    failures: usize,
}

impl Attempts {
    /// `Some` when the move is settled; `None` to read again and retry.
    fn judge<T>(&mut self, step: StoreResult<Option<T>>) -> StoreResult<Option<T>> {
        match step {
            Err(err) if self.failures + 1 < MAX_FAILED_ATTEMPTS => {
                self.failures += 1;
                tracing::debug!(error = %err, "stock move failed; reading whether it applied");
                Ok(None)
            }
            other => other,
        }
    }
}

fn too_busy(product_id: Uuid) -> StoreError {
    StoreError::Unavailable(format!(
        "stock of product {product_id} is changing too fast to update"
    ))
}
