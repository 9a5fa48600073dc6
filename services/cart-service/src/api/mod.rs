//! The cart service's HTTP surface, served under `/cart-api`.

mod admin;
mod cart;

use std::sync::Arc;

use axum::extract::FromRef;
use shop_common::auth::TokenVerifier;
use shop_common::client::Upstream;
use shop_common::health::Readiness;
use shop_common::service::ServiceInfo;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::catalog::Catalog;
use crate::metrics::CartMetrics;
use crate::store::CartStore;

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: crate::SERVICE_NAME,
    prefix: PREFIX,
    title: "Shop cart service",
    description: "Each user's cart: items checked against the catalogue, totals, and the checkout that \
         turns a cart into an order.",
};

pub const PREFIX: &str = shop_common::topology::CART.prefix;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn CartStore>,
    pub verifier: Arc<TokenVerifier>,
    pub catalog: Catalog,
    pub order_service: Upstream,
    pub readiness: Readiness,
    pub business: CartMetrics,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The service's documented routes, with their state.
pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(cart::get_cart, cart::clear_cart))
        .routes(routes!(cart::add_item))
        .routes(routes!(cart::update_item, cart::remove_item))
        .routes(routes!(cart::total))
        .routes(routes!(cart::checkout))
        .routes(routes!(admin::list_carts))
        .with_state(state)
}
