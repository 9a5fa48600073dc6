//! The cart service's HTTP surface, served under `/cart-api`.

mod admin;
mod cart;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use shop_common::auth::TokenVerifier;
use shop_common::client::Upstream;
use shop_common::health::{self, Readiness};
use shop_common::openapi;
use shop_common::server::{self, HttpSettings};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::CartStore;

pub const PREFIX: &str = "/cart-api";

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn CartStore>,
    pub verifier: Arc<TokenVerifier>,
    pub backend: Upstream,
    pub order_service: Upstream,
    pub readiness: Readiness,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

pub fn router(state: AppState, http: &HttpSettings) -> Router {
    let readiness = state.readiness.clone();
    let routes = OpenApiRouter::new()
        .routes(routes!(cart::get_cart, cart::clear_cart))
        .routes(routes!(cart::add_item))
        .routes(routes!(cart::update_item, cart::remove_item))
        .routes(routes!(cart::total))
        .routes(routes!(cart::checkout))
        .routes(routes!(admin::list_carts))
        .with_state(state)
        .merge(health::routes(readiness));
    let (router, _) = openapi::serve_document(
        OpenApiRouter::new().nest(PREFIX, routes),
        PREFIX,
        "Shop cart service",
        "Each user's cart: items checked against the catalogue, totals, and the checkout that \
         turns a cart into an order.",
    );
    server::with_middleware(router, http)
}
