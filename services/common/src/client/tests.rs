//! The client against real (local) upstreams: what the breakers see when calls are cut off,
//! and how calls spread over replicas and move past the ones that are down.

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

/// Serves `router` on an ephemeral loopback port; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, router).into_future());
    format!("http://{address}")
}

/// A base URL nothing listens on: connections to it are refused.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

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
    serve(router).await
}

/// A replica that answers every call to `/thing` with `status`, and counts them.
async fn replica(status: StatusCode) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let answer = move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { (status, "{}") }
    };
    let router = Router::new().route("/thing", get(answer.clone()).post(answer));
    (serve(router).await, calls)
}

fn upstream_with(base_urls: &[&str], max_retries: u32, failure_threshold: u32) -> Upstream {
    let settings = UpstreamSettings {
        max_retries,
        retry_backoff: Duration::from_millis(1),
        breaker_failure_threshold: failure_threshold,
        breaker_open_for: COOL_DOWN,
        ..UpstreamSettings::default()
    };
    let metrics = Metrics::new("client-test");
    Upstream::new(
        "thing",
        &base_urls.join(",").parse().unwrap(),
        settings.http_client(),
        settings,
        None,
        metrics.client.clone(),
        Faults::default(),
    )
}

fn upstream(base_url: &str) -> Upstream {
    upstream_with(&[base_url], 0, 1)
}

/// The calls these tests make: a GET (idempotent) and a POST (not).
struct GetThing;
struct PostThing;

impl Operation for GetThing {
    const PREFIX: &'static str = "";
    const ROUTE: &'static str = "/thing";
    const METHOD: Method = Method::GET;
    type Response = serde_json::Value;
}

impl Operation for PostThing {
    const PREFIX: &'static str = "";
    const ROUTE: &'static str = "/thing";
    const METHOD: Method = Method::POST;
    type Response = serde_json::Value;
}

async fn call(upstream: &Upstream) -> Result<serde_json::Value, UpstreamError> {
    upstream.call(&GetThing, Credentials::None).await
}

async fn post(upstream: &Upstream) -> Result<serde_json::Value, UpstreamError> {
    upstream.call(&PostThing, Credentials::None).await
}

fn count(calls: &AtomicUsize) -> usize {
    calls.load(Ordering::SeqCst)
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

#[tokio::test]
async fn calls_spread_over_the_replicas_in_turn() {
    let (a, a_calls) = replica(StatusCode::OK).await;
    let (b, b_calls) = replica(StatusCode::OK).await;
    let (c, c_calls) = replica(StatusCode::OK).await;
    let upstream = upstream_with(&[&a, &b, &c], 0, 5);
    for _ in 0..9 {
        call(&upstream).await.expect("every replica answers");
    }
    assert_eq!(
        [count(&a_calls), count(&b_calls), count(&c_calls)],
        [3, 3, 3]
    );
}

#[tokio::test]
async fn a_refused_connection_moves_even_a_post_on_to_the_next_replica() {
    let (live, live_calls) = replica(StatusCode::OK).await;
    let upstream = upstream_with(&[&closed_port().await, &live], 0, 3);
    for round in 0..6 {
        let result = post(&upstream).await;
        assert!(result.is_ok(), "POST {round} failed: {result:?}");
    }
    assert_eq!(count(&live_calls), 6, "each POST was sent once");
    assert_eq!(
        upstream.breaker_state(),
        BreakerState::Closed,
        "one replica still answers"
    );
}

#[tokio::test]
async fn each_replica_has_a_breaker_of_its_own() {
    let (failing, failing_calls) = replica(StatusCode::INTERNAL_SERVER_ERROR).await;
    let (healthy, healthy_calls) = replica(StatusCode::OK).await;
    let upstream = upstream_with(&[&failing, &healthy], 0, 1);

    assert!(call(&upstream).await.is_err(), "the failing replica's 500");
    for _ in 0..4 {
        call(&upstream)
            .await
            .expect("the healthy replica answers while the other's circuit is open");
    }
    assert_eq!(count(&failing_calls), 1, "its open circuit was skipped");
    assert_eq!(count(&healthy_calls), 4);
    assert_eq!(upstream.breaker_state(), BreakerState::Closed);

    // After its cool-down the failing replica gets one probe, fails it, and is skipped again.
    tokio::time::sleep(COOL_DOWN).await;
    let probed = [call(&upstream).await.is_ok(), call(&upstream).await.is_ok()];
    assert_eq!(probed.iter().filter(|ok| !**ok).count(), 1, "{probed:?}");
    assert_eq!(count(&failing_calls), 2);
}

#[tokio::test]
async fn the_circuit_is_open_for_callers_only_when_every_replica_is_down() {
    let upstream = upstream_with(&[&closed_port().await, &closed_port().await], 0, 1);
    let refused = call(&upstream).await.unwrap_err();
    assert!(
        matches!(refused, UpstreamError::Unreachable { .. }),
        "{refused:?}"
    );
    assert_eq!(upstream.breaker_state(), BreakerState::Open);
    let fast = call(&upstream).await.unwrap_err();
    assert!(
        matches!(fast, UpstreamError::CircuitOpen { .. }),
        "{fast:?}"
    );
}

#[tokio::test]
async fn after_other_failures_only_retried_calls_reach_the_next_replica() {
    let (busy, busy_calls) = replica(StatusCode::BAD_GATEWAY).await;
    let (live, live_calls) = replica(StatusCode::OK).await;
    let upstream = upstream_with(&[&busy, &live], 2, 5);

    let unretried = post(&upstream).await.unwrap_err();
    assert_eq!(unretried.status(), Some(StatusCode::BAD_GATEWAY));
    assert_eq!((count(&busy_calls), count(&live_calls)), (1, 0));

    // The rotation starts the next call on the live replica: start this one on the busy one.
    call(&upstream).await.expect("the live replica answers");
    call(&upstream)
        .await
        .expect("a GET is retried, on the next replica");
    assert_eq!((count(&busy_calls), count(&live_calls)), (2, 2));
}

/// A replica that is draining: stopped (SIGTERM) and answering through its drain, each
/// response closing its connection; and how many calls it got.
async fn draining_replica() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let answer = move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { (StatusCode::OK, "{}") }
    };
    let router = Router::new().route("/thing", get(answer.clone()).post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let drain = Duration::from_secs(60);
    tokio::spawn(crate::shutdown::serve(listener, router, async {}, drain));
    (format!("http://{address}"), calls)
}

#[tokio::test]
async fn a_draining_replica_gets_no_new_calls_once_it_said_so() {
    let (leaving, leaving_calls) = draining_replica().await;
    let (staying, staying_calls) = replica(StatusCode::OK).await;
    let upstream = upstream_with(&[&leaving, &staying], 0, 5);
    for round in 0..6 {
        let result = post(&upstream).await;
        assert!(result.is_ok(), "POST {round} failed: {result:?}");
    }
    // The rotation starts on the draining replica: its answer (Connection: close) is the
    // last call it gets while another replica stays.
    assert_eq!((count(&leaving_calls), count(&staying_calls)), (1, 5));
}

#[tokio::test]
async fn with_every_replica_draining_calls_still_go_to_them() {
    let (a, a_calls) = draining_replica().await;
    let (b, b_calls) = draining_replica().await;
    let upstream = upstream_with(&[&a, &b], 0, 5);
    for _ in 0..4 {
        call(&upstream)
            .await
            .expect("a draining replica still answers");
    }
    assert_eq!(count(&a_calls) + count(&b_calls), 4);
    assert!(count(&a_calls) >= 1 && count(&b_calls) >= 1);
}

/// A replica that reads each request and closes the connection unanswered, as one killed
/// mid-request; and how many connections it took.
async fn drops_requests() -> (String, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut head = [0; 1024];
            let _ = stream.read(&mut head).await;
        }
    });
    (format!("http://{address}"), connections)
}

#[tokio::test]
async fn a_replica_that_dropped_a_call_is_taken_last_by_the_next_ones() {
    let (dropping, dropped) = drops_requests().await;
    let (live, live_calls) = replica(StatusCode::OK).await;
    let upstream = upstream_with(&[&dropping, &live], 2, 5);
    for round in 0..4 {
        let result = call(&upstream).await;
        assert!(result.is_ok(), "GET {round} failed: {result:?}");
    }
    // The first GET met the dropping replica and was retried on the live one; the next
    // ones went to the live one first.
    assert_eq!((count(&dropped), count(&live_calls)), (1, 4));
}

#[tokio::test]
async fn a_replica_that_answered_unavailable_is_taken_last_by_the_next_calls() {
    // A replica that is starting answers 503 until its store is connected.
    let (starting, starting_calls) = replica(StatusCode::SERVICE_UNAVAILABLE).await;
    let (live, live_calls) = replica(StatusCode::OK).await;
    let upstream = upstream_with(&[&starting, &live], 0, 5);
    let first = post(&upstream).await.unwrap_err();
    assert_eq!(first.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    for round in 0..3 {
        let result = post(&upstream).await;
        assert!(result.is_ok(), "POST {round} failed: {result:?}");
    }
    assert_eq!((count(&starting_calls), count(&live_calls)), (1, 3));
}

#[tokio::test]
async fn an_upstream_unavailable_or_out_of_time_is_passed_on_as_such_and_other_failures_as_502() {
    for (answered, passed_on) in [
        (
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (StatusCode::GATEWAY_TIMEOUT, StatusCode::GATEWAY_TIMEOUT),
        (StatusCode::INTERNAL_SERVER_ERROR, StatusCode::BAD_GATEWAY),
        (StatusCode::BAD_GATEWAY, StatusCode::BAD_GATEWAY),
    ] {
        let (base_url, _) = replica(answered).await;
        let failure = call(&upstream(&base_url)).await.unwrap_err();
        let passed: ApiError = failure.into();
        assert_eq!(passed.status(), passed_on, "for an upstream's {answered}");
    }
}
