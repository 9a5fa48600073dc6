//! The cart service: each user's cart and the checkout, on port 8001 under `/cart-api`.

pub mod api;
pub mod domain;
pub mod metrics;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use clap::Parser;
use shop_common::config::{AuthArgs, HttpArgs, UpstreamArgs};
use shop_common::connections::{Connections, SigningKeysCheck, UpstreamCheck};
use shop_common::cql::{Cql, StorageArgs, StorageKind};
use shop_common::faults::{FaultArgs, Faults};
use shop_common::health::{HealthCheck, Readiness, StoreCheck};
use shop_common::server;
use shop_common::telemetry::metrics::Metrics;

use crate::metrics::CartMetrics;
use crate::store::{CartStore, CqlCartStore, MemoryCartStore};

pub const SERVICE_NAME: &str = "cart-service";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "cart-service",
    version,
    about = "The shop's carts and checkout"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CART_LISTEN", default_value = "127.0.0.1:8001")]
    pub listen: SocketAddr,
    /// Base URL of the backend (products and stock).
    #[arg(long, env = "BACKEND_URL", default_value = "http://127.0.0.1:8000")]
    pub backend_url: String,
    /// Base URL of the order service.
    #[arg(
        long,
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8002"
    )]
    pub order_service_url: String,
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
    let metrics = Metrics::new(SERVICE_NAME);
    let faults = Faults::new(&config.faults, &metrics);
    let connections = Connections::new(
        SERVICE_NAME,
        &config.auth,
        &config.upstream,
        &metrics,
        &faults,
    )?;
    let store: Arc<dyn CartStore> = match config.storage.storage {
        StorageKind::Memory => Arc::new(MemoryCartStore::new()),
        StorageKind::Cql => {
            let settings = config.storage.cql_settings(store::DEFAULT_KEYSPACE);
            let cql = Cql::start(settings, &store::SCHEMA, metrics.db.clone(), faults.clone());
            Arc::new(CqlCartStore::new(cql))
        }
    };
    let backend = connections.upstream("backend", &config.backend_url);
    let order_service = connections.upstream("order-service", &config.order_service_url);
    let readiness = Readiness::new(vec![
        Arc::new(StoreCheck(store.clone())) as Arc<dyn HealthCheck>,
        Arc::new(SigningKeysCheck(connections.verifier.clone())),
        Arc::new(UpstreamCheck(backend.clone())),
        Arc::new(UpstreamCheck(order_service.clone())),
    ]);
    let state = api::AppState {
        store,
        verifier: connections.verifier.clone(),
        backend,
        order_service,
        readiness,
        business: CartMetrics::new(metrics.registry()),
    };
    Ok(api::router(
        state,
        &config.http.settings(),
        metrics,
        &faults,
    ))
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let router = app(&config).await?;
    tracing::info!(address = %config.listen, "cart service listening");
    server::serve(listener, router, server::shutdown_signal()).await?;
    Ok(())
}
