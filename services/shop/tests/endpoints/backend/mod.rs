//! The backend under `/api`: products, stock reservations, health, OpenAPI.

mod products;
mod reservations;

use std::collections::BTreeSet;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestShop, expect_json};
use crate::{
    Route, assert_admin_only, assert_healthy, assert_needs_a_token, assert_openapi_documents,
    assert_ready_report, assert_refuses_bad_json_bodies, assert_serves_metrics,
    assert_unknown_paths_and_methods_are_problems, expect_invalid_fields, expect_refusal,
    expect_undecodable, id_of, keys, service_token,
};

const ROUTES: &[Route] = &[
    ("get", "/products/"),
    ("post", "/products/"),
    ("get", "/products/{product_id}"),
    ("put", "/products/{product_id}"),
    ("delete", "/products/{product_id}"),
    ("put", "/internal/reservations/{reservation_id}"),
    ("delete", "/internal/reservations/{reservation_id}"),
    ("put", "/internal/reservations/{reservation_id}/commit"),
    ("get", "/admin/stock-audit"),
    ("get", "/system/health"),
];

async fn create_product(shop: &TestShop, admin: &str, body: Value) -> Response {
    shop.call(Method::POST, "/api/products/", Some(admin), Some(body))
        .await
}

async fn update_product(shop: &TestShop, admin: &str, id: Uuid, body: Value) -> Response {
    shop.call(
        Method::PUT,
        &format!("/api/products/{id}"),
        Some(admin),
        Some(body),
    )
    .await
}

async fn product(shop: &TestShop, id: Uuid) -> Value {
    expect_json(
        shop.get(&format!("/api/products/{id}"), None).await,
        StatusCode::OK,
    )
    .await
}

async fn reserve(shop: &TestShop, token: &str, id: Uuid, body: Value) -> Response {
    shop.call(
        Method::PUT,
        &format!("/api/internal/reservations/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn release(shop: &TestShop, token: &str, id: Uuid) -> Response {
    shop.call(
        Method::DELETE,
        &format!("/api/internal/reservations/{id}"),
        Some(token),
        None,
    )
    .await
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn backend_health_endpoints_report_the_store() {
    let shop = TestShop::start().await;
    assert_healthy(&shop, "/api", &["store"]).await;
    let system: Value =
        expect_json(shop.get("/api/system/health", None).await, StatusCode::OK).await;
    assert_ready_report(&system, &["store"]);
}

#[tokio::test]
async fn backend_answers_unknown_paths_and_methods_with_problems() {
    let shop = TestShop::start().await;
    let item = format!("/api/products/{}", Uuid::new_v4());
    for (method, path, allowed) in [
        (Method::PATCH, item.as_str(), "GET,HEAD,PUT,DELETE"),
        (Method::DELETE, "/api/products/", "GET,HEAD,POST"),
    ] {
        assert_unknown_paths_and_methods_are_problems(&shop, "/api", method, path, allowed).await;
    }
}

#[tokio::test]
async fn backend_serves_its_metrics() {
    let shop = TestShop::start().await;
    assert_serves_metrics(&shop, "/api", "backend", "/api/products/").await;
}

#[tokio::test]
async fn backend_openapi_documents_every_route() {
    let shop = TestShop::start().await;
    assert_openapi_documents(&shop, "/api", ROUTES).await;
}
