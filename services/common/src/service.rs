//! The skeleton every service stands on. A service names itself ([`ServiceInfo`]), says how
//! to build its store ([`Stores`]), its state and its router, and adds its own readiness
//! checks; the skeleton supplies metrics, faults and the fault API, upstream connections,
//! health, the OpenAPI document, middleware, binding and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::TokenVerifier;
use crate::background::Background;
use crate::config::{AuthArgs, UpstreamArgs};
use crate::connections::{Connections, UpstreamPool};
use crate::cql::{Cql, Schema, StorageArgs, StorageKind};
use crate::faults::{self, FaultArgs, Faults};
use crate::health::{self, HealthCheck, Readiness, StoreCheck};
use crate::server::{self, HttpSettings};
use crate::store::Ping;
use crate::telemetry::metrics::Metrics;

/// What a service is called and where its routes live.
pub struct ServiceInfo {
    /// The `service` label of its metrics and the name its spans are exported under.
    pub name: &'static str,
    /// The public path prefix, e.g. `/api`: routes, documents and metrics live below it.
    pub prefix: &'static str,
    pub title: &'static str,
    pub description: &'static str,
}

/// How a service keeps its data: in memory, or in CQL tables of a keyspace of its own.
/// The store contract tests build both kinds from the same description.
pub struct Stores<S: ?Sized> {
    pub schema: &'static Schema,
    pub default_keyspace: &'static str,
    pub memory: fn() -> Arc<S>,
    pub cql: fn(Cql) -> Arc<S>,
}

/// A service's metrics and faults, from which it builds its store, connections and router.
pub struct Skeleton {
    info: &'static ServiceInfo,
    pub metrics: Arc<Metrics>,
    pub faults: Faults,
}

impl Skeleton {
    pub fn new(info: &'static ServiceInfo, faults: &FaultArgs) -> Self {
        let metrics = Metrics::new(info.name);
        let faults = Faults::new(faults, &metrics);
        Self {
            info,
            metrics,
            faults,
        }
    }

    /// The store `storage` asks for. A CQL store connects in the background: the service
    /// starts, and answers 503, while the database is away.
    pub fn store<S: ?Sized>(&self, storage: &StorageArgs, stores: &Stores<S>) -> Arc<S> {
        match storage.storage {
            StorageKind::Memory => (stores.memory)(),
            StorageKind::Cql => {
                let settings = storage.cql_settings(stores.default_keyspace);
                let db = self.metrics.db.clone();
                (stores.cql)(Cql::start(settings, stores.schema, db, self.faults.clone()))
            }
        }
    }

    /// The token verifier, and clients for the upstreams, with this service's own tokens.
    pub fn connections(
        &self,
        auth: &AuthArgs,
        upstream: &UpstreamArgs,
    ) -> anyhow::Result<Connections> {
        Connections::new(self.info.name, auth, upstream, &self.metrics, &self.faults)
    }

    /// Clients for upstreams called with the caller's credentials only: the user
    /// service's, which issues tokens rather than fetching them.
    pub fn upstreams(&self, upstream: &UpstreamArgs) -> UpstreamPool {
        UpstreamPool::new(upstream, &self.metrics, &self.faults)
    }

    /// Ready when the store answers and each of `checks` passes (or is optional).
    pub fn readiness(store: Arc<dyn Ping>, checks: Vec<Arc<dyn HealthCheck>>) -> Readiness {
        let mut all: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(StoreCheck(store))];
        all.extend(checks);
        Readiness::new(all)
    }

    /// The service's whole HTTP surface: `routes` (its documented routes, with their
    /// state), health, the fault API for admins `verifier` accepts, the OpenAPI document,
    /// metrics and the middleware.
    pub fn router(
        self,
        routes: OpenApiRouter,
        readiness: Readiness,
        verifier: Arc<TokenVerifier>,
        http: &HttpSettings,
    ) -> Router {
        let routes = routes
            .merge(health::routes(readiness))
            .merge(faults::api::routes(&self.faults, verifier));
        server::assemble(routes, self.info, http, self.metrics, &self.faults)
    }
}

/// Binds `listen`, builds the service with `app` (which may start background tasks), and
/// serves until Ctrl-C or SIGTERM; then lets requests and background tasks finish.
pub async fn run(
    info: &ServiceInfo,
    listen: SocketAddr,
    app: impl AsyncFnOnce(&Background) -> anyhow::Result<Router>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let background = Background::default();
    let router = app(&background).await?;
    tracing::info!(address = %listen, "{} listening", info.name);
    server::serve(listener, router, server::shutdown_signal()).await?;
    background.stop().await;
    Ok(())
}
