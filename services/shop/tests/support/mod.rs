//! A whole shop on ephemeral loopback ports, and a small client that speaks its API.

#![allow(dead_code)] // Each test binary uses its own part of this shared support module.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shop::{Addresses, RunningShop, ShopConfig};
use uuid::Uuid;

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-test-password";
pub const PASSWORD: &str = "correct horse battery";
/// The services' client-credentials secret, so tests can get service tokens of their own.
pub const SERVICE_SECRET: &str = "test-service-secret-not-for-production";

pub struct TestShop {
    pub addresses: Addresses,
    pub http: reqwest::Client,
    running: Option<RunningShop>,
}

/// Knobs tests turn; everything else keeps the services' defaults.
pub struct Options {
    /// How long an order stays in each status before the processor moves it on.
    pub order_step: Duration,
    /// The user service's signing key (PKCS#8 PEM), for tests that mint their own tokens.
    pub signing_key_pem: Option<&'static str>,
    /// Whether every service serves the fault API.
    pub faults: bool,
    /// How long a reservation waits for its order's commit.
    pub reservation_ttl_seconds: u64,
    /// A keyspace of the test Cassandra for the order service, instead of its memory store.
    pub order_keyspace: Option<String>,
    /// How long the cart service may use a product it read (`PRODUCT_CACHE_TTL_MS`), when
    /// not its default.
    pub product_cache_ttl: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            order_step: Duration::from_secs(3600),
            signing_key_pem: None,
            faults: false,
            reservation_ttl_seconds: 300,
            order_keyspace: None,
            product_cache_ttl: None,
        }
    }
}

impl TestShop {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let mut config = ShopConfig::from_env().expect("default configuration parses");
        config.on_ephemeral_ports();
        config.user.bcrypt_cost = 4;
        config.user.admin_username = ADMIN_USERNAME.to_owned();
        config.user.admin_password = Some(ADMIN_PASSWORD.to_owned());
        config.order.order_status_step_ms = options.order_step.as_millis() as u64;
        config.order.order_processor_tick_ms = 20;
        config.set_service_client_secret(SERVICE_SECRET);
        config.backend.reservation_ttl_seconds = options.reservation_ttl_seconds;
        config.backend.reservation_sweep_interval_ms = 100;
        for faults in [
            &mut config.backend.faults,
            &mut config.user.faults,
            &mut config.cart.faults,
            &mut config.order.faults,
        ] {
            faults.faults_enabled = options.faults;
        }
        if let Some(ttl) = options.product_cache_ttl {
            config.cart.product_cache_ttl_ms = ttl.as_millis() as u64;
        }
        if let Some(keyspace) = options.order_keyspace {
            config.order.storage.storage = shop_common::cql::StorageKind::Cql;
            config.order.storage.cql_keyspace = Some(keyspace);
        }
        if let Some(pem) = options.signing_key_pem {
            let path = std::env::temp_dir().join(format!("shop-test-key-{}.pem", Uuid::new_v4()));
            std::fs::write(&path, pem).expect("the key file is written");
            config.user.jwt_private_key_file = Some(path);
        }
        let running = shop::start(config).await.expect("the shop starts");
        Self {
            addresses: running.addresses,
            http: reqwest::Client::new(),
            running: Some(running),
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
    }

    /// The URL of a public path: the service is chosen by the path's prefix, like the gateway does.
    pub fn url(&self, path: &str) -> String {
        let address = if path.starts_with("/api/") {
            self.addresses.backend
        } else if path.starts_with("/cart-api/") {
            self.addresses.cart
        } else if path.starts_with("/order-api/") {
            self.addresses.order
        } else if path.starts_with("/user-api/") {
            self.addresses.user
        } else {
            panic!("no service serves {path}")
        };
        format!("http://{address}{path}")
    }

    pub async fn call(
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

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn token(&self, username: &str, password: &str) -> Response {
        self.http
            .post(self.url("/user-api/token"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("the user service answers")
    }

    pub async fn admin_token(&self) -> String {
        let response = self.token(ADMIN_USERNAME, ADMIN_PASSWORD).await;
        expect_json::<Value>(response, StatusCode::OK).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Registers a fresh user and returns their id and token.
    pub async fn new_user(&self) -> (Uuid, String) {
        let username = format!("user-{}", Uuid::new_v4().simple());
        let registered: Value = expect_json(
            self.call(
                Method::POST,
                "/user-api/users/register",
                None,
                Some(json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD})),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let token: Value = expect_json(self.token(&username, PASSWORD).await, StatusCode::OK).await;
        (
            registered["id"].as_str().unwrap().parse().unwrap(),
            token["access_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a product as admin and returns its id.
    pub async fn new_product(&self, admin: &str, price_cents: i64, stock: i64) -> Uuid {
        let product: Value = expect_json(
            self.call(
                Method::POST,
                "/api/products/",
                Some(admin),
                Some(json!({"name": format!("product {}", Uuid::new_v4()), "price_cents": price_cents, "stock": stock})),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        product["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn stock_of(&self, product: Uuid) -> i64 {
        let product: Value = expect_json(
            self.get(&format!("/api/products/{product}"), None).await,
            StatusCode::OK,
        )
        .await;
        product["stock"].as_i64().unwrap()
    }

    pub async fn add_to_cart(&self, token: &str, product: Uuid, quantity: i64) -> Response {
        self.call(
            Method::POST,
            "/cart-api/cart/items",
            Some(token),
            Some(json!({"product_id": product, "quantity": quantity})),
        )
        .await
    }
}

/// Asserts the status and decodes the body, showing the body when the status is wrong.
pub async fn expect_json<T: DeserializeOwned>(response: Response, status: StatusCode) -> T {
    let actual = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("undecodable body ({err}): {text}"))
}

/// Asserts an RFC 9457 problem document with this status, and returns it.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let problem: Value = expect_json(response, status).await;
    assert_eq!(
        content_type, "application/problem+json",
        "problem: {problem}"
    );
    assert_eq!(problem["status"], status.as_u16(), "problem: {problem}");
    assert!(
        problem["type"].is_string()
            && problem["title"].is_string()
            && problem["detail"].is_string()
    );
    problem
}

/// Polls until `check` holds, for at most `within`.
pub async fn eventually<F, Fut>(within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
