//! Tokens for calls a service makes on no user's behalf (OAuth2 client credentials).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Body, Credentials, Upstream, UpstreamError};

/// The token endpoint's answer (RFC 6749 section 5.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

#[derive(Serialize)]
struct ClientCredentialsForm<'a> {
    grant_type: &'static str,
    client_id: &'a str,
    client_secret: &'a str,
}

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
        let form = ClientCredentialsForm {
            grant_type: "client_credentials",
            client_id: &self.client_id,
            client_secret: &self.client_secret,
        };
        let body = Body::form(&form).map_err(|_| self.user_service.invalid_response())?;
        // Boxed: fetching a token is itself an upstream call, which may need a token.
        let response: TokenResponse = Box::pin(self.user_service.send_json(
            reqwest::Method::POST,
            "/user-api/token",
            Some(body),
            Credentials::None,
        ))
        .await?;
        let lifetime = Duration::from_secs(response.expires_in).saturating_sub(RENEW_BEFORE_EXPIRY);
        *cached = Some((response.access_token.clone(), Instant::now() + lifetime));
        Ok(response.access_token)
    }

    /// Forget the cached token, e.g. after the user service rotated its key and refused it.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
