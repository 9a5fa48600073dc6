//! The backend: the product catalogue and its stock, on port 8000 under `/api`.

pub mod api;
pub mod domain;
pub mod metrics;
pub mod store;
pub mod sweeper;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use clap::Parser;
use shop_common::background::Background;
use shop_common::config::{AuthArgs, HttpArgs, UpstreamArgs};
use shop_common::connections::Connections;
use shop_common::cql::{Cql, StorageArgs, StorageKind};
use shop_common::faults::{FaultArgs, Faults};
use shop_common::health::{HealthCheck, Readiness, StoreCheck};
use shop_common::server;
use shop_common::telemetry::metrics::Metrics;

use crate::metrics::BackendMetrics;
use crate::store::{CqlProductStore, MemoryProductStore, ProductStore};
use crate::sweeper::ReservationSettings;

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
    /// How long a reservation holds its stock before its order commits it; an uncommitted
    /// one is then taken back. Far above any checkout's duration.
    #[arg(long, env = "RESERVATION_TTL_SECONDS", default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub reservation_ttl_seconds: u64,
    /// How often expired reservations are looked for.
    #[arg(long, env = "RESERVATION_SWEEP_INTERVAL_MS", default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub reservation_sweep_interval_ms: u64,
}

impl Config {
    fn reservations(&self) -> ReservationSettings {
        ReservationSettings {
            ttl: Duration::from_secs(self.reservation_ttl_seconds),
            sweep_interval: Duration::from_millis(self.reservation_sweep_interval_ms),
        }
    }
}

/// The service's router, wired to its store and the shop's identity provider; its
/// reservation sweeper runs in `background`.
pub async fn app(config: &Config, background: &Background) -> anyhow::Result<Router> {
    let metrics = Metrics::new(SERVICE_NAME);
    let faults = Faults::new(&config.faults, &metrics);
    let connections = Connections::new(
        SERVICE_NAME,
        &config.auth,
        &config.upstream,
        &metrics,
        &faults,
    )?;
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
    let business = BackendMetrics::new(metrics.registry());
    let (swept, settings, counted) = (store.clone(), config.reservations(), business.clone());
    background.spawn(|stop| sweeper::run(swept, settings, counted, stop));
    let state = api::AppState {
        store,
        verifier: connections.verifier.clone(),
        readiness,
        business,
        reservations: config.reservations(),
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
    let background = Background::default();
    let router = app(&config, &background).await?;
    tracing::info!(address = %config.listen, "backend listening");
    server::serve(listener, router, server::shutdown_signal()).await?;
    background.stop().await;
    Ok(())
}
