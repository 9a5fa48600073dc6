use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::problem::FieldError;
use model::{Checked, MAX_GROWN_BYTES};

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

fn error_fields<T: std::fmt::Debug>(result: Result<T, ApiError>) -> Vec<String> {
    field_errors(result).into_iter().map(|e| e.field).collect()
}

fn field_errors<T: std::fmt::Debug>(result: Result<T, ApiError>) -> Vec<FieldError> {
    match result {
        Err(ApiError::Validation(errors)) => errors,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Checks a fault without storing or starting it.
fn check(catalog: &impl Catalog, body: serde_json::Value) -> Result<Checked, ApiError> {
    serde_json::from_value::<FaultCreate>(body)
        .expect("a well-formed fault")
        .check(catalog)
}

/// A service whose process has these descriptors (and nothing to target but itself).
struct Process(Result<DescriptorUsage, String>);

impl Process {
    fn with(open: u64, soft_limit: Option<u64>) -> Self {
        Self(Ok(DescriptorUsage { open, soft_limit }))
    }
}

impl Catalog for Process {
    fn has_route(&self, _: &str) -> bool {
        false
    }
    fn has_upstream(&self, _: &str) -> bool {
        false
    }
    fn has_database(&self) -> bool {
        false
    }
    fn has_statement(&self, _: &str) -> bool {
        false
    }
    fn descriptor_usage(&self) -> Result<DescriptorUsage, String> {
        self.0.clone()
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
            json!({"kind": "error", "route": "/nope", "status": 404, "ttl_seconds": 14401})
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

#[test]
fn a_memory_growth_fault_needs_a_rate_within_bounds() {
    let faults = faults();
    for body in [
        json!({"kind": "memory_growth", "ttl_seconds": 5}),
        json!({"kind": "memory_growth", "bytes_per_second": 1023, "ttl_seconds": 5}),
        json!({"kind": "memory_growth", "bytes_per_second": 67_108_865, "ttl_seconds": 5}),
    ] {
        assert_eq!(
            error_fields(check(&faults, body.clone())),
            ["bytes_per_second"],
            "{body}"
        );
    }
    for bytes_per_second in [1024, 67_108_864] {
        let checked = check(
            &faults,
            json!({"kind": "memory_growth", "bytes_per_second": bytes_per_second, "ttl_seconds": 5}),
        )
        .unwrap();
        assert_eq!(checked.effect, Effect::MemoryGrowth { bytes_per_second });
        assert_eq!(checked.target, Target::Process);
    }
}

#[test]
fn a_memory_growth_fault_may_grow_to_4_gib_and_no_more() {
    let faults = faults();
    // 64 MiB/s for 64 s is exactly 4 GiB; a second more is too much.
    let at_most =
        json!({"kind": "memory_growth", "bytes_per_second": 67_108_864, "ttl_seconds": 64});
    assert!(check(&faults, at_most).is_ok());
    let over = json!({"kind": "memory_growth", "bytes_per_second": 67_108_864, "ttl_seconds": 65});
    let errors = field_errors(check(&faults, over));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "bytes_per_second");
    assert!(
        errors[0].message.contains(&MAX_GROWN_BYTES.to_string()),
        "{}",
        errors[0].message
    );
    // A slower rate may live the longest ttl: 1 MiB/s for an hour is 3.5 GiB.
    let slow_and_long =
        json!({"kind": "memory_growth", "bytes_per_second": 1_048_576, "ttl_seconds": 3600});
    assert!(check(&faults, slow_and_long).is_ok());
}

#[test]
fn a_file_descriptors_fault_needs_a_fraction_of_the_limit() {
    let process = Process::with(100, Some(1000));
    for fraction in [json!(null), json!(0), json!(-0.5), json!(0.951), json!(1)] {
        let mut body = json!({"kind": "file_descriptors", "ttl_seconds": 5});
        if !fraction.is_null() {
            body["limit_fraction"] = fraction;
        }
        assert_eq!(
            error_fields(check(&process, body.clone())),
            ["limit_fraction"],
            "{body}"
        );
    }
}

#[test]
fn a_file_descriptors_fault_opens_what_reaching_its_fraction_takes() {
    let extra = |open: u64, limit: u64, fraction: f64| {
        let body =
            json!({"kind": "file_descriptors", "limit_fraction": fraction, "ttl_seconds": 5});
        check(&Process::with(open, Some(limit)), body).map(|checked| checked.effect)
    };
    assert_eq!(
        extra(100, 1000, 0.5).unwrap(),
        Effect::FileDescriptors { extra: 400 }
    );
    // Rounded up: 0.95 of 1001 is 950.95, and 950 open would stay below the fraction.
    assert_eq!(
        extra(100, 1001, 0.95).unwrap(),
        Effect::FileDescriptors { extra: 851 }
    );
    assert_eq!(
        extra(700, 1000, 0.5).unwrap(),
        Effect::FileDescriptors { extra: 0 },
        "already past the fraction: nothing more to open"
    );
    // 65536 more is the most one fault opens.
    assert_eq!(
        extra(0, 131_072, 0.5).unwrap(),
        Effect::FileDescriptors { extra: 65_536 }
    );
    let errors = field_errors(extra(0, 131_074, 0.5));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "limit_fraction");
    assert!(
        errors[0].message.contains("ulimit -n"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_file_descriptors_fault_is_refused_without_a_usable_limit() {
    let body = json!({"kind": "file_descriptors", "limit_fraction": 0.5, "ttl_seconds": 5});
    let errors = field_errors(check(&Process::with(10, None), body.clone()));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "limit_fraction");
    assert!(
        errors[0].message.contains("ulimit -n"),
        "{}",
        errors[0].message
    );
    let unreadable = Process(Err("no /proc here".to_owned()));
    assert_eq!(error_fields(check(&unreadable, body)), ["kind"]);
}

#[test]
fn process_faults_take_only_their_own_fields() {
    let faults = faults();
    let process = Process::with(10, Some(1000));
    assert_eq!(
        error_fields(check(
            &faults,
            json!({"kind": "memory_growth", "bytes_per_second": 4096, "threads": 1, "fraction": 0.5, "ttl_seconds": 5})
        )),
        ["fraction", "threads"]
    );
    assert_eq!(
        error_fields(check(
            &process,
            json!({"kind": "file_descriptors", "limit_fraction": 0.5, "bytes_per_second": 4096, "route": "*", "ttl_seconds": 5})
        )),
        ["route", "bytes_per_second"]
    );
    assert_eq!(
        error_fields(check(
            &faults,
            json!({"kind": "cpu_burn", "threads": 1, "limit_fraction": 0.5, "ttl_seconds": 5})
        )),
        ["limit_fraction"]
    );
    assert_eq!(
        error_fields(check(
            &faults,
            json!({"kind": "latency", "route": "*", "delay_ms": 5, "bytes_per_second": 4096, "ttl_seconds": 5})
        )),
        ["bytes_per_second"]
    );
}

#[test]
fn process_faults_are_listed_counted_and_stopped() {
    let faults = faults();
    let memory = add(
        &faults,
        json!({"kind": "memory_growth", "bytes_per_second": 1024, "ttl_seconds": 60}),
    )
    .unwrap();
    // Already past any fraction: checked against this process, it opens nothing.
    let descriptors = add(
        &faults,
        json!({"kind": "file_descriptors", "limit_fraction": 0.000_001, "ttl_seconds": 60}),
    )
    .unwrap();
    assert_eq!(memory.bytes_per_second, Some(1024));
    assert_eq!((memory.fraction, memory.limit_fraction), (None, None));
    assert_eq!(descriptors.limit_fraction, Some(0.000_001));
    assert_eq!(descriptors.fraction, None, "`fraction` is not theirs");
    let listed: Vec<Uuid> = faults.list().iter().map(|fault| fault.id).collect();
    assert_eq!(listed, [memory.id, descriptors.id]);

    let active = faults.active_by_kind();
    assert!(active.contains(&(FaultKind::MemoryGrowth, 1)), "{active:?}");
    assert!(
        active.contains(&(FaultKind::FileDescriptors, 1)),
        "{active:?}"
    );
    assert!(!faults.idle(Site::Process));
    let stops: Vec<_> = faults
        .inner
        .entries
        .read()
        .unwrap()
        .iter()
        .map(|entry| entry.stop.clone())
        .collect();
    faults.clear();
    assert!(
        stops.iter().all(|stop| stop.load(Ordering::Relaxed)),
        "their threads are told to stop"
    );
    assert!(faults.idle(Site::Process));
}
