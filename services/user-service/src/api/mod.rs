//! The user service's HTTP surface, served under `/user-api`.

mod account;
mod internal;
mod me;

use std::sync::Arc;

use axum::extract::FromRef;
use shop_common::auth::{TokenSigner, TokenVerifier};
use shop_common::client::Upstream;
use shop_common::health::Readiness;
use shop_common::service::ServiceInfo;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::metrics::UserMetrics;
use crate::passwords::PasswordHasher;
use crate::service_clients::ServiceClients;
use crate::store::UserStore;

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: crate::SERVICE_NAME,
    prefix: PREFIX,
    title: "Shop user service",
    description: "Users, tokens (OAuth2 password and client-credentials flows, EdDSA JWTs) and each \
         user's view of their cart and orders.",
};

pub const PREFIX: &str = shop_common::topology::USER.prefix;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn UserStore>,
    pub signer: Arc<TokenSigner>,
    pub verifier: Arc<TokenVerifier>,
    pub hasher: PasswordHasher,
    pub service_clients: Arc<ServiceClients>,
    pub cart_service: Upstream,
    pub order_service: Upstream,
    pub readiness: Readiness,
    pub business: UserMetrics,
    /// The admin account's username (normalized): nobody else may register it.
    pub admin_username: Arc<str>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The service's documented routes, with their state.
pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(account::register))
        .routes(routes!(account::token))
        .routes(routes!(account::jwks))
        .routes(routes!(me::get_me, me::update_me))
        .routes(routes!(me::profile))
        .routes(routes!(me::orders, me::checkout))
        .routes(routes!(me::cart))
        .routes(routes!(me::total_spent))
        .routes(routes!(internal::order_event))
        .with_state(state)
}
