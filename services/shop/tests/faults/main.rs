//! The fault-injection API (`<prefix>/admin/faults`): absent unless `FAULTS_ENABLED`, admins
//! only, and each kind of fault doing what it says where it says, for as long as it says.

#[path = "../support/mod.rs"]
mod support;

mod process;

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use shop::{Addresses, RunningShop, ShopConfig};
use uuid::Uuid;

use support::{
    ADMIN_PASSWORD, ADMIN_USERNAME, PASSWORD, TestShop, eventually, expect_json, expect_problem,
};

/// A shop whose four services serve the fault API.
struct FaultShop {
    addresses: Addresses,
    http: reqwest::Client,
    running: RunningShop,
}

impl FaultShop {
    async fn start() -> Self {
        let mut config = ShopConfig::from_env().expect("default configuration parses");
        config.on_ephemeral_ports();
        config.user.bcrypt_cost = 4;
        config.user.admin_username = ADMIN_USERNAME.to_owned();
        config.user.admin_password = Some(ADMIN_PASSWORD.to_owned());
        config.backend.faults.faults_enabled = true;
        config.user.faults.faults_enabled = true;
        config.cart.faults.faults_enabled = true;
        config.order.faults.faults_enabled = true;
        let running = shop::start(config).await.expect("the shop starts");
        Self {
            addresses: running.addresses,
            http: reqwest::Client::new(),
            running,
        }
    }

    async fn stop(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }

    fn url(&self, path: &str) -> String {
        let address = if path.starts_with("/api/") {
            self.addresses.backend
        } else if path.starts_with("/cart-api/") {
            self.addresses.cart
        } else if path.starts_with("/order-api/") {
            self.addresses.order
        } else {
            self.addresses.user
        };
        format!("http://{address}{path}")
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the shop answers")
    }

    async fn token(&self, username: &str, password: &str) -> String {
        let response = self
            .http
            .post(self.url("/user-api/token"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap();
        expect_json::<Value>(response, StatusCode::OK).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn admin_token(&self) -> String {
        self.token(ADMIN_USERNAME, ADMIN_PASSWORD).await
    }

    async fn user_token(&self) -> String {
        let username = format!("user-{}", Uuid::new_v4().simple());
        let body = json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD});
        let response = self
            .call(Method::POST, "/user-api/users/register", None, Some(body))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        self.token(&username, PASSWORD).await
    }

    async fn new_product(&self, admin: &str) -> Uuid {
        let body =
            json!({"name": format!("product {}", Uuid::new_v4()), "price_cents": 500, "stock": 10});
        let product: Value = expect_json(
            self.call(Method::POST, "/api/products/", Some(admin), Some(body))
                .await,
            StatusCode::CREATED,
        )
        .await;
        product["id"].as_str().unwrap().parse().unwrap()
    }

    /// Starts a fault that must be accepted, and returns it as stored.
    async fn inject(&self, admin: &str, prefix: &str, fault: Value) -> Value {
        let path = format!("{prefix}/admin/faults");
        expect_json(
            self.call(Method::POST, &path, Some(admin), Some(fault))
                .await,
            StatusCode::CREATED,
        )
        .await
    }

    async fn faults(&self, admin: &str, prefix: &str) -> Vec<Value> {
        let path = format!("{prefix}/admin/faults");
        expect_json(
            self.call(Method::GET, &path, Some(admin), None).await,
            StatusCode::OK,
        )
        .await
    }

    /// The value of the one series of `name` carrying all these labels, if it exists.
    async fn metric(&self, prefix: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = self
            .call(Method::GET, &format!("{prefix}/metrics"), None, None)
            .await
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|line| {
                line.starts_with(&format!("{name}{{"))
                    && labels
                        .iter()
                        .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
            })
            .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
    }
}

fn assert_injected_fault(problem: &Value, fault: &Value) {
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("#injected-fault"),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(fault["id"].as_str().unwrap()),
        "{problem}"
    );
}

#[tokio::test]
async fn without_faults_enabled_the_api_does_not_exist() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    for prefix in ["/api", "/cart-api", "/order-api", "/user-api"] {
        let path = format!("{prefix}/admin/faults");
        let fault = json!({"kind": "cpu_burn", "threads": 1, "ttl_seconds": 1});
        for (method, body) in [
            (Method::POST, Some(fault)),
            (Method::GET, None),
            (Method::DELETE, None),
        ] {
            let response = shop.call(method, &path, Some(&admin), body).await;
            let problem = expect_problem(response, StatusCode::NOT_FOUND).await;
            assert!(problem["type"].as_str().unwrap().ends_with("#not-found"));
        }
        let response = shop
            .call(
                Method::DELETE,
                &format!("{path}/{}", Uuid::new_v4()),
                Some(&admin),
                None,
            )
            .await;
        expect_problem(response, StatusCode::NOT_FOUND).await;
    }
    shop.stop().await;
}

#[tokio::test]
async fn only_admins_may_use_the_fault_api() {
    let shop = FaultShop::start().await;
    let user = shop.user_token().await;
    let fault = json!({"kind": "error", "route": "*", "status": 500, "ttl_seconds": 60});
    let one = format!("/api/admin/faults/{}", Uuid::new_v4());
    for (method, path, body) in [
        (Method::POST, "/api/admin/faults", Some(fault)),
        (Method::GET, "/api/admin/faults", None),
        (Method::DELETE, "/api/admin/faults", None),
        (Method::DELETE, one.as_str(), None),
    ] {
        let anonymous = shop.call(method.clone(), path, None, body.clone()).await;
        expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
        let response = shop.call(method, path, Some(&user), body).await;
        let problem = expect_problem(response, StatusCode::FORBIDDEN).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("for admins only")
        );
    }
    let admin = shop.admin_token().await;
    assert!(
        shop.faults(&admin, "/api").await.is_empty(),
        "nothing was injected"
    );
    assert_eq!(
        shop.call(Method::GET, "/api/products/", None, None)
            .await
            .status(),
        StatusCode::OK
    );
    shop.stop().await;
}

#[tokio::test]
async fn a_route_error_fault_answers_with_an_injected_fault_problem() {
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    let fault = shop
        .inject(&admin, "/api", json!({"kind": "error", "route": "/api/products/", "status": 503, "fraction": 1, "ttl_seconds": 60}))
        .await;
    assert_eq!(fault["kind"], "error");
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(fault["expires_at"].as_str().unwrap()).unwrap();
    assert!(
        expires_at > chrono::Utc::now() + chrono::Duration::seconds(50),
        "{fault}"
    );

    for _ in 0..3 {
        let response = shop.call(Method::GET, "/api/products/", None, None).await;
        let problem = expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_injected_fault(&problem, &fault);
    }
    let counted = shop
        .metric(
            "/api",
            "http_server_requests_total",
            &[
                ("route", "/api/products/"),
                ("method", "GET"),
                ("status", "503"),
            ],
        )
        .await;
    assert!(counted >= Some(3.0), "{counted:?}");
    let injected = shop
        .metric("/api", "shop_faults_injected_total", &[("kind", "error")])
        .await;
    assert!(injected >= Some(3.0), "{injected:?}");
    assert_eq!(
        shop.metric("/api", "shop_faults_active", &[("kind", "error")])
            .await,
        Some(1.0)
    );

    // Other routes are untouched, and so is the fault API itself.
    let product = format!("/api/products/{}", Uuid::new_v4());
    assert_eq!(
        shop.call(Method::GET, &product, None, None).await.status(),
        StatusCode::NOT_FOUND
    );
    let response = shop
        .call(Method::DELETE, "/api/admin/faults", Some(&admin), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        shop.call(Method::GET, "/api/products/", None, None)
            .await
            .status(),
        StatusCode::OK
    );
    shop.stop().await;
}

#[tokio::test]
async fn an_upstream_error_fault_fails_calls_as_the_upstream_would() {
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin).await;
    let user = shop.user_token().await;
    let add = json!({"product_id": product, "quantity": 1});
    shop.inject(
        &admin,
        "/cart-api",
        json!({"kind": "error", "upstream": "backend", "status": 500, "ttl_seconds": 60}),
    )
    .await;

    let response = shop
        .call(
            Method::POST,
            "/cart-api/cart/items",
            Some(&user),
            Some(add.clone()),
        )
        .await;
    let status = response.status();
    assert!(
        status == StatusCode::BAD_GATEWAY || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status}"
    );
    expect_problem(response, status).await;
    let failed = shop
        .metric(
            "/cart-api",
            "http_client_requests_total",
            &[("upstream", "backend"), ("outcome", "server_error")],
        )
        .await;
    assert!(failed >= Some(1.0), "{failed:?}");

    let response = shop
        .call(Method::DELETE, "/cart-api/admin/faults", Some(&admin), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = shop
        .call(Method::POST, "/cart-api/cart/items", Some(&user), Some(add))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    shop.stop().await;
}

#[tokio::test]
async fn a_latency_fault_slows_its_route_by_at_least_its_delay() {
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin).await;
    let path = format!("/api/products/{product}");
    shop.inject(
        &admin,
        "/api",
        json!({"kind": "latency", "route": "/api/products/{product_id}", "delay_ms": 300, "jitter_ms": 20, "ttl_seconds": 60}),
    )
    .await;
    let started = Instant::now();
    let response = shop.call(Method::GET, &path, None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    shop.stop().await;
}

#[tokio::test]
async fn a_fault_expires_after_its_ttl() {
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    shop.inject(
        &admin,
        "/api",
        json!({"kind": "error", "route": "*", "status": 500, "ttl_seconds": 1}),
    )
    .await;
    let response = shop.call(Method::GET, "/api/products/", None, None).await;
    expect_problem(response, StatusCode::INTERNAL_SERVER_ERROR).await;
    eventually(Duration::from_secs(5), || async {
        shop.call(Method::GET, "/api/products/", None, None)
            .await
            .status()
            == StatusCode::OK
    })
    .await;
    assert!(shop.faults(&admin, "/api").await.is_empty());
    assert_eq!(
        shop.metric("/api", "shop_faults_active", &[("kind", "error")])
            .await,
        Some(0.0)
    );
    shop.stop().await;
}

#[tokio::test]
async fn faults_are_listed_removed_and_cleared() {
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    let first = shop
        .inject(
            &admin,
            "/order-api",
            json!({"kind": "latency", "upstream": "backend", "delay_ms": 10, "ttl_seconds": 60}),
        )
        .await;
    let second = shop
        .inject(
            &admin,
            "/order-api",
            json!({"kind": "error", "route": "*", "status": 502, "fraction": 0, "ttl_seconds": 60}),
        )
        .await;
    let listed = shop.faults(&admin, "/order-api").await;
    assert_eq!(listed, [first.clone(), second.clone()]);
    assert!(
        shop.faults(&admin, "/api").await.is_empty(),
        "faults belong to one service"
    );

    let one = format!("/order-api/admin/faults/{}", first["id"].as_str().unwrap());
    assert_eq!(
        shop.call(Method::DELETE, &one, Some(&admin), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    expect_problem(
        shop.call(Method::DELETE, &one, Some(&admin), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        shop.call(
            Method::DELETE,
            "/order-api/admin/faults/not-a-uuid",
            Some(&admin),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(shop.faults(&admin, "/order-api").await, [second]);
    let response = shop
        .call(
            Method::DELETE,
            "/order-api/admin/faults",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(shop.faults(&admin, "/order-api").await.is_empty());
    shop.stop().await;
}

#[tokio::test]
async fn invalid_or_unknown_targets_are_refused_with_their_fields() {
    let shop = FaultShop::start().await;
    let admin = shop.admin_token().await;
    for (prefix, fault, fields) in [
        (
            "/api",
            json!({"kind": "error", "route": "/api/nothing", "status": 500, "ttl_seconds": 5}),
            vec!["route"],
        ),
        (
            "/api",
            json!({"kind": "error", "upstream": "cart-service", "status": 500, "ttl_seconds": 5}),
            vec!["upstream"],
        ),
        (
            "/cart-api",
            json!({"kind": "latency", "upstream": "backend", "delay_ms": 5, "ttl_seconds": 14401}),
            vec!["ttl_seconds"],
        ),
        (
            "/api",
            json!({"kind": "error", "route": "*", "status": 404, "fraction": 1.5, "ttl_seconds": 5}),
            vec!["fraction", "status"],
        ),
        (
            "/api",
            json!({"kind": "database", "delay_ms": 100, "ttl_seconds": 5}),
            vec!["kind"],
        ),
        (
            "/api",
            json!({"kind": "error", "route": "/api/admin/faults", "status": 500, "ttl_seconds": 5}),
            vec!["route"],
        ),
        (
            "/api",
            json!({"kind": "memory_growth", "bytes_per_second": 67_108_864, "ttl_seconds": 65}),
            vec!["bytes_per_second"],
        ),
        (
            "/api",
            json!({"kind": "memory_growth", "limit_fraction": 0.5, "ttl_seconds": 5}),
            vec!["limit_fraction", "bytes_per_second"],
        ),
        (
            "/user-api",
            json!({"kind": "file_descriptors", "limit_fraction": 0.96, "ttl_seconds": 5}),
            vec!["limit_fraction"],
        ),
    ] {
        let response = shop
            .call(
                Method::POST,
                &format!("{prefix}/admin/faults"),
                Some(&admin),
                Some(fault.clone()),
            )
            .await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let named: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{fault}: {problem}");
    }
    let missing_ttl = json!({"kind": "cpu_burn", "threads": 1});
    let response = shop
        .call(
            Method::POST,
            "/api/admin/faults",
            Some(&admin),
            Some(missing_ttl),
        )
        .await;
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(shop.faults(&admin, "/api").await.is_empty());
    shop.stop().await;
}
