//! Tokens, as the user service issues them to the other services, and the calls that fetch
//! a service's own token and the keys that verify every token.

use axum::http::Method;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::operation::{Body, BodyError, Operation};
use crate::topology;

/// The token endpoint's answer (RFC 6749 section 5.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// A service's own token, for calls on no user's behalf (OAuth2 client credentials).
pub struct IssueServiceToken<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
}

#[derive(Serialize)]
struct ClientCredentialsForm<'a> {
    grant_type: &'static str,
    client_id: &'a str,
    client_secret: &'a str,
}

impl Operation for IssueServiceToken<'_> {
    const PREFIX: &'static str = topology::USER.prefix;
    const ROUTE: &'static str = "/token";
    const METHOD: Method = Method::POST;
    type Response = TokenResponse;

    fn body(&self) -> Result<Option<Body>, BodyError> {
        Body::form(&ClientCredentialsForm {
            grant_type: "client_credentials",
            client_id: self.client_id,
            client_secret: self.client_secret,
        })
        .map(Some)
    }
}

/// The public keys that verify the user service's tokens.
pub struct FetchSigningKeys;

impl Operation for FetchSigningKeys {
    const PREFIX: &'static str = topology::USER.prefix;
    const ROUTE: &'static str = "/.well-known/jwks.json";
    const METHOD: Method = Method::GET;
    type Response = JwkSet;
}
