//! The backend's HTTP surface, served under `/api`.

mod audit;
mod products;
mod reservations;
mod system;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use shop_common::auth::TokenVerifier;
use shop_common::faults::{self, Faults};
use shop_common::health::{self, Readiness};
use shop_common::server::{self, HttpSettings, ServiceInfo};
use shop_common::telemetry::metrics::Metrics;
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

pub const PREFIX: &str = shop_common::models::prefix::BACKEND;

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

pub fn router(
    state: AppState,
    http: &HttpSettings,
    metrics: Arc<Metrics>,
    faults: &Faults,
) -> Router {
    let readiness = state.readiness.clone();
    let fault_api = faults::api::routes(faults, state.verifier.clone());
    let routes = OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(products::list, products::create))
        .routes(routes!(products::get, products::update, products::delete))
        .routes(routes!(reservations::reserve, reservations::release))
        .routes(routes!(reservations::commit))
        .routes(routes!(audit::stock_audit))
        .with_state(state)
        .merge(health::routes(readiness))
        .merge(fault_api);
    server::assemble(routes, &SERVICE, http, metrics, faults)
}
