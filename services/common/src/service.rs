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
use axum::body::Body;
use axum::http::{Request, Uri};
use futures_util::FutureExt;
use tokio::net::TcpListener;
use tower::ServiceExt;
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

/// Where a service takes its connections.
pub enum Listen {
    /// On a port bound already, before the service is built: a port in use fails at once.
    Bound(TcpListener),
    /// On an address bound only once the service answers ready (`LISTEN_WHEN_READY`).
    WhenReady(SocketAddr),
}

/// Builds the service with `app` (which may start background tasks) and serves on
/// `listen` until Ctrl-C or SIGTERM; then drains for `http`'s `SHUTDOWN_DRAIN_MS` (see
/// [`crate::shutdown`]) and lets requests and background tasks finish.
pub async fn run(
    info: &ServiceInfo,
    listen: SocketAddr,
    http: &HttpArgs,
    app: impl AsyncFnOnce(&Background) -> anyhow::Result<Router>,
) -> anyhow::Result<()> {
    let listen = if http.listen_when_ready {
        Listen::WhenReady(listen)
    } else {
        Listen::Bound(bind(listen).await?)
    };
    let drain = http.shutdown_drain();
    run_until(info, listen, drain, app, shutdown::signal()).await
}

/// [`run`], stopping when `stop` resolves rather than on a signal.
pub async fn run_until(
    info: &ServiceInfo,
    listen: Listen,
    drain: Duration,
    app: impl AsyncFnOnce(&Background) -> anyhow::Result<Router>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = stop.boxed().shared();
    let background = Background::default();
    let router = app(&background).await?;
    let listener = match listen {
        Listen::Bound(listener) => listener,
        Listen::WhenReady(address) => tokio::select! {
            () = stop.clone() => {
                background.stop().await;
                return Ok(());
            }
            ready = until_ready(info, &router) => {
                ready?;
                bind(address).await?
            }
        },
    };
    tracing::info!(address = %listener.local_addr()?, "{} listening", info.name);
    shutdown::serve(listener, router, stop, drain).await?;
    background.stop().await;
    Ok(())
}

async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// How often a service that listens once ready asks its own readiness.
const READY_POLL: Duration = Duration::from_millis(200);

/// Returns once the service's own readiness route, asked as a balancer would ask it,
/// answers 200.
async fn until_ready(info: &ServiceInfo, router: &Router) -> anyhow::Result<()> {
    let uri: Uri = format!("{}/health/ready", info.prefix).parse()?;
    tracing::info!("{} listens once ready: waiting for {uri}", info.name);
    loop {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = uri.clone();
        let Ok(response) = router.clone().oneshot(request).await;
        if response.status().is_success() {
            return Ok(());
        }
        tokio::time::sleep(READY_POLL).await;
    }
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

    /// The skeleton's router around one slow route, ready as `readiness` says, and a
    /// background task that records that it was stopped.
    async fn app(
        background: &Background,
        stopped: Arc<AtomicBool>,
        readiness: Readiness,
    ) -> anyhow::Result<Router> {
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
        Ok(skeleton.router(routes, readiness, verifier, &http))
    }

    /// A readiness check that passes once its flag is set.
    struct Switch(Arc<AtomicBool>);

    #[async_trait::async_trait]
    impl HealthCheck for Switch {
        fn name(&self) -> &'static str {
            "switch"
        }

        async fn check(&self) -> Result<(), String> {
            if self.0.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("not yet".to_owned())
            }
        }
    }

    /// An address nothing listens on now.
    async fn free_address() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn a_service_that_listens_when_ready_refuses_connections_until_it_is() {
        let address = free_address().await;
        let live = format!("http://{address}/t/health/live");
        let ready = Arc::new(AtomicBool::new(false));
        let readiness = Readiness::new(vec![Arc::new(Switch(ready.clone()))]);
        let (stop, stop_signal) = tokio::sync::oneshot::channel::<()>();
        let service = run_until(
            &INFO,
            Listen::WhenReady(address),
            Duration::ZERO,
            async |background| app(background, Arc::default(), readiness).await,
            async move {
                let _ = stop_signal.await;
            },
        );
        let client = async {
            // Several readiness polls, each failing.
            tokio::time::sleep(READY_POLL * 3).await;
            let refused = reqwest::get(&live).await;
            assert!(
                refused.as_ref().is_err_and(reqwest::Error::is_connect),
                "refused while unready: {refused:?}"
            );
            ready.store(true, Ordering::SeqCst);
            let answered = async {
                loop {
                    if let Ok(response) = reqwest::get(&live).await {
                        return response.status();
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            let status = tokio::time::timeout(Duration::from_secs(10), answered).await;
            assert_eq!(status.expect("listening once ready"), StatusCode::OK);
            stop.send(()).unwrap();
        };
        let (served, ()) = tokio::join!(service, client);
        served.expect("a clean shutdown");
    }

    #[tokio::test]
    async fn a_service_stopped_before_it_is_ready_never_listens_and_stops_its_work() {
        let address = free_address().await;
        let stopped = Arc::new(AtomicBool::new(false));
        let never_ready = Readiness::new(vec![Arc::new(Switch(Arc::default()))]);
        let served = run_until(
            &INFO,
            Listen::WhenReady(address),
            Duration::ZERO,
            async |background| app(background, stopped.clone(), never_ready).await,
            tokio::time::sleep(READY_POLL * 2),
        )
        .await;
        served.expect("a clean stop");
        assert!(
            stopped.load(Ordering::SeqCst),
            "the background task stopped"
        );
        let after = reqwest::get(format!("http://{address}/t/health/live")).await;
        assert!(after.is_err(), "never listened: {after:?}");
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
            Listen::Bound(listener),
            DRAIN,
            async |background| app(background, stopped.clone(), Readiness::default()).await,
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
