//! Reading what a statement returned, the same way in every service's store.

use std::fmt::Display;

use scylla::response::query_result::{QueryResult, QueryRowsResult};
use scylla::value::{CqlValue, Row};

use crate::store::{StoreError, StoreResult};

/// Rows that do not decode as the schema says: the database is not the one we expect.
pub fn decode_error(err: impl Display) -> StoreError {
    StoreError::Unavailable(format!("unexpected data from the database: {err}"))
}

/// The rows of a statement that returns rows.
pub fn rows(result: QueryResult) -> StoreResult<QueryRowsResult> {
    result.into_rows_result().map_err(decode_error)
}

/// The one row a lightweight transaction returns, and whether it applied: its first
/// column, `[applied]`. When it did not, the row also holds the compared columns.
pub fn lwt_row(rows: &QueryRowsResult) -> StoreResult<(bool, Row)> {
    let row = rows
        .maybe_first_row::<Row>()
        .map_err(decode_error)?
        .ok_or_else(|| {
            StoreError::Unavailable("a conditional update returned no row".to_owned())
        })?;
    let applied = matches!(row.columns.first(), Some(Some(CqlValue::Boolean(true))));
    Ok((applied, row))
}

/// Whether a lightweight transaction applied.
pub fn lwt_applied(result: QueryResult) -> StoreResult<bool> {
    Ok(lwt_row(&rows(result)?)?.0)
}
