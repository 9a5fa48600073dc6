use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::*;

const ROUTE: &str = "/api/products/{product_id}";

fn faults() -> Faults {
    let faults = Faults::default();
    faults.set_routes([ROUTE.to_owned(), "/api/products/".to_owned()]);
    faults.register_upstream("backend");
    faults.register_statements(["get_product", "list_products"]);
    faults
}

fn add(faults: &Faults, body: serde_json::Value) -> Result<Fault, ApiError> {
    faults.add(&serde_json::from_value(body).expect("a well-formed fault"))
}

fn error_fields(result: Result<Fault, ApiError>) -> Vec<String> {
    match result {
        Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn the_fast_path_is_taken_while_nothing_is_active() {
    let faults = faults();
    assert!(faults.idle(Site::Route) && faults.idle(Site::Upstream) && faults.idle(Site::Database));
    assert_eq!(faults.for_route(ROUTE), None);
    assert_eq!(faults.for_upstream("backend"), None);
    assert_eq!(faults.for_statement("get_product"), None);

    // A fault at one site leaves the others on the fast path.
    add(
        &faults,
        json!({"kind": "error", "route": "*", "status": 503, "ttl_seconds": 60}),
    )
    .unwrap();
    assert!(!faults.idle(Site::Route));
    assert!(faults.idle(Site::Upstream) && faults.idle(Site::Database));
}

#[test]
fn an_error_fault_with_fraction_one_always_fires_and_zero_never() {
    let faults = faults();
    let always = add(
        &faults,
        json!({"kind": "error", "route": ROUTE, "status": 502, "fraction": 1, "ttl_seconds": 60}),
    )
    .unwrap();
    for _ in 0..100 {
        let injection = faults.for_route(ROUTE).expect("fires every time");
        assert_eq!(
            injection.failure,
            Some(Failure {
                fault: always.id,
                status: StatusCode::BAD_GATEWAY
            })
        );
        assert_eq!(
            faults.for_route("/api/products/"),
            None,
            "other routes are spared"
        );
    }
    faults.clear();
    add(
        &faults,
        json!({"kind": "error", "upstream": "backend", "status": 500, "fraction": 0, "ttl_seconds": 60}),
    )
    .unwrap();
    for _ in 0..1000 {
        assert_eq!(faults.for_upstream("backend"), None);
    }
}

#[test]
fn latency_faults_add_their_delay_and_database_faults_fail_as_timeouts() {
    let faults = faults();
    add(
        &faults,
        json!({"kind": "latency", "upstream": "backend", "delay_ms": 100, "jitter_ms": 50, "ttl_seconds": 60}),
    )
    .unwrap();
    let injection = faults.for_upstream("backend").unwrap();
    assert!(
        injection.delay >= Duration::from_millis(100)
            && injection.delay <= Duration::from_millis(150)
    );
    assert_eq!(injection.failure, None);

    add(
        &faults,
        json!({"kind": "database", "statement": "get_product", "fail": true, "ttl_seconds": 60}),
    )
    .unwrap();
    assert_eq!(faults.for_statement("list_products"), None);
    let failure = faults
        .for_statement("get_product")
        .unwrap()
        .failure
        .unwrap();
    assert_eq!(failure.status, StatusCode::GATEWAY_TIMEOUT);
}

#[test]
fn every_route_means_the_documented_routes() {
    let faults = faults();
    add(
        &faults,
        json!({"kind": "error", "route": "*", "status": 500, "ttl_seconds": 60}),
    )
    .unwrap();
    assert!(faults.for_route("/api/products/").is_some());
    assert_eq!(faults.for_route("/api/admin/faults"), None);
    assert_eq!(faults.for_route("/api/metrics"), None);
}

#[test]
fn expired_faults_are_ignored_and_pruned() {
    let faults = faults();
    add(
        &faults,
        json!({"kind": "error", "route": ROUTE, "status": 500, "ttl_seconds": 1}),
    )
    .unwrap();
    assert!(faults.for_route(ROUTE).is_some());
    assert_eq!(faults.list().len(), 1);
    // Expire it without waiting a second.
    faults.update(|entries| entries[0].expires = Instant::now());
    assert_eq!(faults.for_route(ROUTE), None);
    assert!(faults.idle(Site::Route), "the lookup pruned it");
    assert!(faults.list().is_empty());
}

#[test]
fn clearing_and_removing_stop_faults() {
    let faults = faults();
    let first = add(
        &faults,
        json!({"kind": "error", "route": ROUTE, "status": 500, "ttl_seconds": 60}),
    )
    .unwrap();
    add(
        &faults,
        json!({"kind": "latency", "upstream": "backend", "delay_ms": 5, "ttl_seconds": 60}),
    )
    .unwrap();
    assert!(faults.remove(first.id));
    assert!(!faults.remove(first.id));
    assert_eq!(faults.list().len(), 1);
    assert!(faults.idle(Site::Route));
    faults.clear();
    assert!(faults.list().is_empty());
    assert!(faults.idle(Site::Upstream));
}

#[test]
fn a_cpu_burn_runs_until_it_is_removed() {
    let faults = faults();
    let burn = add(
        &faults,
        json!({"kind": "cpu_burn", "threads": 1, "ttl_seconds": 60}),
    )
    .unwrap();
    let stop = faults.inner.entries.read().unwrap()[0].stop.clone();
    assert!(!stop.load(Ordering::Relaxed));
    assert_eq!(faults.active_by_kind()[3], (FaultKind::CpuBurn, 1));
    assert!(faults.remove(burn.id));
    assert!(stop.load(Ordering::Relaxed), "its threads are told to stop");
    assert_eq!(faults.active_by_kind()[3], (FaultKind::CpuBurn, 0));
}

#[test]
fn stored_faults_say_when_they_expire() {
    let faults = faults();
    let fault = add(
        &faults,
        json!({"kind": "error", "route": ROUTE, "status": 500, "ttl_seconds": 90}),
    )
    .unwrap();
    assert_eq!((fault.expires_at - fault.created_at).num_seconds(), 90);
    assert_eq!(fault.fraction, Some(1.0));
}

#[test]
fn invalid_faults_name_their_fields() {
    let faults = faults();
    assert_eq!(
        error_fields(add(
            &faults,
            json!({"kind": "latency", "route": ROUTE, "ttl_seconds": 0, "fraction": 2})
        )),
        ["ttl_seconds", "fraction", "delay_ms"]
    );
    assert_eq!(
        error_fields(add(
            &faults,
            json!({"kind": "error", "route": "/nope", "status": 404, "ttl_seconds": 3601})
        )),
        ["ttl_seconds", "route", "status"]
    );
    assert_eq!(
        error_fields(add(
            &faults,
            json!({"kind": "error", "upstream": "mars", "status": 500, "threads": 1, "ttl_seconds": 5})
        )),
        ["threads", "upstream"]
    );
    assert_eq!(
        error_fields(add(
            &faults,
            json!({"kind": "error", "route": "*", "upstream": "backend", "status": 500, "ttl_seconds": 5})
        )),
        ["route"]
    );
    assert_eq!(
        error_fields(add(
            &faults,
            json!({"kind": "database", "statement": "drop_everything", "ttl_seconds": 5})
        )),
        ["statement", "delay_ms"]
    );
    assert_eq!(
        error_fields(add(
            &faults,
            json!({"kind": "cpu_burn", "threads": 5, "ttl_seconds": 5})
        )),
        ["threads"]
    );
    assert!(faults.list().is_empty());
}

#[test]
fn database_faults_need_a_database() {
    let faults = Faults::default();
    assert_eq!(
        error_fields(add(
            &faults,
            json!({"kind": "database", "delay_ms": 10, "ttl_seconds": 5})
        )),
        ["kind"]
    );
}
