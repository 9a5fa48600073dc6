//! How a service stops without losing a request: on SIGTERM it first drains (readiness
//! answers 503, and every response closes its connection, so the gateway and the other
//! services stop reusing connections to it and move to other replicas), then stops
//! accepting and lets the requests in flight finish.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;

/// Whether the service is draining; request handlers find it in the request's extensions.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Serves until `stop` resolves; then drains for `drain` while still accepting and
/// serving, and then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let draining = Drain::default();
    let router = router.layer(middleware::from_fn_with_state(
        draining.clone(),
        close_while_draining,
    ));
    let shutdown = async move {
        stop.await;
        draining.start();
        if !drain.is_zero() {
            tracing::info!(
                drain_ms = drain.as_millis(),
                "draining: unready, closing each connection after its response"
            );
            tokio::time::sleep(drain).await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Hands every request the drain state, and while draining answers with
/// `Connection: close`: a keep-alive connection is closed after its response rather than
/// reused for a request that would find the service gone.
async fn close_while_draining(
    State(drain): State<Drain>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(drain.clone());
    let mut response = next.run(request).await;
    if drain.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("stop requested");
}
