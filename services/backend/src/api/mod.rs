//! The backend's HTTP surface, served under `/api`.

mod audit;
mod products;
mod reservations;
mod system;

use std::sync::Arc;

use axum::extract::FromRef;
use shop_common::auth::TokenVerifier;
use shop_common::health::Readiness;
use shop_common::service::ServiceInfo;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::metrics::BackendMetrics;
use crate::store::ProductStore;
use crate::sweeper::ReservationSettings;

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: crate::SERVICE_NAME,
    prefix: PREFIX,
    title: "Shop backend",
    description: "The product catalogue and its stock. Reads are public; writes are for admins; \
         stock reservations are internal to the shop's services.",
};

pub const PREFIX: &str = shop_common::topology::BACKEND.prefix;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn ProductStore>,
    pub verifier: Arc<TokenVerifier>,
    pub readiness: Readiness,
    pub business: BackendMetrics,
    pub reservations: ReservationSettings,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The service's documented routes, with their state.
pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(products::list, products::create))
        .routes(routes!(products::get, products::update, products::delete))
        .routes(routes!(reservations::reserve, reservations::release))
        .routes(routes!(reservations::commit))
        .routes(routes!(audit::stock_audit))
        .with_state(state)
}
