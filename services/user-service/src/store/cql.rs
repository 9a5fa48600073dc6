//! Users in Apache Cassandra or ScyllaDB. A username belongs to whoever claims it first in
//! `users_by_username` with a lightweight transaction, so it stays unique however many user
//! service instances share the database; everything else is plain writes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scylla::DeserializeRow;
use scylla::response::query_result::QueryResult;
use scylla::value::{CqlValue, MaybeUnset};
use shop_common::auth::Role;
use shop_common::cql::results::{decode_error, lwt_row, rows};
use shop_common::cql::{Cql, Migration, Schema};
use shop_common::models::order::{OrderEvent, OrderStatus};
use shop_common::store::{Ping, StoreError, StoreResult};
use uuid::Uuid;

use super::{InsertOutcome, ORDER_EVENTS_KEPT, UserStore};
use crate::domain::{StoredUser, User, UserChange};

pub const DEFAULT_KEYSPACE: &str = "shop_users";

const USER_COLUMNS: &str = "id, username, email, full_name, role, password_hash, created_at";

pub static SCHEMA: Schema = Schema {
    migrations: &[Migration {
        version: "0001_users",
        cql: include_str!("../../migrations/0001_users.cql"),
    }],
    statements: &[
        (
            "select_user",
            const_format::concatcp!("SELECT ", USER_COLUMNS, " FROM users WHERE id = ?"),
        ),
        (
            "insert_user",
            const_format::concatcp!(
                "INSERT INTO users (",
                USER_COLUMNS,
                ") VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
        ),
        (
            "update_user",
            "UPDATE users SET email = ?, full_name = ?, password_hash = ? WHERE id = ?",
        ),
        (
            "claim_username",
            "INSERT INTO users_by_username (username, id) VALUES (?, ?) IF NOT EXISTS",
        ),
        (
            "select_username",
            "SELECT id, writetime(id) AS claimed_at FROM users_by_username WHERE username = ?",
        ),
        (
            "release_username",
            "DELETE FROM users_by_username WHERE username = ? IF id = ?",
        ),
        (
            "insert_order_event",
            "INSERT INTO order_events (user_id, occurred_at, order_id, status, total_cents) VALUES (?, ?, ?, ?, ?)",
        ),
        (
            "select_order_events",
            "SELECT order_id, status, total_cents, occurred_at FROM order_events WHERE user_id = ? LIMIT ?",
        ),
    ],
    // A repeated claim finds the name held by its own id, which `claim` counts as won.
    retry_safe_conditionals: &["claim_username"],
    browse_reads: &[],
};

/// A username claimed this long ago by an id that still has no user row belongs to a
/// registration that died between its two writes (a crash, not an error: errors release
/// the claim). Registrations in progress finish within a few request timeouts, far sooner.
const ORPHAN_CLAIM_AGE: Duration = Duration::from_secs(60);

pub struct CqlUserStore {
    cql: Cql,
}

#[derive(DeserializeRow)]
struct UserRow {
    id: Uuid,
    username: String,
    email: String,
    full_name: Option<String>,
    role: String,
    password_hash: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for StoredUser {
    type Error = StoreError;

    fn try_from(row: UserRow) -> StoreResult<Self> {
        Ok(StoredUser {
            user: User {
                id: row.id,
                username: row.username,
                email: row.email,
                full_name: row.full_name,
                role: parse_role(&row.role)?,
                created_at: row.created_at,
            },
            password_hash: row.password_hash,
        })
    }
}

#[derive(DeserializeRow)]
struct UsernameRow {
    id: Uuid,
    /// When the claim was written, in microseconds since the epoch.
    claimed_at: i64,
}

#[derive(DeserializeRow)]
struct OrderEventRow {
    order_id: Uuid,
    status: String,
    total_cents: i64,
    occurred_at: DateTime<Utc>,
}

impl CqlUserStore {
    pub fn new(cql: Cql) -> Self {
        Self { cql }
    }

    /// Claims a username for `id`: `Ok(None)` when claimed (now, or by an earlier attempt of
    /// this same registration whose answer was lost), else the owner's id.
    async fn claim(&self, username: &str, id: Uuid) -> StoreResult<Option<Uuid>> {
        let result = self.cql.execute("claim_username", (username, id)).await?;
        let (applied, owner) = lwt_outcome(result)?;
        Ok(match owner {
            _ if applied => None,
            Some(owner) if owner == id => None,
            Some(owner) => Some(owner),
            // Not applied, yet no owner: the claim was released meanwhile. Report the
            // name as taken rather than loop; the client may simply try again.
            None => Some(Uuid::nil()),
        })
    }

    /// Gives back a claim, only if `id` still holds it.
    async fn release(&self, username: &str, id: Uuid) -> StoreResult<bool> {
        let result = self.cql.execute("release_username", (username, id)).await?;
        Ok(lwt_outcome(result)?.0)
    }

    /// Releases `owner`'s claim on `username` when it is an orphan: old, and without the
    /// user row its registration should have written.
    async fn release_orphan(&self, username: &str, owner: Uuid) -> StoreResult<bool> {
        let Some(claim) = self.username_owner(username).await? else {
            return Ok(false);
        };
        let age_micros = Utc::now().timestamp_micros() - claim.claimed_at;
        let old = u128::try_from(age_micros).is_ok_and(|age| age > ORPHAN_CLAIM_AGE.as_micros());
        if claim.id != owner || !old || self.by_id(owner).await?.is_some() {
            return Ok(false);
        }
        tracing::warn!(%username, %owner, "releasing a username claimed by a registration that never completed");
        self.release(username, owner).await
    }

    async fn username_owner(&self, username: &str) -> StoreResult<Option<UsernameRow>> {
        let result = self.cql.execute("select_username", (username,)).await?;
        rows(result)?
            .maybe_first_row::<UsernameRow>()
            .map_err(decode_error)
    }
}

#[async_trait]
impl UserStore for CqlUserStore {
    async fn insert(&self, stored: &StoredUser) -> StoreResult<InsertOutcome> {
        let user = &stored.user;
        let mut owner = self.claim(&user.username, user.id).await?;
        if let Some(other) = owner
            && self.release_orphan(&user.username, other).await?
        {
            owner = self.claim(&user.username, user.id).await?;
        }
        if owner.is_some() {
            return Ok(InsertOutcome::UsernameTaken);
        }
        let written = self
            .cql
            .execute(
                "insert_user",
                (
                    user.id,
                    &user.username,
                    &user.email,
                    // Unset rather than null: a null would write a tombstone.
                    user.full_name
                        .as_deref()
                        .map_or(MaybeUnset::Unset, MaybeUnset::Set),
                    role_text(user.role),
                    &stored.password_hash,
                    user.created_at,
                ),
            )
            .await;
        if let Err(err) = written {
            // The user row may or may not be there; without the claim nobody finds it, and a
            // retry (with a new id) can claim the name again.
            if let Err(release_err) = self.release(&user.username, user.id).await {
                tracing::warn!(username = %user.username, error = %release_err,
                    "cannot release the username of a failed registration");
            }
            return Err(err);
        }
        Ok(InsertOutcome::Inserted)
    }

    async fn by_id(&self, id: Uuid) -> StoreResult<Option<StoredUser>> {
        let result = self.cql.execute("select_user", (id,)).await?;
        rows(result)?
            .maybe_first_row::<UserRow>()
            .map_err(decode_error)?
            .map(StoredUser::try_from)
            .transpose()
    }

    async fn by_username(&self, username: &str) -> StoreResult<Option<StoredUser>> {
        let Some(claim) = self.username_owner(username).await? else {
            return Ok(None);
        };
        // No user row yet: a registration in progress, or one that never completed.
        Ok(self
            .by_id(claim.id)
            .await?
            .filter(|stored| stored.user.username == username))
    }

    async fn update(&self, id: Uuid, change: &UserChange) -> StoreResult<Option<StoredUser>> {
        // An UPDATE of a missing row would create one: look first (users are never deleted).
        let Some(mut stored) = self.by_id(id).await? else {
            return Ok(None);
        };
        // Only the changed columns are written (the others are unset), so concurrent
        // updates of different fields do not undo each other.
        let set = |value: &Option<String>| value.clone().map_or(MaybeUnset::Unset, MaybeUnset::Set);
        self.cql
            .execute(
                "update_user",
                (
                    set(&change.email),
                    set(&change.full_name),
                    set(&change.password_hash),
                    id,
                ),
            )
            .await?;
        if let Some(email) = &change.email {
            stored.user.email.clone_from(email);
        }
        if let Some(full_name) = &change.full_name {
            stored.user.full_name = Some(full_name.clone());
        }
        if let Some(hash) = &change.password_hash {
            stored.password_hash.clone_from(hash);
        }
        Ok(Some(stored))
    }

    async fn record_order_event(&self, event: &OrderEvent) -> StoreResult<()> {
        self.cql
            .execute(
                "insert_order_event",
                (
                    event.user_id,
                    event.occurred_at,
                    event.order_id,
                    event.status.as_str(),
                    event.total_cents,
                ),
            )
            .await?;
        Ok(())
    }

    async fn order_events(&self, user_id: Uuid) -> StoreResult<Vec<OrderEvent>> {
        let limit = i32::try_from(ORDER_EVENTS_KEPT).unwrap_or(i32::MAX);
        let result = self
            .cql
            .execute("select_order_events", (user_id, limit))
            .await?;
        rows(result)?
            .rows::<OrderEventRow>()
            .map_err(decode_error)?
            .map(|row| {
                let row = row.map_err(decode_error)?;
                Ok(OrderEvent {
                    order_id: row.order_id,
                    user_id,
                    status: parse_status(&row.status)?,
                    total_cents: row.total_cents,
                    occurred_at: row.occurred_at,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Ping for CqlUserStore {
    async fn ping(&self) -> StoreResult<()> {
        self.cql.ping().await
    }
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Admin => "admin",
        Role::Service => "service",
    }
}

fn parse_role(text: &str) -> StoreResult<Role> {
    [Role::User, Role::Admin, Role::Service]
        .into_iter()
        .find(|role| role_text(*role) == text)
        .ok_or_else(|| decode_error(format!("unknown role {text:?}")))
}

fn parse_status(text: &str) -> StoreResult<OrderStatus> {
    OrderStatus::ALL
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| decode_error(format!("unknown order status {text:?}")))
}

/// `[applied]`, and the `id` the row holds when not applied (`None` when there is no row).
fn lwt_outcome(result: QueryResult) -> StoreResult<(bool, Option<Uuid>)> {
    let rows = rows(result)?;
    let id_column = rows
        .column_specs()
        .get_by_name("id")
        .map(|(index, _)| index);
    let (applied, row) = lwt_row(&rows)?;
    let id = id_column
        .and_then(|index| row.columns.get(index))
        .and_then(|value| match value {
            Some(CqlValue::Uuid(id)) => Some(*id),
            _ => None,
        });
    Ok((applied, id))
}
