//! The backend: the product catalogue and its stock, on port 8000 under `/api`.

pub mod api;
pub mod domain;
pub mod metrics;
pub mod store;
pub mod sweeper;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use clap::Parser;
use shop_common::background::Background;
use shop_common::config::{AuthArgs, HttpArgs, UpstreamArgs};
use shop_common::cql::StorageArgs;
use shop_common::faults::FaultArgs;
use shop_common::service::{self, Skeleton};
use shop_common::topology;

use crate::metrics::BackendMetrics;
use crate::sweeper::ReservationSettings;

pub const SERVICE_NAME: &str = topology::BACKEND.name;

#[derive(Debug, Clone, Parser)]
#[command(
    name = SERVICE_NAME,
    version,
    about = "The shop's product catalogue and stock"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = topology::BACKEND.listen_var, default_value_t = topology::BACKEND.listen())]
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
    let skeleton = Skeleton::new(&api::SERVICE, &config.faults);
    let connections = skeleton.connections(&config.auth, &config.upstream)?;
    let store = skeleton.store(&config.storage, &store::STORES);
    let readiness = Skeleton::readiness(store.clone(), vec![]);
    let business = BackendMetrics::new(skeleton.metrics.registry());
    let (swept, settings, counted) = (store.clone(), config.reservations(), business.clone());
    background.spawn(|stop| sweeper::run(swept, settings, counted, stop));
    let state = api::AppState {
        store,
        verifier: connections.verifier.clone(),
        readiness: readiness.clone(),
        business,
        reservations: config.reservations(),
    };
    let http = config.http.settings();
    Ok(skeleton.router(api::routes(state), readiness, connections.verifier, &http))
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    service::run(
        &api::SERVICE,
        config.listen,
        &config.http,
        async |background| app(&config, background).await,
    )
    .await
}
