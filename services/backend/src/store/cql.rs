//! Products in Apache Cassandra or ScyllaDB. Stock only ever changes by compare-and-set
//! (lightweight transactions), so no unit is oversold or invented however many backend
//! instances share the database.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use scylla::DeserializeRow;
use scylla::response::query_result::QueryResult;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::value::{CqlValue, Row};
use shop_common::cql::{Cql, Migration, Schema};
use shop_common::store::{Page, Ping, StoreError, StoreResult};
use uuid::Uuid;

use super::ProductStore;
use crate::domain::{Product, ProductUpdate, Reservation, ReserveOutcome, ReservedLine, StockLine};

pub const DEFAULT_KEYSPACE: &str = "shop_backend";

const PRODUCT_COLUMNS: &str =
    "id, name, description, category, price_cents, stock, created_at, updated_at";

pub static SCHEMA: Schema = Schema {
    migrations: &[Migration {
        version: "0001_products",
        cql: include_str!("../../migrations/0001_products.cql"),
    }],
    statements: &[
        (
            "select_product",
            const_format::concatcp!("SELECT ", PRODUCT_COLUMNS, " FROM products WHERE id = ?"),
        ),
        (
            "list_products",
            const_format::concatcp!("SELECT ", PRODUCT_COLUMNS, " FROM products"),
        ),
        (
            "insert_product",
            const_format::concatcp!(
                "INSERT INTO products (",
                PRODUCT_COLUMNS,
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ),
        ),
        (
            "update_product",
            "UPDATE products SET name = ?, description = ?, category = ?, price_cents = ?, stock = ?, updated_at = ? WHERE id = ? IF stock = ?",
        ),
        (
            "delete_product",
            "DELETE FROM products WHERE id = ? IF EXISTS",
        ),
        (
            "set_stock",
            "UPDATE products SET stock = ?, updated_at = ? WHERE id = ? IF stock = ?",
        ),
        (
            "insert_reservation",
            "INSERT INTO reservations (id, state, items, created_at) VALUES (?, 'pending', '[]', ?) IF NOT EXISTS",
        ),
        (
            "select_reservation",
            "SELECT state, items, created_at FROM reservations WHERE id = ?",
        ),
        (
            "set_reservation",
            "UPDATE reservations SET state = ?, items = ? WHERE id = ? IF state = ?",
        ),
        (
            "delete_pending_reservation",
            "DELETE FROM reservations WHERE id = ? IF state = 'pending'",
        ),
    ],
};

/// Compare-and-set attempts on one product before giving up under extreme contention.
const MAX_CAS_ATTEMPTS: usize = 64;

pub struct CqlProductStore {
    cql: Cql,
}

#[derive(DeserializeRow)]
struct ProductRow {
    id: Uuid,
    name: String,
    description: String,
    category: String,
    price_cents: i64,
    stock: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Product {
            id: row.id,
            name: row.name,
            description: row.description,
            category: row.category,
            price_cents: row.price_cents,
            stock: row.stock,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(DeserializeRow)]
struct ReservationRow {
    state: String,
    items: String,
    created_at: DateTime<Utc>,
}

/// What a compare-and-set on a product's stock came to.
enum StockChange {
    Done(Product),
    Missing,
    Insufficient { available: i64 },
}

impl CqlProductStore {
    pub fn new(cql: Cql) -> Self {
        Self { cql }
    }

    /// Adds `delta` to a product's stock (negative to take), never below zero.
    async fn change_stock(&self, id: Uuid, delta: i64) -> StoreResult<StockChange> {
        let Some(mut product) = self.get(id).await? else {
            return Ok(StockChange::Missing);
        };
        for _ in 0..MAX_CAS_ATTEMPTS {
            let wanted = product.stock + delta;
            if wanted < 0 {
                return Ok(StockChange::Insufficient {
                    available: product.stock,
                });
            }
            let now = Utc::now();
            let result = self
                .cql
                .execute("set_stock", (wanted, now, id, product.stock))
                .await?;
            match lwt_outcome(result)? {
                (true, _) => {
                    product.stock = wanted;
                    product.updated_at = now;
                    return Ok(StockChange::Done(product));
                }
                // The row is gone: deleted meanwhile.
                (false, None) => return Ok(StockChange::Missing),
                (false, Some(current)) => product.stock = current,
            }
        }
        Err(StoreError::Unavailable(format!(
            "stock of product {id} is changing too fast to update"
        )))
    }

    /// Puts back stock taken by a failed or released reservation; a product deleted since
    /// has nowhere to return it to.
    async fn return_stock(&self, lines: &[(Uuid, i64)]) -> StoreResult<()> {
        for (product_id, quantity) in lines {
            self.change_stock(*product_id, *quantity).await?;
        }
        Ok(())
    }

    async fn reservation(&self, id: Uuid) -> StoreResult<Option<ReservationRow>> {
        let result = self.cql.execute("select_reservation", (id,)).await?;
        rows(result)?
            .maybe_first_row::<ReservationRow>()
            .map_err(decode_error)
    }

    /// Takes every line's stock, or none: lines taken before a refusal or a failure are put
    /// back.
    async fn take_all(
        &self,
        lines: &[StockLine],
    ) -> StoreResult<Result<Vec<ReservedLine>, ReserveOutcome>> {
        let mut taken: Vec<ReservedLine> = Vec::with_capacity(lines.len());
        for line in lines {
            let change = match self.change_stock(line.product_id, -line.quantity).await {
                Ok(change) => change,
                Err(err) => {
                    self.put_back(&taken).await;
                    return Err(err);
                }
            };
            let refusal = match change {
                StockChange::Done(product) => {
                    taken.push(ReservedLine {
                        product_id: product.id,
                        name: product.name,
                        unit_price_cents: product.price_cents,
                        quantity: line.quantity,
                    });
                    continue;
                }
                StockChange::Missing => ReserveOutcome::UnknownProduct(line.product_id),
                StockChange::Insufficient { available } => ReserveOutcome::InsufficientStock {
                    product_id: line.product_id,
                    available,
                },
            };
            self.put_back(&taken).await;
            return Ok(Err(refusal));
        }
        Ok(Ok(taken))
    }

    /// Undoes a partial reservation. A failure here is the one way stock can be lost, so it
    /// is logged with everything needed to correct it by hand.
    async fn put_back(&self, taken: &[ReservedLine]) {
        let lines: Vec<(Uuid, i64)> = taken.iter().map(|l| (l.product_id, l.quantity)).collect();
        if let Err(err) = self.return_stock(&lines).await {
            tracing::error!(error = %err, ?lines, "stock taken by a failed reservation was not put back");
        }
    }
}

#[async_trait]
impl ProductStore for CqlProductStore {
    async fn list(&self, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Product>> {
        let paging_state = match cursor {
            Some(cursor) => PagingState::new_from_raw_bytes(
                URL_SAFE_NO_PAD
                    .decode(cursor)
                    .map_err(|_| StoreError::InvalidCursor)?,
            ),
            None => PagingState::start(),
        };
        let page_size = i32::try_from(limit).unwrap_or(i32::MAX);
        let (result, paging) = self
            .cql
            .execute_page("list_products", (), page_size, paging_state)
            .await?;
        let items = rows(result)?
            .rows::<ProductRow>()
            .map_err(decode_error)?
            .map(|row| row.map(Product::from).map_err(decode_error))
            .collect::<StoreResult<Vec<_>>>()?;
        let next_cursor = match paging {
            PagingStateResponse::HasMorePages { state } => state
                .as_bytes_slice()
                .map(|bytes| URL_SAFE_NO_PAD.encode(bytes.as_ref())),
            PagingStateResponse::NoMorePages => None,
        };
        Ok(Page { items, next_cursor })
    }

    async fn get(&self, id: Uuid) -> StoreResult<Option<Product>> {
        let result = self.cql.execute("select_product", (id,)).await?;
        Ok(rows(result)?
            .maybe_first_row::<ProductRow>()
            .map_err(decode_error)?
            .map(Product::from))
    }

    async fn create(&self, product: &Product) -> StoreResult<()> {
        self.cql
            .execute(
                "insert_product",
                (
                    product.id,
                    &product.name,
                    &product.description,
                    &product.category,
                    product.price_cents,
                    product.stock,
                    product.created_at,
                    product.updated_at,
                ),
            )
            .await?;
        Ok(())
    }

    async fn update(&self, id: Uuid, update: &ProductUpdate) -> StoreResult<Option<Product>> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(mut product) = self.get(id).await? else {
                return Ok(None);
            };
            let seen_stock = product.stock;
            update.apply(&mut product, Utc::now());
            let result = self
                .cql
                .execute(
                    "update_product",
                    (
                        &product.name,
                        &product.description,
                        &product.category,
                        product.price_cents,
                        product.stock,
                        product.updated_at,
                        id,
                        seen_stock,
                    ),
                )
                .await?;
            match lwt_outcome(result)? {
                (true, _) => return Ok(Some(product)),
                (false, None) => return Ok(None),
                // A reservation changed the stock meanwhile: apply the update to the new state.
                (false, Some(_)) => continue,
            }
        }
        Err(StoreError::Unavailable(format!(
            "product {id} is changing too fast to update"
        )))
    }

    async fn delete(&self, id: Uuid) -> StoreResult<bool> {
        let result = self.cql.execute("delete_product", (id,)).await?;
        Ok(lwt_outcome(result)?.0)
    }

    async fn reserve(
        &self,
        reservation_id: Uuid,
        lines: &[StockLine],
    ) -> StoreResult<ReserveOutcome> {
        let claimed = self
            .cql
            .execute("insert_reservation", (reservation_id, Utc::now()))
            .await?;
        if !lwt_outcome(claimed)?.0 {
            return self.existing_reservation(reservation_id).await;
        }
        let taken = match self.take_all(lines).await {
            Ok(Ok(taken)) => taken,
            Ok(Err(refusal)) => {
                self.cql
                    .execute("delete_pending_reservation", (reservation_id,))
                    .await?;
                return Ok(refusal);
            }
            Err(err) => {
                // Nothing is held any more: clear the claim so a retry can start over.
                let _ = self
                    .cql
                    .execute("delete_pending_reservation", (reservation_id,))
                    .await;
                return Err(err);
            }
        };
        let items = serde_json::to_string(&taken).map_err(|err| {
            StoreError::Unavailable(format!("cannot encode a reservation: {err}"))
        })?;
        self.cql
            .execute(
                "set_reservation",
                ("reserved", &items, reservation_id, "pending"),
            )
            .await?;
        Ok(ReserveOutcome::Reserved(Reservation {
            id: reservation_id,
            items: taken,
            created_at: Utc::now(),
        }))
    }

    async fn release(&self, reservation_id: Uuid) -> StoreResult<bool> {
        let Some(row) = self.reservation(reservation_id).await? else {
            return Ok(false);
        };
        if row.state != "reserved" {
            return Ok(false);
        }
        let result = self
            .cql
            .execute(
                "set_reservation",
                ("released", &row.items, reservation_id, "reserved"),
            )
            .await?;
        if !lwt_outcome(result)?.0 {
            return Ok(false);
        }
        let lines: Vec<ReservedLine> = serde_json::from_str(&row.items).map_err(|err| {
            StoreError::Unavailable(format!("reservation {reservation_id} is unreadable: {err}"))
        })?;
        let back: Vec<(Uuid, i64)> = lines.iter().map(|l| (l.product_id, l.quantity)).collect();
        self.return_stock(&back).await?;
        Ok(true)
    }
}

impl CqlProductStore {
    async fn existing_reservation(&self, reservation_id: Uuid) -> StoreResult<ReserveOutcome> {
        let Some(row) = self.reservation(reservation_id).await? else {
            return Err(StoreError::Unavailable(format!(
                "reservation {reservation_id} vanished while being read"
            )));
        };
        match row.state.as_str() {
            "reserved" => {
                let items = serde_json::from_str(&row.items).map_err(|err| {
                    StoreError::Unavailable(format!(
                        "reservation {reservation_id} is unreadable: {err}"
                    ))
                })?;
                Ok(ReserveOutcome::Reserved(Reservation {
                    id: reservation_id,
                    items,
                    created_at: row.created_at,
                }))
            }
            "released" => Ok(ReserveOutcome::AlreadyReleased),
            _ => Err(StoreError::Unavailable(format!(
                "reservation {reservation_id} is still being made; try again"
            ))),
        }
    }
}

#[async_trait]
impl Ping for CqlProductStore {
    async fn ping(&self) -> StoreResult<()> {
        self.cql.ping().await
    }
}

fn rows(result: QueryResult) -> StoreResult<scylla::response::query_result::QueryRowsResult> {
    result.into_rows_result().map_err(decode_error)
}

/// `[applied]`, and the current value of the compared column when not applied (`None` when
/// the row does not exist).
fn lwt_outcome(result: QueryResult) -> StoreResult<(bool, Option<i64>)> {
    let rows = rows(result)?;
    let row = rows
        .maybe_first_row::<Row>()
        .map_err(decode_error)?
        .ok_or_else(|| {
            StoreError::Unavailable("a conditional update returned no row".to_owned())
        })?;
    let applied = matches!(row.columns.first(), Some(Some(CqlValue::Boolean(true))));
    let current = row.columns.get(1).and_then(|value| match value {
        Some(CqlValue::BigInt(stock)) => Some(*stock),
        _ => None,
    });
    Ok((applied, current))
}

fn decode_error(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("unexpected data from the database: {err}"))
}
