//! The backend: the product catalogue and its stock, on port 8000 under `/api`.

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
use shop_common::connections::Connections;
use shop_common::cql::{Cql, StorageArgs, StorageKind};
use shop_common::faults::{FaultArgs, Faults};
use shop_common::health::{HealthCheck, Readiness, StoreCheck};
use shop_common::server;
use shop_common::telemetry::metrics::Metrics;

use crate::metrics::BackendMetrics;
use crate::store::{CqlProductStore, MemoryProductStore, ProductStore};

pub const SERVICE_NAME: &str = "backend";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "backend",
    version,
    about = "The shop's product catalogue and stock"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "BACKEND_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
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

/// The service's router, wired to its store and the shop's identity provider.
pub async fn app(config: &Config) -> anyhow::Result<Router> {
    let metrics = Metrics::new(SERVICE_NAME);
    let faults = Faults::new(&config.faults, &metrics);
    let connections = Connections::new(
        SERVICE_NAME,
        &config.auth,
        &config.upstream,
        &metrics,
        &faults,
    );
    let store: Arc<dyn ProductStore> = match config.storage.storage {
        StorageKind::Memory => Arc::new(MemoryProductStore::new()),
        StorageKind::Cql => {
            let settings = config.storage.cql_settings(store::DEFAULT_KEYSPACE);
            let cql = Cql::start(settings, &store::SCHEMA, metrics.db.clone(), faults.clone());
            Arc::new(CqlProductStore::new(cql))
        }
    };
    let readiness = Readiness::new(vec![
        Arc::new(StoreCheck(store.clone())) as Arc<dyn HealthCheck>
    ]);
    let state = api::AppState {
        store,
        verifier: connections.verifier.clone(),
        readiness,
        business: BackendMetrics::new(metrics.registry()),
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
    tracing::info!(address = %config.listen, "backend listening");
    server::serve(listener, router, server::shutdown_signal()).await?;
    Ok(())
}
