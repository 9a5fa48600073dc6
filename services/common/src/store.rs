//! What every storage implementation reports when it fails, and how that reaches clients.

use crate::problem::ApiError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused to work; the request may succeed later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the database did not answer in time")]
    Timeout,
    #[error("the page cursor is not valid")]
    InvalidCursor,
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable");
                ApiError::ServiceUnavailable(
                    "the database is unavailable, try again later".to_owned(),
                )
            }
            StoreError::Timeout => {
                ApiError::ServiceUnavailable("the database did not answer in time".to_owned())
            }
            StoreError::InvalidCursor => {
                ApiError::BadRequest("the page cursor is not valid".to_owned())
            }
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page of a list, and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Every store can say whether it can serve requests now.
#[async_trait::async_trait]
pub trait Ping: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
}
