//! Tokens for calls a service makes on no user's behalf (OAuth2 client credentials).

use std::time::{Duration, Instant};

use super::{Credentials, Upstream, UpstreamError};
use crate::models::identity::IssueServiceToken;

/// Fetches and caches this service's own token from the user service.
pub struct ServiceTokens {
    user_service: Upstream,
    client_id: String,
    client_secret: String,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

/// Renew a little before expiry so a token never dies in flight.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(30);

impl ServiceTokens {
    pub fn new(user_service: Upstream, client_id: String, client_secret: String) -> Self {
        Self {
            user_service,
            client_id,
            client_secret,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn token(&self) -> Result<String, UpstreamError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let issue = IssueServiceToken {
            client_id: &self.client_id,
            client_secret: &self.client_secret,
        };
        // Boxed: fetching a token is itself an upstream call, which may need a token.
        let response = Box::pin(self.user_service.call(&issue, Credentials::None)).await?;
        let lifetime = Duration::from_secs(response.expires_in).saturating_sub(RENEW_BEFORE_EXPIRY);
        *cached = Some((response.access_token.clone(), Instant::now() + lifetime));
        Ok(response.access_token)
    }

    /// Forget the cached token, e.g. after the user service rotated its key and refused it.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
