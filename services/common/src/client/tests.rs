//! The client against a real (local) upstream: what the breaker sees when calls are cut off.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use super::*;
use crate::faults::Faults;
use crate::telemetry::metrics::Metrics;

const COOL_DOWN: Duration = Duration::from_millis(50);

/// An upstream whose first answer is a 500, whose second call never gets an answer, and
/// which answers `{}` from then on.
async fn fails_then_hangs_then_answers() -> String {
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route(
        "/thing",
        get(move || {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match call {
                    0 => (StatusCode::INTERNAL_SERVER_ERROR, "{}"),
                    1 => std::future::pending().await,
                    _ => (StatusCode::OK, "{}"),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, router).into_future());
    format!("http://{address}")
}

fn upstream(base_url: &str) -> Upstream {
    let settings = UpstreamSettings {
        max_retries: 0,
        breaker_failure_threshold: 1,
        breaker_open_for: COOL_DOWN,
        ..UpstreamSettings::default()
    };
    let metrics = Metrics::new("client-test");
    Upstream::new(
        "thing",
        base_url,
        settings.http_client(),
        settings,
        None,
        metrics.client.clone(),
        Faults::default(),
    )
}

/// The one call these tests make.
struct GetThing;

impl Operation for GetThing {
    const PREFIX: &'static str = "";
    const ROUTE: &'static str = "/thing";
    const METHOD: Method = Method::GET;
    type Response = serde_json::Value;
}

async fn call(upstream: &Upstream) -> Result<serde_json::Value, UpstreamError> {
    upstream.call(&GetThing, Credentials::None).await
}

#[tokio::test]
async fn a_probe_cut_off_by_its_caller_does_not_keep_the_circuit_open() {
    let upstream = upstream(&fails_then_hangs_then_answers().await);
    assert!(call(&upstream).await.is_err(), "the 500 opens the circuit");
    assert_eq!(upstream.breaker_state(), BreakerState::Open);
    tokio::time::sleep(COOL_DOWN).await;

    // The probe hangs, and its caller gives up on it (a deadline, a disconnect).
    let cut_off = tokio::time::timeout(Duration::from_millis(200), call(&upstream)).await;
    assert!(cut_off.is_err(), "the probe was cut off: {cut_off:?}");

    // A cut-off probe proves nothing either way: after another cool-down a new probe goes.
    tokio::time::sleep(COOL_DOWN).await;
    let after = call(&upstream).await;
    assert!(after.is_ok(), "the next probe was refused: {after:?}");
    assert_eq!(upstream.breaker_state(), BreakerState::Closed);
}
