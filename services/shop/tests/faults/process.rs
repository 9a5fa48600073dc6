//! Process faults: a CPU burn, memory growth and held file descriptors, watched through the
//! Prometheus process collector, and the bounds the OpenAPI document sets on them.

use super::*;

const MIB: f64 = 1024.0 * 1024.0;

impl FaultShop {
    /// A gauge of the Prometheus process collector. The four services run in this test
    /// process, so the backend's is everyone's (and every other test's running beside).
    async fn process_gauge(&self, name: &str) -> f64 {
        self.metric("/api", name, &[])
            .await
            .unwrap_or_else(|| panic!("no {name} in /api/metrics"))
    }

    /// Polls a process gauge until `reached` holds for it, and returns that value.
    async fn await_process_gauge(&self, name: &str, reached: impl Fn(f64) -> bool) -> f64 {
        let within = Duration::from_secs(20);
        let deadline = Instant::now() + within;
        loop {
            let value = self.process_gauge(name).await;
            if reached(value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{name} is still {value} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn delete_fault(&self, admin: &str, prefix: &str, fault: &Value) {
        let path = format!("{prefix}/admin/faults/{}", fault["id"].as_str().unwrap());
        let response = self.call(Method::DELETE, &path, Some(admin), None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn a_cpu_burn_starts_and_stops() {
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    let burn = shop
        .inject(
            &admin,
            "/user-api",
            json!({"kind": "cpu_burn", "threads": 1, "ttl_seconds": 30}),
        )
        .await;
    assert_eq!(
        shop.faults(&admin, "/user-api").await,
        std::slice::from_ref(&burn)
    );
    assert_eq!(
        shop.metric("/user-api", "shop_faults_active", &[("kind", "cpu_burn")])
            .await,
        Some(1.0)
    );
    let one = format!("/user-api/admin/faults/{}", burn["id"].as_str().unwrap());
    assert_eq!(
        shop.call(Method::DELETE, &one, Some(&admin), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(shop.faults(&admin, "/user-api").await.is_empty());
    assert_eq!(
        shop.metric("/user-api", "shop_faults_active", &[("kind", "cpu_burn")])
            .await,
        Some(0.0)
    );

    // A short one ends by itself.
    shop.inject(
        &admin,
        "/user-api",
        json!({"kind": "cpu_burn", "threads": 1, "ttl_seconds": 1}),
    )
    .await;
    eventually(Duration::from_secs(5), || async {
        shop.metric("/user-api", "shop_faults_active", &[("kind", "cpu_burn")])
            .await
            == Some(0.0)
    })
    .await;
    shop.stop().await;
}

#[tokio::test]
async fn a_memory_growth_fault_raises_resident_memory_until_it_is_deleted() {
    const GROWTH: f64 = 96.0 * MIB;
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    // Twice: the second fault's memory must be returned too (after a big free, glibc would
    // serve the next chunks from its arenas, which is why the fault maps memory itself).
    for round in 1..=2 {
        let before = shop.process_gauge("process_resident_memory_bytes").await;
        // Could grow to 1.9 GiB in its minute, but is deleted after about 3 s.
        let fault = shop
            .inject(
                &admin,
                "/api",
                json!({"kind": "memory_growth", "bytes_per_second": 33_554_432, "ttl_seconds": 60}),
            )
            .await;
        assert_eq!(fault["bytes_per_second"], 33_554_432);
        assert_eq!(
            shop.faults(&admin, "/api").await,
            std::slice::from_ref(&fault)
        );
        let grown = shop
            .await_process_gauge("process_resident_memory_bytes", |rss| {
                rss >= before + GROWTH
            })
            .await;
        assert_eq!(
            shop.metric("/api", "shop_faults_active", &[("kind", "memory_growth")])
                .await,
            Some(1.0)
        );

        shop.delete_fault(&admin, "/api", &fault).await;
        // Back to about where it was: other tests' memory may come and go meanwhile.
        let released = shop
            .await_process_gauge("process_resident_memory_bytes", |rss| {
                rss <= before + GROWTH / 3.0
            })
            .await;
        println!(
            "round {round}: RSS {:.0} MiB, grown to {:.0} MiB, {:.0} MiB after DELETE",
            before / MIB,
            grown / MIB,
            released / MIB
        );
        assert_eq!(
            shop.metric("/api", "shop_faults_active", &[("kind", "memory_growth")])
                .await,
            Some(0.0)
        );
    }
    let injected = shop
        .metric(
            "/api",
            "shop_faults_injected_total",
            &[("kind", "memory_growth")],
        )
        .await;
    assert_eq!(injected, Some(2.0), "once per fault");
    shop.stop().await;
}

#[tokio::test]
async fn a_file_descriptors_fault_holds_descriptors_until_it_is_deleted() {
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    // The fraction is chosen from the limit this process runs with: half the descriptors it
    // has left, and at most 4096 more, so that the fault is never refused (a limit of a
    // million would take over 65536) and the tests running beside keep descriptors to spare.
    let limit = shop.process_gauge("process_max_fds").await;
    let open = shop.process_gauge("process_open_fds").await;
    let extra = ((limit - open) / 2.0).min(4096.0).floor();
    assert!(extra >= 64.0, "{open} of {limit} descriptors open already");
    let target = open + extra;
    let fraction = target / limit;
    // Other tests open and close sockets meanwhile.
    let margin = extra / 4.0;

    let fault = shop
        .inject(
            &admin,
            "/cart-api",
            json!({"kind": "file_descriptors", "limit_fraction": fraction, "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(fault["limit_fraction"].as_f64(), Some(fraction));
    assert_eq!(fault.get("fraction"), None, "{fault}");
    let held = shop
        .await_process_gauge("process_open_fds", |fds| (fds - target).abs() <= margin)
        .await;
    assert_eq!(
        shop.metric(
            "/cart-api",
            "shop_faults_active",
            &[("kind", "file_descriptors")]
        )
        .await,
        Some(1.0)
    );

    shop.delete_fault(&admin, "/cart-api", &fault).await;
    let closed = shop
        .await_process_gauge("process_open_fds", |fds| fds <= open + margin)
        .await;
    println!("{open} of {limit} descriptors open, {held} with the fault, {closed} after DELETE");
    assert!(shop.faults(&admin, "/cart-api").await.is_empty());
    shop.stop().await;
}

#[tokio::test]
async fn the_openapi_document_bounds_the_process_fault_fields() {
    let shop = FaultShop::start().await;
    let document: Value = expect_json(
        shop.call(Method::GET, "/order-api/openapi.json", None, None)
            .await,
        StatusCode::OK,
    )
    .await;
    let schemas = &document["components"]["schemas"];
    let kinds = schemas["FaultKind"]["enum"].as_array().unwrap();
    for kind in ["memory_growth", "file_descriptors"] {
        assert!(kinds.contains(&json!(kind)), "{kinds:?}");
    }
    let fields = &schemas["FaultCreate"]["properties"];
    let rate = &fields["bytes_per_second"];
    assert_eq!(
        (&rate["minimum"], &rate["maximum"]),
        (&json!(1024), &json!(67_108_864)),
        "{rate}"
    );
    let share = &fields["limit_fraction"];
    assert_eq!(
        (
            share["exclusiveMinimum"].as_f64(),
            share["maximum"].as_f64()
        ),
        (Some(0.0), Some(0.95)),
        "{share}"
    );
    shop.stop().await;
}
