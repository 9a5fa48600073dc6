//! Orders in Apache Cassandra or ScyllaDB. The `orders` row is the truth and changes status
//! only by compare-and-set (lightweight transactions), so however many order-service
//! instances share the database, one change wins and its history entry goes with it. The
//! other tables are indexes for the queries the service runs (a user's orders, the orders
//! the processor moves along, cancellations whose stock is not back yet); readers check
//! every index entry against the order row and repair the entries that lag behind.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::try_join_all;
use scylla::value::Counter;
use shop_common::cql::Cql;
use shop_common::cql::results::{decode_error, lwt_applied, rows};
use shop_common::models::order::{Order, OrderStatus, StatusChange};
use shop_common::store::{Ping, StoreError, StoreResult};
use uuid::Uuid;

mod rows;
mod schema;

use self::rows::{
    ActiveRow, OrderRow, StatusChangeValue, StatusCountRow, UnreleasedRow, UserOrderRow,
    parse_status,
};
pub use self::schema::SCHEMA;
use super::{CreateOutcome, OrderStore, TransitionOutcome};

pub const DEFAULT_KEYSPACE: &str = "shop_orders";

/// Partitions of `active_orders` and `unreleased_cancellations`. Changing it strands the
/// entries already written, so it is fixed.
const BUCKETS: i32 = 8;

/// Compare-and-set attempts on one order before giving up under extreme contention.
const MAX_CAS_ATTEMPTS: usize = 16;

/// A create writes its index entries just before the order row; an entry whose order is
/// still missing this long after belongs to a create that failed, and is dropped.
const MISSING_ORDER_GRACE: TimeDelta = TimeDelta::minutes(1);

pub struct CqlOrderStore {
    cql: Cql,
}

impl CqlOrderStore {
    pub fn new(cql: Cql) -> Self {
        Self { cql }
    }

    /// Every entry of one of the bucketed index tables.
    async fn all_buckets<R>(&self, statement: &'static str) -> StoreResult<Vec<R>>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
    {
        let pages = try_join_all((0..BUCKETS).map(|bucket| async move {
            let result = self.cql.execute(statement, (bucket,)).await?;
            rows(result)?
                .rows::<R>()
                .map_err(decode_error)?
                .map(|row| row.map_err(decode_error))
                .collect::<StoreResult<Vec<R>>>()
        }))
        .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// Makes the processor's entry for an order say what its row says.
    async fn index_active(&self, order: &Order) -> StoreResult<()> {
        if order.status.next_automatic().is_some() {
            self.cql
                .execute(
                    "upsert_active_order",
                    (
                        bucket(order.id),
                        order.id,
                        order.status.as_str(),
                        order.updated_at,
                    ),
                )
                .await?;
        } else {
            self.cql
                .execute("delete_active_order", (bucket(order.id), order.id))
                .await?;
        }
        Ok(())
    }

    async fn add_status_count(&self, status: OrderStatus, delta: i64) -> StoreResult<()> {
        self.cql
            .execute("add_status_count", (Counter(delta), status.as_str()))
            .await?;
        Ok(())
    }

    /// A retried checkout: the first order stands. Takes back what the index writes said
    /// about the retry's order.
    async fn keep_first(&self, order: &Order, existing: Order) -> StoreResult<CreateOutcome> {
        if (existing.user_id, existing.created_at) != (order.user_id, order.created_at) {
            self.cql
                .execute(
                    "delete_user_order",
                    (order.user_id, order.created_at, order.id),
                )
                .await?;
        }
        self.index_active(&existing).await?;
        Ok(CreateOutcome::Exists(existing))
    }

    /// What follows a won compare-and-set: the indexes and counters catch up. A failure here
    /// is logged, not returned: the change is made, and the processor repairs the index.
    async fn after_transition(&self, changed: &Order, from: OrderStatus) {
        let to = changed.status;
        let mut result = self.index_active(changed).await;
        if is_final(from) {
            result = result.and(self.add_status_count(from, -1).await);
        }
        if is_final(to) {
            result = result.and(self.add_status_count(to, 1).await);
        }
        if let Err(err) = result {
            tracing::warn!(order_id = %changed.id, error = %err, "order indexes lag behind a status change");
        }
    }
}

#[async_trait]
impl OrderStore for CqlOrderStore {
    async fn create(&self, order: &Order) -> StoreResult<CreateOutcome> {
        let order = to_millis(order);
        // The indexes first: an entry without its order is skipped by every reader, while an
        // order without its entries would be invisible to its user and to the processor.
        if order.status.next_automatic().is_some() {
            self.cql
                .execute(
                    "index_new_active_order",
                    (
                        order.user_id,
                        order.created_at,
                        order.id,
                        bucket(order.id),
                        order.id,
                        order.status.as_str(),
                        order.updated_at,
                    ),
                )
                .await?;
        } else {
            self.cql
                .execute(
                    "index_new_final_order",
                    (order.user_id, order.created_at, order.id),
                )
                .await?;
        }
        let items = serde_json::to_string(&order.items)
            .map_err(|err| StoreError::Unavailable(format!("cannot encode an order: {err}")))?;
        let history: Vec<StatusChangeValue> =
            order.history.iter().map(StatusChangeValue::from).collect();
        let result = self
            .cql
            .execute(
                "insert_order",
                (
                    order.id,
                    order.user_id,
                    &items,
                    order.total_cents,
                    order.status.as_str(),
                    order.created_at,
                    order.updated_at,
                    &history,
                ),
            )
            .await?;
        if !lwt_applied(result)? {
            let existing = self.get(order.id).await?.ok_or_else(|| {
                StoreError::Unavailable(format!("order {} vanished while being read", order.id))
            })?;
            // This very order: the driver repeated the insert on another node after its
            // first coordinator failed, and the repeat found the first attempt's row.
            if existing != order {
                return self.keep_first(&order, existing).await;
            }
        }
        if is_final(order.status) {
            self.add_status_count(order.status, 1).await?;
        }
        Ok(CreateOutcome::Created)
    }

    async fn get(&self, id: Uuid) -> StoreResult<Option<Order>> {
        let result = self.cql.execute("select_order", (id,)).await?;
        rows(result)?
            .maybe_first_row::<OrderRow>()
            .map_err(decode_error)?
            .map(OrderRow::into_order)
            .transpose()
    }

    async fn list_for_user(&self, user_id: Uuid, limit: usize) -> StoreResult<Vec<Order>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let result = self
            .cql
            .execute("select_user_orders", (user_id, cql_limit(limit)))
            .await?;
        let entries = rows(result)?
            .rows::<UserOrderRow>()
            .map_err(decode_error)?
            .map(|row| row.map_err(decode_error))
            .collect::<StoreResult<Vec<_>>>()?;
        let orders = try_join_all(entries.iter().map(|entry| self.get(entry.order_id))).await?;
        // An entry counts only if its order exists and is this user's order of that moment:
        // a create that lost to an earlier one with the same id may have left one behind.
        let mine = entries
            .iter()
            .zip(orders)
            .filter_map(|(entry, order)| {
                order.filter(|o| o.user_id == user_id && o.created_at == entry.created_at)
            })
            .collect();
        Ok(newest_first(mine, limit))
    }

    async fn list_all(&self, limit: usize) -> StoreResult<Vec<Order>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // An admin-only endpoint: a scan of the orders table cut at `limit`. Cassandra keeps
        // partitions in token order, so past `limit` orders this shows some orders, not the
        // newest ones.
        let result = self.cql.execute("list_orders", (cql_limit(limit),)).await?;
        let orders = rows(result)?
            .rows::<OrderRow>()
            .map_err(decode_error)?
            .map(|row| row.map_err(decode_error).and_then(OrderRow::into_order))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(newest_first(orders, limit))
    }

    async fn transition(
        &self,
        id: Uuid,
        from: OrderStatus,
        to: OrderStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<TransitionOutcome> {
        let at = millis(at);
        let mut outcome_unknown = false;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(order) = self.get(id).await? else {
                return Ok(TransitionOutcome::NotFound);
            };
            // The attempt whose answer was lost applied. Told apart from others' changes by
            // status and time alone: another caller making the same change in the same
            // millisecond, while this one's answer was lost, would be taken for it.
            if outcome_unknown && order.status == to && order.updated_at == at {
                self.after_transition(&order, from).await;
                return Ok(TransitionOutcome::Changed(order));
            }
            if order.status != from {
                return Ok(TransitionOutcome::Conflict(order));
            }
            if to == OrderStatus::Cancelled {
                // Before the change: once cancelled, the order's stock must go back even if
                // this process dies right after.
                self.cql
                    .execute("insert_unreleased", (bucket(id), id))
                    .await?;
            }
            let change = vec![StatusChangeValue {
                status: to.as_str().to_owned(),
                at,
            }];
            let attempt = self
                .cql
                .execute(
                    "transition_order",
                    (
                        to.as_str(),
                        at,
                        &change,
                        id,
                        from.as_str(),
                        order.updated_at,
                    ),
                )
                .await;
            let result = match attempt {
                // It may have applied: the order, read again, says. Once only, so that a
                // database that does not answer fails the call within two deadlines.
                Err(_) if !outcome_unknown => {
                    outcome_unknown = true;
                    continue;
                }
                attempt => attempt?,
            };
            if !lwt_applied(result)? {
                // Changed (or deleted) since it was read: read it again to see how.
                continue;
            }
            let mut changed = order;
            changed.status = to;
            changed.updated_at = at;
            changed.history.push(StatusChange { status: to, at });
            self.after_transition(&changed, from).await;
            return Ok(TransitionOutcome::Changed(changed));
        }
        Err(StoreError::Unavailable(format!(
            "order {id} is changing too fast to update"
        )))
    }

    async fn due_for_processing(
        &self,
        changed_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Order>> {
        let mut entries: Vec<ActiveRow> = self
            .all_buckets::<ActiveRow>("select_active_orders")
            .await?
            .into_iter()
            .filter(|entry| entry.updated_at <= changed_before)
            .collect();
        entries.sort_by_key(|entry| entry.updated_at);
        entries.truncate(limit);
        let orders = try_join_all(entries.iter().map(|entry| self.get(entry.order_id))).await?;
        let mut due = Vec::new();
        for (entry, order) in entries.iter().zip(orders) {
            let Some(order) = order else {
                if Utc::now() - entry.updated_at > MISSING_ORDER_GRACE {
                    self.cql
                        .execute(
                            "delete_active_order",
                            (bucket(entry.order_id), entry.order_id),
                        )
                        .await?;
                }
                continue;
            };
            if (order.status.as_str(), order.updated_at)
                != (entry.status.as_str(), entry.updated_at)
            {
                // The entry lags behind its order (a crash after a status change, or writes
                // that arrived out of order): correct it, or drop it for a final order.
                self.index_active(&order).await?;
            }
            if order.status.next_automatic().is_some() && order.updated_at <= changed_before {
                due.push(order);
            }
        }
        Ok(due)
    }

    async fn backlog(
        &self,
        changed_before: DateTime<Utc>,
    ) -> StoreResult<(i64, Option<DateTime<Utc>>)> {
        // From the index alone: the processor's gauges must not read every due order.
        let due = self
            .all_buckets::<ActiveRow>("select_active_orders")
            .await?
            .into_iter()
            .filter(|entry| entry.updated_at <= changed_before)
            .map(|entry| entry.updated_at);
        let (count, oldest) = due.fold((0, None), |(count, oldest): (i64, Option<_>), at| {
            (
                count + 1,
                Some(oldest.map_or(at, |o: DateTime<Utc>| o.min(at))),
            )
        });
        Ok((count, oldest))
    }

    async fn status_counts(&self) -> StoreResult<Vec<(OrderStatus, i64)>> {
        // Active statuses from the processor's index (a few partitions, as large as the
        // orders in flight), final ones from their counters: never a scan of all orders.
        let mut counts: HashMap<OrderStatus, i64> = HashMap::new();
        for entry in self
            .all_buckets::<ActiveRow>("select_active_orders")
            .await?
        {
            *counts.entry(parse_status(&entry.status)?).or_default() += 1;
        }
        let result = self.cql.execute("select_status_counts", ()).await?;
        for row in rows(result)?
            .rows::<StatusCountRow>()
            .map_err(decode_error)?
        {
            let row = row.map_err(decode_error)?;
            let status = parse_status(&row.status)?;
            if is_final(status) {
                counts.insert(status, row.orders.map_or(0, |c| c.0));
            }
        }
        Ok(OrderStatus::ALL
            .iter()
            .map(|status| (*status, counts.get(status).copied().unwrap_or(0)))
            .collect())
    }

    async fn unreleased_cancellations(&self, limit: usize) -> StoreResult<Vec<Uuid>> {
        let entries = self
            .all_buckets::<UnreleasedRow>("select_unreleased")
            .await?;
        let mut ids = Vec::new();
        for entry in entries {
            if ids.len() >= limit {
                break;
            }
            let id = entry.order_id;
            match self.get(id).await? {
                Some(order) if order.status == OrderStatus::Cancelled => ids.push(id),
                // Not cancelled yet: a cancellation may be on its way. Keep the entry.
                Some(order) if order.status.is_cancellable() => {}
                // Shipped, delivered or gone: that cancellation lost and never will win.
                _ => {
                    self.cql
                        .execute("delete_unreleased", (bucket(id), id))
                        .await?;
                }
            }
        }
        Ok(ids)
    }

    async fn mark_stock_released(&self, id: Uuid) -> StoreResult<()> {
        self.cql
            .execute("delete_unreleased", (bucket(id), id))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Ping for CqlOrderStore {
    async fn ping(&self) -> StoreResult<()> {
        self.cql.ping().await
    }
}

/// The bucket of an order in the bucketed index tables.
fn bucket(id: Uuid) -> i32 {
    (id.as_u128() % BUCKETS as u128) as i32
}

fn is_final(status: OrderStatus) -> bool {
    status.next_automatic().is_none()
}

/// Cassandra keeps timestamps in milliseconds: the order as it reads back.
fn to_millis(order: &Order) -> Order {
    let mut order = order.clone();
    order.created_at = millis(order.created_at);
    order.updated_at = millis(order.updated_at);
    for change in &mut order.history {
        change.at = millis(change.at);
    }
    order
}

fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

fn cql_limit(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

fn newest_first(mut orders: Vec<Order>, limit: usize) -> Vec<Order> {
    orders.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    orders.truncate(limit);
    orders
}
