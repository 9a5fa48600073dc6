//! The order service's HTTP surface, served under `/order-api`.

mod orders;

use std::sync::Arc;

use axum::extract::FromRef;
use shop_common::auth::TokenVerifier;
use shop_common::health::Readiness;
use shop_common::service::ServiceInfo;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::lifecycle::Lifecycle;

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: crate::SERVICE_NAME,
    prefix: PREFIX,
    title: "Shop order service",
    description: "Orders: created from reserved stock at the prices of the moment, moved through their \
         statuses in the background, cancellable until they ship.",
};

pub const PREFIX: &str = shop_common::topology::ORDER.prefix;

#[derive(Clone)]
pub struct AppState {
    pub lifecycle: Lifecycle,
    pub verifier: Arc<TokenVerifier>,
    pub readiness: Readiness,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The service's documented routes, with their state.
pub fn routes(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(orders::list, orders::create))
        .routes(routes!(orders::summary))
        .routes(routes!(orders::statuses))
        .routes(routes!(orders::get))
        .routes(routes!(orders::set_status))
        .routes(routes!(orders::cancel))
        .with_state(state)
}
