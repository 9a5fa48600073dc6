//! Products in Apache Cassandra or ScyllaDB. Stock only ever changes by compare-and-set
//! (lightweight transactions), so no unit is oversold or invented however many backend
//! instances share the database; each change also records its operation id in the same
//! write, so a change whose answer was lost is never applied twice (see `stock`).

mod ledger;
mod reservations;
mod stock;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use scylla::DeserializeRow;
use scylla::response::query_result::QueryResult;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use scylla::value::CqlValue;
use shop_common::cql::results::{decode_error, lwt_row, rows};
use shop_common::cql::{Cql, Migration, Schema};
use shop_common::store::{Page, Ping, StoreError, StoreResult};
use uuid::Uuid;

use super::ProductStore;
use crate::domain::{
    CommitOutcome, Product, ProductUpdate, ReservationState, ReserveOutcome, StockAudit, StockLine,
};

pub const DEFAULT_KEYSPACE: &str = "shop_backend";

const PRODUCT_COLUMNS: &str =
    "id, name, description, category, price_cents, stock, created_at, updated_at";

const RESERVATION_COLUMNS: &str = "id, state, lines, items, created_at, expires_at";

pub static SCHEMA: Schema = Schema {
    migrations: &[
        Migration {
            version: "0001_products",
            cql: include_str!("../../../migrations/0001_products.cql"),
        },
        Migration {
            version: "0002_stock_ledger",
            cql: include_str!("../../../migrations/0002_stock_ledger.cql"),
        },
    ],
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
                ", received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
        ),
        (
            "update_product",
            "UPDATE products SET name = ?, description = ?, category = ?, price_cents = ?, stock = ?, received = ?, updated_at = ? WHERE id = ? IF stock = ? AND received = ?",
        ),
        (
            "delete_product",
            "DELETE FROM products WHERE id = ? IF EXISTS",
        ),
        (
            "select_product_op",
            const_format::concatcp!(
                "SELECT ",
                PRODUCT_COLUMNS,
                ", received, stock_ops[?] AS moved FROM products WHERE id = ?"
            ),
        ),
        // One partition, so the batch is a single compare-and-set: the stock moves and its
        // operation is recorded together, or neither happens.
        (
            "move_stock",
            "BEGIN BATCH \
             UPDATE products SET stock = ?, updated_at = ? WHERE id = ? IF stock = ? AND stock_ops[?] = null \
             UPDATE products USING TTL 3600 SET stock_ops[?] = ? WHERE id = ? \
             APPLY BATCH",
        ),
        (
            "list_ledger",
            "SELECT id, name, stock, received FROM products",
        ),
        (
            "insert_reservation",
            "INSERT INTO reservations (id, state, lines, items, created_at, expires_at) VALUES (?, 'pending', ?, '[]', ?, ?) IF NOT EXISTS",
        ),
        (
            "insert_expiry",
            "INSERT INTO reservation_expiry (minute, id) VALUES (?, ?)",
        ),
        (
            "select_reservation",
            const_format::concatcp!(
                "SELECT ",
                RESERVATION_COLUMNS,
                " FROM reservations WHERE id = ?"
            ),
        ),
        (
            "list_reservations",
            const_format::concatcp!("SELECT ", RESERVATION_COLUMNS, " FROM reservations"),
        ),
        (
            "set_reservation_state",
            "UPDATE reservations SET state = ? WHERE id = ? IF state = ?",
        ),
        (
            "set_reserved",
            "UPDATE reservations SET state = 'reserved', items = ? WHERE id = ? IF state = 'pending'",
        ),
        (
            "list_expiring",
            "SELECT id FROM reservation_expiry WHERE minute = ?",
        ),
        (
            "select_sweep",
            "SELECT done_through FROM sweeps WHERE name = 'reservations'",
        ),
        (
            "set_sweep",
            "UPDATE sweeps SET done_through = ? WHERE name = 'reservations'",
        ),
    ],
    // A repeat that finds its own write not applied reads back: a stock move finds its
    // operation recorded, a reservation or its state change finds the state it set, and an
    // admin's update, which sets values rather than adding to them, applies them again to
    // the state it finds, its own write (the delivery it booked is then 0).
    retry_safe_conditionals: &[
        "update_product",
        "move_stock",
        "insert_reservation",
        "set_reserved",
        "set_reservation_state",
    ],
    // The catalogue's pages; the product page, the reservations and the audit read at the
    // consistency of every statement.
    browse_reads: &["list_products"],
};

/// Compare-and-set attempts on one product before giving up under extreme contention.
const MAX_CAS_ATTEMPTS: usize = 64;
/// Rows read a page at a time by the scans of the sweeper and the audit.
const SCAN_PAGE: i32 = 1000;

pub struct CqlProductStore {
    cql: Cql,
}

/// A product's row as one replica may hold it. Every column but the key is optional: a
/// node that missed a product's insert and received a later update of it (a restock's
/// compare-and-set reaches every live replica) holds only the updated columns until hints
/// or repair bring the rest. A read at quorum merges replicas and always finds them whole.
#[derive(DeserializeRow)]
struct ProductRow {
    id: Uuid,
    name: Option<String>,
    description: Option<String>,
    category: Option<String>,
    price_cents: Option<i64>,
    stock: Option<i64>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl ProductRow {
    /// The product, when the row holds every column its insert wrote.
    fn into_product(self) -> Option<Product> {
        Some(Product {
            id: self.id,
            name: self.name?,
            description: self.description?,
            category: self.category?,
            price_cents: self.price_cents?,
            stock: self.stock?,
            created_at: self.created_at?,
            updated_at: self.updated_at?,
        })
    }
}

impl CqlProductStore {
    pub fn new(cql: Cql) -> Self {
        Self { cql }
    }

    /// Every row a statement returns, read a page at a time.
    async fn scan<R>(
        &self,
        name: &'static str,
        values: impl SerializeRow + Clone,
    ) -> StoreResult<Vec<R>>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
    {
        let mut found = Vec::new();
        let mut paging = PagingState::start();
        loop {
            let (result, next) = self
                .cql
                .execute_page(name, values.clone(), SCAN_PAGE, paging)
                .await?;
            for row in rows(result)?.rows::<R>().map_err(decode_error)? {
                found.push(row.map_err(decode_error)?);
            }
            match next {
                PagingStateResponse::HasMorePages { state } => paging = state,
                PagingStateResponse::NoMorePages => return Ok(found),
            }
        }
    }
}

#[async_trait]
impl ProductStore for CqlProductStore {
    async fn list(&self, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Product>> {
        let mut paging_state = match cursor {
            Some(cursor) => PagingState::new_from_raw_bytes(
                URL_SAFE_NO_PAD
                    .decode(cursor)
                    .map_err(|_| StoreError::InvalidCursor)?,
            ),
            None => PagingState::start(),
        };
        // The pages read one replica (`browse_reads`): a row it holds only in part is a
        // product it has not fully received yet, left out as a product created a moment
        // later would be, and the page is filled up from the rows after it.
        let mut items = Vec::with_capacity(limit);
        loop {
            let wanted = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
            let (result, paging) = self
                .cql
                .execute_page("list_products", (), wanted, paging_state)
                .await?;
            for row in rows(result)?.rows::<ProductRow>().map_err(decode_error)? {
                items.extend(row.map_err(decode_error)?.into_product());
            }
            match paging {
                PagingStateResponse::HasMorePages { state } if items.len() < limit => {
                    paging_state = state;
                }
                PagingStateResponse::HasMorePages { state } => {
                    let next_cursor = state
                        .as_bytes_slice()
                        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes.as_ref()));
                    return Ok(Page { items, next_cursor });
                }
                PagingStateResponse::NoMorePages => {
                    return Ok(Page {
                        items,
                        next_cursor: None,
                    });
                }
            }
        }
    }

    async fn get(&self, id: Uuid) -> StoreResult<Option<Product>> {
        let result = self.cql.execute("select_product", (id,)).await?;
        let Some(row) = rows(result)?
            .maybe_first_row::<ProductRow>()
            .map_err(decode_error)?
        else {
            return Ok(None);
        };
        row.into_product()
            .map(Some)
            .ok_or_else(|| decode_error(format!("product {id} has columns missing at quorum")))
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
                    product.stock,
                ),
            )
            .await?;
        Ok(())
    }

    async fn update(&self, id: Uuid, update: &ProductUpdate) -> StoreResult<Option<Product>> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(seen) = self.product_op(id, Uuid::nil()).await? else {
                return Ok(None);
            };
            let mut product = seen.product.clone();
            update.apply(&mut product, Utc::now());
            // An admin's stock change is a delivery (or a write-off): the books follow it.
            let received = seen
                .received
                .map(|received| received + product.stock - seen.product.stock);
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
                        received,
                        product.updated_at,
                        id,
                        seen.product.stock,
                        seen.received,
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
        expires_at: DateTime<Utc>,
    ) -> StoreResult<ReserveOutcome> {
        self.reserve_lines(reservation_id, lines, expires_at).await
    }

    async fn commit(&self, reservation_id: Uuid) -> StoreResult<CommitOutcome> {
        self.commit_reservation(reservation_id).await
    }

    async fn release(&self, reservation_id: Uuid) -> StoreResult<bool> {
        self.release_if(reservation_id, |_| true)
            .await
            .map(|released| released.is_some())
    }

    async fn reclaim_expired(&self, now: DateTime<Utc>) -> StoreResult<Vec<ReservationState>> {
        self.sweep(now).await
    }

    async fn audit(&self, overdue_before: DateTime<Utc>) -> StoreResult<StockAudit> {
        self.ledger(overdue_before).await
    }
}

#[async_trait]
impl Ping for CqlProductStore {
    async fn ping(&self) -> StoreResult<()> {
        self.cql.ping().await
    }
}

/// `[applied]`, and the current value of the compared column when not applied (`None` when
/// the row does not exist).
fn lwt_outcome(result: QueryResult) -> StoreResult<(bool, Option<i64>)> {
    let (applied, row) = lwt_row(&rows(result)?)?;
    let current = row.columns.get(1).and_then(|value| match value {
        Some(CqlValue::BigInt(stock)) => Some(*stock),
        _ => None,
    });
    Ok((applied, current))
}
