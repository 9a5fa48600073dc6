//! The cart service: each user's cart and the checkout, on port 8001 under `/cart-api`.

pub mod api;
pub mod catalog;
pub mod domain;
pub mod metrics;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::Parser;
use shop_common::client::BaseUrls;
use shop_common::config::{AuthArgs, HttpArgs, UpstreamArgs};
use shop_common::connections::{SigningKeysCheck, UpstreamCheck};
use shop_common::cql::StorageArgs;
use shop_common::faults::FaultArgs;
use shop_common::service::{self, Skeleton};
use shop_common::topology;

use crate::catalog::Catalog;
use crate::metrics::CartMetrics;

pub const SERVICE_NAME: &str = topology::CART.name;

#[derive(Debug, Clone, Parser)]
#[command(
    name = SERVICE_NAME,
    version,
    about = "The shop's carts and checkout"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = topology::CART.listen_var, default_value_t = topology::CART.listen())]
    pub listen: SocketAddr,
    /// Base URL of the backend (products and stock), or of each of its
    /// replicas, separated by commas.
    #[arg(
        long,
        env = topology::BACKEND.url_var,
        default_value_t = BaseUrls::from(topology::BACKEND)
    )]
    pub backend_url: BaseUrls,
    /// Base URL of the order service, or of each of its replicas, separated by commas.
    #[arg(
        long,
        env = topology::ORDER.url_var,
        default_value_t = BaseUrls::from(topology::ORDER)
    )]
    pub order_service_url: BaseUrls,
    /// How long a product read from the backend may decide whether a cart add or a quantity
    /// change is accepted, in milliseconds (0: read it for every one). Refusals are always read
    /// afresh, and the checkout reserves at the backend's current stock.
    #[arg(long, env = "PRODUCT_CACHE_TTL_MS", default_value_t = 1_000)]
    pub product_cache_ttl_ms: u64,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub faults: FaultArgs,
}

pub async fn app(config: &Config) -> anyhow::Result<Router> {
    let skeleton = Skeleton::new(&api::SERVICE, &config.faults);
    let connections = skeleton.connections(&config.auth, &config.upstream)?;
    let store = skeleton.store(&config.storage, &store::STORES);
    let backend = connections.upstream(topology::BACKEND.name, &config.backend_url);
    let order_service = connections.upstream(topology::ORDER.name, &config.order_service_url);
    let readiness = Skeleton::readiness(
        store.clone(),
        vec![
            Arc::new(SigningKeysCheck(connections.verifier.clone())),
            Arc::new(UpstreamCheck(backend.clone())),
            Arc::new(UpstreamCheck(order_service.clone())),
        ],
    );
    let state = api::AppState {
        store,
        verifier: connections.verifier.clone(),
        catalog: Catalog::new(backend, Duration::from_millis(config.product_cache_ttl_ms)),
        order_service,
        readiness: readiness.clone(),
        business: CartMetrics::new(skeleton.metrics.registry()),
    };
    let http = config.http.settings();
    Ok(skeleton.router(api::routes(state), readiness, connections.verifier, &http))
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    service::run(&api::SERVICE, config.listen, &config.http, async |_| {
        app(&config).await
    })
    .await
}
