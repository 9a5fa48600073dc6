//! The shop's trust boundaries: services refuse to start with a published secret, and what
//! arrives through the public gateway can reach neither the internal routes nor the
//! client-credentials grant.

use clap::Parser;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use shop_common::background::Background;
use uuid::Uuid;

use crate::support::{SERVICE_SECRET, TestShop, expect_json, expect_problem};

/// The value `SERVICE_CLIENT_SECRET` used to default to: it is in this repository, so it
/// proves nothing about who presents it.
const PUBLISHED_SECRET: &str = "dev-service-secret";

/// The header the gateway sets on every request it proxies (observability/nginx/nginx.conf).
const GATEWAY_HEADER: &str = "x-shop-gateway";

/// The arguments every service gets here: any free port, the embedded store, and `extra`.
fn args<'a>(binary: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![binary, "--listen", "127.0.0.1:0", "--storage", "memory"];
    args.extend_from_slice(extra);
    args
}

/// Starts each service's app with `extra` arguments, and returns each one's start-up error.
async fn start_errors(extra: &[&str]) -> Vec<(&'static str, Option<String>)> {
    let backend = backend::Config::try_parse_from(args("backend", extra)).unwrap();
    let user = user_service::Config::try_parse_from(args("user-service", extra)).unwrap();
    let cart = cart_service::Config::try_parse_from(args("cart-service", extra)).unwrap();
    let order = order_service::Config::try_parse_from(args("order-service", extra)).unwrap();
    let background = Background::default();
    let errors = vec![
        ("backend", error(backend::app(&backend, &background).await)),
        ("user-service", error(user_service::app(&user).await)),
        ("cart-service", error(cart_service::app(&cart).await)),
        (
            "order-service",
            error(order_service::app(&order, &background).await),
        ),
    ];
    background.stop().await;
    errors
}

fn error<T>(result: anyhow::Result<T>) -> Option<String> {
    result.err().map(|err| format!("{err:#}"))
}

#[tokio::test]
async fn every_service_refuses_to_start_with_the_published_secret() {
    for secret in [PUBLISHED_SECRET, "", "too-short"] {
        let flag = format!("--service-client-secret={secret}");
        for (service, error) in start_errors(&[&flag]).await {
            let error = error.unwrap_or_else(|| panic!("{service} started with {secret:?}"));
            assert!(
                error.contains("SERVICE_CLIENT_SECRET") && !error.contains('\n'),
                "{service}: one line naming the variable: {error}"
            );
            assert!(
                secret.is_empty() || !error.contains(secret),
                "{service} shows the secret: {error}"
            );
        }
    }
}

#[tokio::test]
async fn dev_mode_accepts_the_published_secret() {
    let flag = format!("--service-client-secret={PUBLISHED_SECRET}");
    for (service, error) in start_errors(&[&flag, "--dev"]).await {
        assert_eq!(error, None, "{service} starts in dev mode");
    }
}

#[tokio::test]
async fn the_all_in_one_shop_refuses_the_published_secret_too() {
    let mut config = shop::ShopConfig::from_env().expect("default configuration parses");
    config.set_service_client_secret(PUBLISHED_SECRET);
    let any_port = "127.0.0.1:0".parse().unwrap();
    config.backend.listen = any_port;
    config.user.listen = any_port;
    config.cart.listen = any_port;
    config.order.listen = any_port;
    let error = match shop::start(config).await {
        Ok(running) => {
            running.shutdown().await.unwrap();
            panic!("the shop started with the published secret")
        }
        Err(err) => format!("{err:#}"),
    };
    assert!(error.contains("SERVICE_CLIENT_SECRET"), "{error}");
}

/// A request as the gateway forwards it.
fn through_gateway(request: RequestBuilder) -> RequestBuilder {
    request.header(GATEWAY_HEADER, "1")
}

fn service_grant(shop: &TestShop) -> RequestBuilder {
    shop.http.post(shop.url("/user-api/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "order-service"),
        ("client_secret", SERVICE_SECRET),
    ])
}

#[tokio::test]
async fn the_service_grant_is_not_served_through_the_gateway() {
    let shop = TestShop::start().await;
    let problem = expect_problem(
        through_gateway(service_grant(&shop)).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(problem["type"], "/docs/reference/problems/#not-found");
    // Directly, as the services ask for it, the grant works; and users still log in through
    // the gateway.
    expect_json::<Value>(service_grant(&shop).send().await.unwrap(), StatusCode::OK).await;
    let (_, _user) = shop.new_user().await;
    let admin_login = through_gateway(shop.http.post(shop.url("/user-api/token")).form(&[
        ("username", crate::support::ADMIN_USERNAME),
        ("password", crate::support::ADMIN_PASSWORD),
    ]));
    expect_json::<Value>(admin_login.send().await.unwrap(), StatusCode::OK).await;
    shop.stop().await;
}

#[tokio::test]
async fn internal_routes_are_not_served_through_the_gateway() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (user_id, _) = shop.new_user().await;
    let product = shop.new_product(&admin, 100, 5).await;
    let service: Value =
        expect_json(service_grant(&shop).send().await.unwrap(), StatusCode::OK).await;
    let service = service["access_token"].as_str().unwrap();
    let reservation = format!("/api/internal/reservations/{}", Uuid::new_v4());
    let stock = json!({"items": [{"product_id": product, "quantity": 5}]});
    let event = json!({
        "order_id": Uuid::new_v4(), "user_id": user_id, "status": "delivered",
        "total_cents": 1, "occurred_at": "2026-01-01T00:00:00Z"
    });
    let calls = [
        (Method::PUT, reservation.as_str(), Some(&stock)),
        (Method::DELETE, reservation.as_str(), None),
        (
            Method::POST,
            "/user-api/internal/order-events",
            Some(&event),
        ),
        (Method::GET, "/cart-api/internal/anything", None),
        (Method::GET, "/order-api/internal/anything", None),
    ];
    for (method, path, body) in calls {
        let mut request =
            through_gateway(shop.http.request(method.clone(), shop.url(path))).bearer_auth(service);
        if let Some(body) = body {
            request = request.json(body);
        }
        let problem = expect_problem(request.send().await.unwrap(), StatusCode::NOT_FOUND).await;
        assert_eq!(
            problem["type"], "/docs/reference/problems/#not-found",
            "{method} {path}"
        );
    }
    assert_eq!(shop.stock_of(product).await, 5, "no stock was taken");
    // The same reservation, directly from a service, is served.
    let response = shop
        .http
        .put(shop.url(&reservation))
        .bearer_auth(service)
        .json(&stock)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(shop.stock_of(product).await, 0);
    shop.stop().await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_password() {
    let shop = TestShop::start().await;
    let (_, token) = shop.new_user().await;
    let me: Value = expect_json(
        shop.get("/user-api/users/me", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    let username = me["username"].as_str().unwrap();
    let change =
        |body: Value| shop.call(Method::PUT, "/user-api/users/me", Some(&token), Some(body));
    let new_password = "a brand new passphrase";

    // A stolen token alone does not take the account over.
    let missing = expect_problem(
        change(json!({"password": new_password})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        missing["errors"][0]["field"], "current_password",
        "{missing}"
    );
    let wrong = expect_problem(
        change(json!({"password": new_password, "current_password": "not my password"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(wrong["detail"], "the current password is wrong");
    expect_json::<Value>(
        shop.token(username, crate::support::PASSWORD).await,
        StatusCode::OK,
    )
    .await;

    expect_json::<Value>(
        change(json!({"password": new_password, "current_password": crate::support::PASSWORD}))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_json::<Value>(shop.token(username, new_password).await, StatusCode::OK).await;
    // Other fields change without it.
    expect_json::<Value>(change(json!({"full_name": "Ada"})).await, StatusCode::OK).await;
    shop.stop().await;
}
