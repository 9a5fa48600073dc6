//! The order service: orders and their life cycle, on port 8002 under `/order-api`.

pub mod api;
pub mod domain;
pub mod lifecycle;
pub mod metrics;
pub mod placement;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::Parser;
use shop_common::background::Background;
use shop_common::client::BaseUrls;
use shop_common::config::{AuthArgs, HttpArgs, UpstreamArgs};
use shop_common::connections::{SigningKeysCheck, UpstreamCheck};
use shop_common::cql::StorageArgs;
use shop_common::faults::FaultArgs;
use shop_common::service::{self, Skeleton};
use shop_common::topology;

use crate::lifecycle::Lifecycle;
use crate::metrics::OrderMetrics;

pub const SERVICE_NAME: &str = topology::ORDER.name;

#[derive(Debug, Clone, Parser)]
#[command(
    name = SERVICE_NAME,
    version,
    about = "The shop's orders and their life cycle"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = topology::ORDER.listen_var, default_value_t = topology::ORDER.listen())]
    pub listen: SocketAddr,
    /// Base URL of the backend (stock reservations), or of each of its
    /// replicas, separated by commas.
    #[arg(
        long,
        env = topology::BACKEND.url_var,
        default_value_t = BaseUrls::from(topology::BACKEND)
    )]
    pub backend_url: BaseUrls,
    /// How long an order stays in each status before the processor moves it on, in ms.
    #[arg(long, env = "ORDER_STATUS_STEP_MS", default_value_t = 30_000)]
    pub order_status_step_ms: u64,
    /// How often the processor looks for orders to move on, in ms.
    #[arg(long, env = "ORDER_PROCESSOR_TICK_MS", default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub order_processor_tick_ms: u64,
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

/// The router, and the order processor running in `background`.
pub async fn app(config: &Config, background: &Background) -> anyhow::Result<Router> {
    let skeleton = Skeleton::new(&api::SERVICE, &config.faults);
    let connections = skeleton.connections(&config.auth, &config.upstream)?;
    let store = skeleton.store(&config.storage, &store::STORES);
    let lifecycle = Lifecycle {
        store: store.clone(),
        backend: connections.upstream(topology::BACKEND.name, &config.backend_url),
        user_service: connections.upstream(topology::USER.name, &config.auth.user_service_url),
        metrics: OrderMetrics::new(skeleton.metrics.registry()),
    };
    let readiness = Skeleton::readiness(
        store,
        vec![
            Arc::new(SigningKeysCheck(connections.verifier.clone())),
            Arc::new(UpstreamCheck(lifecycle.backend.clone())),
        ],
    );
    let (processor, step, tick) = (
        lifecycle.clone(),
        Duration::from_millis(config.order_status_step_ms),
        Duration::from_millis(config.order_processor_tick_ms),
    );
    background.spawn(|stop| processor.run_processor(step, tick, stop));
    let state = api::AppState {
        lifecycle,
        verifier: connections.verifier.clone(),
        readiness: readiness.clone(),
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
