//! A reservation's life in the database: claimed (`pending`), its lines taken one by one,
//! `reserved`, then `committed` by its order or, if none comes before it expires, taken
//! back by the sweeper. Every step is a compare-and-set on the reservation's state, and
//! every stock move is idempotent (see `stock`), so a call cut off at any point is finished
//! by a retry or, at the latest, by the sweeper.

use chrono::{DateTime, Utc};
use scylla::DeserializeRow;
use shop_common::cql::results::{decode_error, lwt_applied, rows};
use shop_common::store::{StoreError, StoreResult};
use uuid::Uuid;

use super::CqlProductStore;
use super::stock::Take;
use crate::domain::{
    CommitOutcome, Reservation, ReservationState, ReserveOutcome, ReservedLine, StockLine,
};

/// How many times a state change is tried again after another call changed the state first.
const MAX_STATE_RACES: usize = 4;
/// Minutes one sweep reads at most, so a sweeper that was away catches up in steps; also
/// how far back the first sweep on a keyspace looks.
const MINUTES_PER_SWEEP: i64 = 60;

#[derive(DeserializeRow)]
pub(super) struct ReservationRow {
    pub id: Uuid,
    pub state: String,
    pub lines: Option<String>,
    pub items: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl ReservationRow {
    pub fn state(&self) -> StoreResult<ReservationState> {
        ReservationState::parse(&self.state).ok_or_else(|| {
            decode_error(format!(
                "reservation {} is in state {}",
                self.id, self.state
            ))
        })
    }

    /// Rows written before reservations expired count as expiring when they were made.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at.unwrap_or(self.created_at)
    }

    /// The lines taken, once the reservation got as far as `reserved`.
    pub fn items(&self) -> StoreResult<Vec<ReservedLine>> {
        decode_json(self.id, self.items.as_deref().unwrap_or("[]"))
    }

    pub fn requested(&self) -> StoreResult<Vec<StockLine>> {
        decode_json(self.id, self.lines.as_deref().unwrap_or("[]"))
    }

    fn reservation(&self) -> StoreResult<Reservation> {
        Ok(Reservation {
            id: self.id,
            items: self.items()?,
            created_at: self.created_at,
            expires_at: self.expires_at(),
        })
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(id: Uuid, text: &str) -> StoreResult<T> {
    serde_json::from_str(text)
        .map_err(|err| decode_error(format!("reservation {id} is unreadable: {err}")))
}

fn encode_json(value: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Unavailable(format!("cannot encode a reservation: {err}")))
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl CqlProductStore {
    pub(super) async fn reservation(&self, id: Uuid) -> StoreResult<Option<ReservationRow>> {
        let result = self.cql.execute("select_reservation", (id,)).await?;
        rows(result)?
            .maybe_first_row::<ReservationRow>()
            .map_err(decode_error)
    }

    async fn set_state(
        &self,
        id: Uuid,
        from: ReservationState,
        to: ReservationState,
    ) -> StoreResult<bool> {
        let result = self
            .cql
            .execute("set_reservation_state", (to.as_str(), id, from.as_str()))
            .await?;
        lwt_applied(result)
    }

    pub(super) async fn reserve_lines(
        &self,
        id: Uuid,
        lines: &[StockLine],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<ReserveOutcome> {
        // The sweeper's index first: a claim it cannot find would never expire.
        self.cql
            .execute("insert_expiry", (minute_of(expires_at), id))
            .await?;
        let claimed = self
            .cql
            .execute(
                "insert_reservation",
                (id, encode_json(&lines)?, Utc::now(), expires_at),
            )
            .await?;
        if !lwt_applied(claimed)? {
            // A retry: answer what the first call made, or finish what it left half-made.
            let Some(row) = self.reservation(id).await? else {
                return Err(StoreError::Unavailable(format!(
                    "reservation {id} vanished while being read"
                )));
            };
            match row.state()? {
                ReservationState::Pending => {}
                ReservationState::Reserved | ReservationState::Committed => {
                    return Ok(ReserveOutcome::Reserved(row.reservation()?));
                }
                ReservationState::Releasing | ReservationState::Released => {
                    return Ok(ReserveOutcome::AlreadyReleased);
                }
            }
        }
        let mut taken = Vec::with_capacity(lines.len());
        for line in lines {
            let refusal = match self.take(id, line.product_id, line.quantity).await? {
                Take::Taken(product) => {
                    taken.push(ReservedLine {
                        product_id: product.id,
                        name: product.name,
                        unit_price_cents: product.price_cents,
                        quantity: line.quantity,
                    });
                    continue;
                }
                Take::Voided => return Ok(ReserveOutcome::AlreadyReleased),
                Take::Missing => ReserveOutcome::UnknownProduct(line.product_id),
                Take::Insufficient { available } => ReserveOutcome::InsufficientStock {
                    product_id: line.product_id,
                    available,
                },
            };
            // All or nothing: what this reservation took so far goes back.
            self.release_if(id, |state| state == ReservationState::Pending)
                .await?;
            return Ok(refusal);
        }
        let result = self
            .cql
            .execute("set_reserved", (encode_json(&taken)?, id))
            .await?;
        if lwt_applied(result)? {
            return Ok(ReserveOutcome::Reserved(Reservation {
                id,
                items: taken,
                created_at: Utc::now(),
                expires_at,
            }));
        }
        // Another call finished it first, or the sweeper gave it up.
        match self.reservation(id).await? {
            Some(row)
                if matches!(
                    row.state()?,
                    ReservationState::Reserved | ReservationState::Committed
                ) =>
            {
                Ok(ReserveOutcome::Reserved(row.reservation()?))
            }
            _ => Ok(ReserveOutcome::AlreadyReleased),
        }
    }

    pub(super) async fn commit_reservation(&self, id: Uuid) -> StoreResult<CommitOutcome> {
        for _ in 0..MAX_STATE_RACES {
            let Some(row) = self.reservation(id).await? else {
                return Ok(CommitOutcome::Unknown);
            };
            match row.state()? {
                ReservationState::Committed => {
                    return Ok(CommitOutcome::Committed(row.reservation()?));
                }
                ReservationState::Reserved => {
                    if self
                        .set_state(id, ReservationState::Reserved, ReservationState::Committed)
                        .await?
                    {
                        return Ok(CommitOutcome::Committed(row.reservation()?));
                    }
                }
                ReservationState::Pending => return Ok(CommitOutcome::NotReady),
                ReservationState::Releasing | ReservationState::Released => {
                    return Ok(CommitOutcome::Released);
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "reservation {id} is changing too fast to commit"
        )))
    }

    /// Releases a reservation whose state `may_release` accepts, or finishes a release that
    /// was cut off; returns the state it was released from.
    pub(super) async fn release_if(
        &self,
        id: Uuid,
        may_release: impl Fn(ReservationState) -> bool,
    ) -> StoreResult<Option<ReservationState>> {
        for _ in 0..MAX_STATE_RACES {
            let Some(row) = self.reservation(id).await? else {
                return Ok(None);
            };
            let state = row.state()?;
            match state {
                ReservationState::Released => return Ok(None),
                ReservationState::Releasing => {}
                _ if !may_release(state) => return Ok(None),
                _ => {
                    if !self
                        .set_state(id, state, ReservationState::Releasing)
                        .await?
                    {
                        continue;
                    }
                }
            }
            self.return_lines(&row).await?;
            self.set_state(id, ReservationState::Releasing, ReservationState::Released)
                .await?;
            return Ok(Some(state));
        }
        Err(StoreError::Unavailable(format!(
            "reservation {id} is changing too fast to release"
        )))
    }

    /// Puts back every line. A reservation that got as far as `reserved` took them all; a
    /// half-made one may have taken some, so each of its lines is undone or voided.
    async fn return_lines(&self, row: &ReservationRow) -> StoreResult<()> {
        let items = row.items()?;
        if items.is_empty() {
            for line in row.requested()? {
                self.undo_take(row.id, line.product_id, line.quantity)
                    .await?;
            }
        } else {
            for line in items {
                self.give_back(row.id, line.product_id, line.quantity)
                    .await?;
            }
        }
        Ok(())
    }

    /// Takes back the stock of every reservation that expired uncommitted, a minute of
    /// expiries at a time, and remembers how far it got so that no minute is read twice.
    pub(super) async fn sweep(&self, now: DateTime<Utc>) -> StoreResult<Vec<ReservationState>> {
        let last_over = minute_of(now) - 1;
        let done_through = self
            .scan::<(Option<i64>,)>("select_sweep", ())
            .await?
            .into_iter()
            .find_map(|(done,)| done)
            .unwrap_or(last_over - MINUTES_PER_SWEEP);
        let mut reclaimed = Vec::new();
        for minute in (done_through + 1)..=last_over.min(done_through + MINUTES_PER_SWEEP) {
            for (id,) in self.scan::<(Uuid,)>("list_expiring", (minute,)).await? {
                let expired = |state: ReservationState| state.is_reclaimable();
                if let Some(state) = self.release_if(id, expired).await? {
                    reclaimed.push(state);
                }
            }
            self.cql.execute("set_sweep", (minute,)).await?;
        }
        Ok(reclaimed)
    }
}
