//! The backend's HTTP surface, served under `/api`.

mod products;
mod reservations;
mod system;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use shop_common::auth::TokenVerifier;
use shop_common::health::{self, Readiness};
use shop_common::openapi;
use shop_common::server::{self, HttpSettings};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::ProductStore;

pub const PREFIX: &str = "/api";

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn ProductStore>,
    pub verifier: Arc<TokenVerifier>,
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
        .routes(routes!(system::health))
        .routes(routes!(products::list, products::create))
        .routes(routes!(products::get, products::update, products::delete))
        .routes(routes!(reservations::reserve, reservations::release))
        .with_state(state)
        .merge(health::routes(readiness));
    let (router, _) = openapi::serve_document(
        OpenApiRouter::new().nest(PREFIX, routes),
        PREFIX,
        "Shop backend",
        "The product catalogue and its stock. Reads are public; writes are for admins; \
         stock reservations are internal to the shop's services.",
    );
    server::with_middleware(router, http)
}
