//! Carts in Apache Cassandra or ScyllaDB, one partition per user. Every change is one
//! compare-and-set on the cart's version (a lightweight transaction), so concurrent changes
//! to one cart serialize and none is lost, however many cart-service instances share the
//! database; and the version, which checkout derives its idempotency key from, increases
//! on every change, across restarts.

use std::collections::BTreeSet;
use std::convert::Infallible;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scylla::DeserializeRow;
use scylla::response::{PagingState, PagingStateResponse};
use shop_common::cql::results::{decode_error, lwt_applied, rows};
use shop_common::cql::{Cql, Migration, Schema};
use shop_common::models::cart::{Cart, CartItem};
use shop_common::store::{Ping, StoreError, StoreResult};
use uuid::Uuid;

use super::{AddOutcome, CartStore, NewItem};
use crate::domain::{add_line, empty_cart, recompute};

pub const DEFAULT_KEYSPACE: &str = "shop_carts";

const LINE_COLUMNS: &str =
    "user_id, item_id, version, item_ids, product_id, name, unit_price_cents, quantity, added_at";

pub static SCHEMA: Schema = Schema {
    migrations: &[Migration {
        version: "0001_carts",
        cql: include_str!("../../migrations/0001_carts.cql"),
    }],
    statements: &[
        (
            "select_cart",
            const_format::concatcp!(
                "SELECT ",
                LINE_COLUMNS,
                " FROM cart_items WHERE user_id = ?"
            ),
        ),
        (
            "list_carts",
            const_format::concatcp!("SELECT ", LINE_COLUMNS, " FROM cart_items"),
        ),
        // A new or changed line: its row and the cart's version in one conditional update.
        // Bound to a null version, the condition holds for a cart never written, so a cart's
        // first change needs no separate `INSERT ... IF NOT EXISTS` of the version first.
        (
            "put_line",
            "UPDATE cart_items SET version = ?, item_ids = item_ids + ?, product_id = ?, name = ?, unit_price_cents = ?, quantity = ?, added_at = ? WHERE user_id = ? AND item_id = ? IF version = ?",
        ),
        // Lines removed, any number of them (none: the version alone changes).
        (
            "remove_lines",
            "UPDATE cart_items SET version = ?, item_ids = item_ids - ? WHERE user_id = ? IF version = ?",
        ),
        // The rows of lines already removed from item_ids: not conditional, as they are not
        // part of the cart any more and their ids are never used again.
        (
            "delete_line_rows",
            "DELETE FROM cart_items WHERE user_id = ? AND item_id IN ?",
        ),
    ],
    // A repeated line change would find its own version and apply the change again.
    retry_safe_conditionals: &[],
    browse_reads: &[],
};

/// Compare-and-set attempts on one cart before giving up under extreme contention.
const MAX_CAS_ATTEMPTS: usize = 64;

/// Rows per page of the admin list's scan.
const LIST_PAGE_SIZE: i32 = 500;

pub struct CqlCartStore {
    cql: Cql,
}

/// One row of a cart's partition. The static columns come with every row; a partition
/// without lines has one row where only they are set.
#[derive(DeserializeRow)]
struct LineRow {
    user_id: Uuid,
    item_id: Option<Uuid>,
    version: Option<i64>,
    item_ids: Option<BTreeSet<Uuid>>,
    product_id: Option<Uuid>,
    name: Option<String>,
    unit_price_cents: Option<i64>,
    quantity: Option<i64>,
    added_at: Option<DateTime<Utc>>,
}

/// A cart as read, with what a compare-and-set on it needs.
struct Stored {
    cart: Cart,
    /// `None` for a cart never written.
    version: Option<i64>,
    /// Rows of lines removed earlier whose deletion did not happen.
    dead_rows: Vec<Uuid>,
}

/// What one change writes, besides the new version.
enum Write {
    /// This line of the changed cart, new or changed.
    Line(Uuid),
    /// These lines are gone (none: only the version changes).
    Remove(Vec<Uuid>),
}

impl CqlCartStore {
    pub fn new(cql: Cql) -> Self {
        Self { cql }
    }

    async fn load(&self, user_id: Uuid) -> StoreResult<Stored> {
        let result = self.cql.execute("select_cart", (user_id,)).await?;
        let rows = rows(result)?
            .rows::<LineRow>()
            .map_err(decode_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(decode_error)?;
        assemble(user_id, rows)
    }

    /// Reads the cart, lets `edit` change it, and writes the change if the cart is still as
    /// read (`IF version = ?`), with the version one higher; on a conflict, starts over from
    /// the cart as it is now. `Err(r)` from `edit` changes nothing and is returned as is.
    ///
    /// A change whose answer was lost (it timed out, or its coordinator died) may have been
    /// made, or be completed by the next compare-and-set on the cart: the cart read next
    /// tells, and if it is the cart that change wrote, the change is reported made rather
    /// than made twice. Another caller writing the very same cart from the same version in
    /// that instant would be taken for it.
    async fn modify<R>(
        &self,
        user_id: Uuid,
        mut edit: impl FnMut(&mut Cart) -> Result<Write, R> + Send,
    ) -> StoreResult<Result<Cart, R>> {
        let mut lost: Option<Cart> = None;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Stored {
                mut cart,
                version: seen,
                dead_rows,
            } = self.load(user_id).await?;
            if lost.as_ref() == Some(&cart) {
                self.delete_line_rows(user_id, dead_rows).await;
                return Ok(Ok(cart));
            }
            let write = match edit(&mut cart) {
                Ok(write) => write,
                Err(unchanged) => return Ok(Err(unchanged)),
            };
            cart.version = seen.unwrap_or(0) + 1;
            recompute(&mut cart);
            let applied = match self.compare_and_set(&cart, &write, seen).await {
                Ok(applied) => applied,
                // Once only, so that a database that does not answer fails the call
                // within two deadlines.
                Err(_) if lost.is_none() => {
                    lost = Some(cart);
                    continue;
                }
                Err(error) => return Err(error),
            };
            if applied {
                let mut gone = dead_rows;
                if let Write::Remove(item_ids) = write {
                    gone.extend(item_ids);
                }
                self.delete_line_rows(user_id, gone).await;
                return Ok(Ok(cart));
            }
        }
        Err(StoreError::Unavailable(format!(
            "the cart of user {user_id} is changing too fast to update"
        )))
    }

    /// Writes `write` of the changed `cart` if the stored cart's version is still `seen`;
    /// whether it did.
    async fn compare_and_set(
        &self,
        cart: &Cart,
        write: &Write,
        seen: Option<i64>,
    ) -> StoreResult<bool> {
        let user_id = cart.user_id;
        let result = match write {
            Write::Line(item_id) => {
                let line = cart
                    .items
                    .iter()
                    .find(|i| i.id == *item_id)
                    .ok_or_else(|| {
                        StoreError::Unavailable(format!("line {item_id} vanished from the cart"))
                    })?;
                self.cql
                    .execute(
                        "put_line",
                        (
                            cart.version,
                            vec![line.id],
                            line.product_id,
                            &line.name,
                            line.unit_price_cents,
                            line.quantity,
                            line.added_at,
                            user_id,
                            line.id,
                            seen,
                        ),
                    )
                    .await?
            }
            Write::Remove(item_ids) => {
                self.cql
                    .execute("remove_lines", (cart.version, item_ids, user_id, seen))
                    .await?
            }
        };
        lwt_applied(result)
    }

    /// Best effort: the change is made already, a row left behind is ignored by reads, and
    /// the cart's next change tries again.
    async fn delete_line_rows(&self, user_id: Uuid, item_ids: Vec<Uuid>) {
        if item_ids.is_empty() {
            return;
        }
        // The failure is logged (and counted) by `execute`.
        let _ = self
            .cql
            .execute("delete_line_rows", (user_id, item_ids))
            .await;
    }
}

#[async_trait]
impl CartStore for CqlCartStore {
    async fn get(&self, user_id: Uuid) -> StoreResult<Cart> {
        Ok(self.load(user_id).await?.cart)
    }

    async fn add_item(&self, user_id: Uuid, item: NewItem) -> StoreResult<AddOutcome> {
        let new_id = Uuid::new_v4();
        let added_at = now();
        let changed = self
            .modify(user_id, |cart| {
                add_line(cart, &item, new_id, added_at).map(Write::Line)
            })
            .await?;
        Ok(match changed {
            Ok(cart) => AddOutcome::Added(cart),
            Err(refusal) => refusal.into(),
        })
    }

    async fn set_quantity(
        &self,
        user_id: Uuid,
        item_id: Uuid,
        quantity: i64,
    ) -> StoreResult<Option<Cart>> {
        let changed: Result<Cart, ()> = self
            .modify(user_id, |cart| {
                let item = cart.items.iter_mut().find(|i| i.id == item_id).ok_or(())?;
                item.quantity = quantity;
                Ok(Write::Line(item_id))
            })
            .await?;
        Ok(changed.ok())
    }

    async fn remove_item(&self, user_id: Uuid, item_id: Uuid) -> StoreResult<Option<Cart>> {
        let changed: Result<Cart, ()> = self
            .modify(user_id, |cart| {
                let index = cart.items.iter().position(|i| i.id == item_id).ok_or(())?;
                cart.items.remove(index);
                Ok(Write::Remove(vec![item_id]))
            })
            .await?;
        Ok(changed.ok())
    }

    async fn clear(&self, user_id: Uuid) -> StoreResult<Cart> {
        let changed = self
            .modify(user_id, |cart| {
                let removed = cart.items.drain(..).map(|i| i.id).collect();
                Ok::<_, Infallible>(Write::Remove(removed))
            })
            .await?;
        Ok(changed.unwrap_or_else(|never| match never {}))
    }

    async fn remove_ordered(&self, user_id: Uuid, ordered: &[CartItem]) -> StoreResult<Cart> {
        let changed = self
            .modify(user_id, |cart| {
                let mut removed = Vec::new();
                cart.items.retain(|item| {
                    let was_ordered = ordered
                        .iter()
                        .any(|o| o.id == item.id && o.quantity == item.quantity);
                    if was_ordered {
                        removed.push(item.id);
                    }
                    !was_ordered
                });
                Ok::<_, Infallible>(Write::Remove(removed))
            })
            .await?;
        Ok(changed.unwrap_or_else(|never| match never {}))
    }

    /// For the admin endpoint only: carts are found by user and by nothing else, so this is
    /// a full scan of the table, read page by page until `limit` non-empty carts are
    /// complete. That is acceptable for a rare admin request; a shop with many carts would
    /// want a paged endpoint or a table of active carts instead.
    async fn list(&self, limit: usize) -> StoreResult<Vec<Cart>> {
        let mut carts = Vec::new();
        if limit == 0 {
            return Ok(carts);
        }
        // A partition's rows come together, but may span pages.
        let mut partition: Vec<LineRow> = Vec::new();
        let mut paging_state = PagingState::start();
        loop {
            let (result, paging) = self
                .cql
                .execute_page("list_carts", (), LIST_PAGE_SIZE, paging_state)
                .await?;
            for row in rows(result)?.rows::<LineRow>().map_err(decode_error)? {
                let row = row.map_err(decode_error)?;
                if partition.first().is_some_and(|r| r.user_id != row.user_id) {
                    push_non_empty(&mut carts, std::mem::take(&mut partition))?;
                    if carts.len() == limit {
                        return Ok(carts);
                    }
                }
                partition.push(row);
            }
            match paging {
                PagingStateResponse::HasMorePages { state } => paging_state = state,
                PagingStateResponse::NoMorePages => break,
            }
        }
        push_non_empty(&mut carts, partition)?;
        Ok(carts)
    }
}

#[async_trait]
impl Ping for CqlCartStore {
    async fn ping(&self) -> StoreResult<()> {
        self.cql.ping().await
    }
}

fn push_non_empty(carts: &mut Vec<Cart>, partition: Vec<LineRow>) -> StoreResult<()> {
    let Some(user_id) = partition.first().map(|r| r.user_id) else {
        return Ok(());
    };
    let cart = assemble(user_id, partition)?.cart;
    if !cart.items.is_empty() {
        carts.push(cart);
    }
    Ok(())
}

/// The cart in one partition's rows: the lines named in item_ids, in the order they were
/// added (the memory store's order); rows of removed lines are set apart.
fn assemble(user_id: Uuid, rows: Vec<LineRow>) -> StoreResult<Stored> {
    let mut cart = empty_cart(user_id);
    let mut version = None;
    let mut dead_rows = Vec::new();
    for row in rows {
        version = version.or(row.version);
        let Some(item_id) = row.item_id else {
            continue;
        };
        if !row
            .item_ids
            .as_ref()
            .is_some_and(|live| live.contains(&item_id))
        {
            dead_rows.push(item_id);
            continue;
        }
        let incomplete = || decode_error(format!("line {item_id} of a cart is incomplete"));
        cart.items.push(CartItem {
            id: item_id,
            product_id: row.product_id.ok_or_else(incomplete)?,
            name: row.name.ok_or_else(incomplete)?,
            unit_price_cents: row.unit_price_cents.ok_or_else(incomplete)?,
            quantity: row.quantity.ok_or_else(incomplete)?,
            line_total_cents: 0,
            added_at: row.added_at.ok_or_else(incomplete)?,
        });
    }
    cart.items.sort_by_key(|i| (i.added_at, i.id));
    cart.version = version.unwrap_or(0);
    recompute(&mut cart);
    Ok(Stored {
        cart,
        version,
        dead_rows,
    })
}

/// Now, to the millisecond a CQL timestamp keeps: a cart returned by a change equals the
/// same cart read back.
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
