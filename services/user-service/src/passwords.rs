//! bcrypt on the blocking pool: hashing is deliberately slow and must not stall the runtime.

use shop_common::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct PasswordHasher {
    cost: u32,
}

impl PasswordHasher {
    pub fn new(cost: u32) -> Self {
        Self { cost }
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let cost = self.cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
            .await
            .map_err(|err| ApiError::Internal(format!("hashing task failed: {err}")))?
            .map_err(|err| ApiError::Internal(format!("hashing failed: {err}")))
    }

    /// Checks a password. Unknown users are checked against a throwaway hash of the same cost,
    /// so response time does not reveal which usernames exist.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let cost = self.cost;
        tokio::task::spawn_blocking(move || match hash {
            Some(hash) => bcrypt::verify(password, &hash).unwrap_or(false),
            None => {
                let _ = bcrypt::hash(password, cost);
                false
            }
        })
        .await
        .map_err(|err| ApiError::Internal(format!("verification task failed: {err}")))
    }
}
