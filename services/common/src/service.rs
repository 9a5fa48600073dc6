//! The skeleton every service stands on. A service names itself ([`ServiceInfo`]), says how
//! to build its store ([`Stores`]), its state and its router, and adds its own readiness
//! checks; the skeleton supplies metrics, faults and the fault API, upstream connections,
//! health, the OpenAPI document, middleware, binding, and a drain and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::TokenVerifier;
use crate::background::Background;
use crate::config::{AuthArgs, HttpArgs, UpstreamArgs};
use crate::connections::{Connections, UpstreamPool};
use crate::cql::{Cql, Schema, StorageArgs, StorageKind};
use crate::faults::{self, FaultArgs, Faults};
use crate::health::{self, HealthCheck, Readiness, StoreCheck};
use crate::server::{self, HttpSettings};
use crate::shutdown;
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
/// serves until Ctrl-C or SIGTERM; then drains for `http`'s `SHUTDOWN_DRAIN_MS` (see
/// [`crate::shutdown`]) and lets requests and background tasks finish.
pub async fn run(
    info: &ServiceInfo,
    listen: SocketAddr,
    http: &HttpArgs,
    app: impl AsyncFnOnce(&Background) -> anyhow::Result<Router>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let drain = http.shutdown_drain();
    run_until(info, listener, drain, app, shutdown::signal()).await
}

/// [`run`] on a bound `listener`, stopping when `stop` resolves rather than on a signal.
pub async fn run_until(
    info: &ServiceInfo,
    listener: TcpListener,
    drain: Duration,
    app: impl AsyncFnOnce(&Background) -> anyhow::Result<Router>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let background = Background::default();
    let router = app(&background).await?;
    tracing::info!(address = %listener.local_addr()?, "{} listening", info.name);
    shutdown::serve(listener, router, stop, drain).await?;
    background.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::http::{StatusCode, header};
    use axum::routing::get;

    use super::*;
    use crate::faults::FaultArgs;

    static INFO: ServiceInfo = ServiceInfo {
        name: "drain-test",
        prefix: "/t",
        title: "drain test",
        description: "a service that only serves a slow route",
    };
    const DRAIN: Duration = Duration::from_millis(1500);
    /// Longer than what is left of the drain when it starts, so it is still in flight
    /// when the service stops accepting.
    const SLOW: Duration = Duration::from_millis(2500);

    /// The skeleton's router around one slow route, and a background task that records
    /// that it was stopped.
    async fn app(background: &Background, stopped: Arc<AtomicBool>) -> anyhow::Result<Router> {
        background.spawn(|stop| async move {
            stop.cancelled().await;
            stopped.store(true, Ordering::SeqCst);
        });
        let skeleton = Skeleton::new(
            &INFO,
            &FaultArgs {
                faults_enabled: false,
            },
        );
        let routes = OpenApiRouter::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SLOW).await;
                "done"
            }),
        );
        let verifier = Arc::new(TokenVerifier::from_jwks(&jsonwebtoken::jwk::JwkSet {
            keys: Vec::new(),
        }));
        let http = HttpSettings {
            body_limit_bytes: 1024,
            request_timeout: Duration::from_secs(5),
            request_telemetry: true,
            request_tracing: true,
        };
        Ok(skeleton.router(routes, Readiness::default(), verifier, &http))
    }

    /// Status and `Connection` header of a GET.
    async fn get_from(url: &str) -> (StatusCode, Option<String>) {
        let response = reqwest::get(url).await.expect("the service answers");
        let connection = response.headers().get(header::CONNECTION);
        let connection = connection.map(|value| value.to_str().unwrap().to_owned());
        (response.status(), connection)
    }

    #[tokio::test]
    async fn a_stopping_service_drains_then_finishes_what_is_in_flight() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/t", listener.local_addr().unwrap());
        let (stop, stopped_signal) = tokio::sync::oneshot::channel::<()>();
        let stopped = Arc::new(AtomicBool::new(false));
        let service = run_until(
            &INFO,
            listener,
            DRAIN,
            async |background| app(background, stopped.clone()).await,
            async move {
                let _ = stopped_signal.await;
            },
        );
        let client = async {
            let ready = format!("{base}/health/ready");
            assert_eq!(get_from(&ready).await, (StatusCode::OK, None));
            stop.send(()).unwrap();
            tokio::task::yield_now().await;
            let (status, connection) = get_from(&ready).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "unready at once");
            assert_eq!(connection.as_deref(), Some("close"));
            let report: serde_json::Value =
                reqwest::get(&ready).await.unwrap().json().await.unwrap();
            assert_eq!(
                report["checks"]["draining"]["status"], "unavailable",
                "{report}"
            );

            // Still serving during the drain, on a new connection, and the request started
            // in it finishes after the service stopped accepting.
            let (status, connection) = get_from(&format!("{base}/slow")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(connection.as_deref(), Some("close"));
        };
        let (served, ()) = tokio::join!(service, client);
        served.expect("a clean shutdown");
        assert!(
            stopped.load(Ordering::SeqCst),
            "the background task stopped"
        );
        let after = reqwest::get(format!("{base}/health/live")).await;
        assert!(after.is_err(), "no longer accepting: {after:?}");
    }
}
