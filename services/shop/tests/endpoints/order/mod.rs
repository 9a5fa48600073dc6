//! The order service under `/order-api`: placing, listing and reading orders, their status
//! life cycle and cancellation, the summary, health, OpenAPI.

mod placing;
mod status;

use reqwest::header::HeaderValue;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestShop, expect_json};
use crate::{
    Route, assert_admin_only, assert_healthy, assert_needs_a_token, assert_openapi_documents,
    assert_refuses_bad_json_bodies, assert_serves_metrics,
    assert_unknown_paths_and_methods_are_problems, expect_invalid_fields, expect_refusal,
    expect_undecodable, id_of, keys, new_order, place_order,
};

const ROUTES: &[Route] = &[
    ("get", "/orders/"),
    ("post", "/orders/"),
    ("get", "/orders/summary"),
    ("get", "/orders/statuses/list"),
    ("get", "/orders/{order_id}"),
    ("put", "/orders/{order_id}/status"),
    ("put", "/orders/{order_id}/cancel"),
];

async fn post_order(shop: &TestShop, token: &str, body: Value) -> Response {
    shop.call(Method::POST, "/order-api/orders/", Some(token), Some(body))
        .await
}

async fn get_order(shop: &TestShop, token: &str, id: &str) -> Response {
    shop.get(&format!("/order-api/orders/{id}"), Some(token))
        .await
}

async fn set_status(shop: &TestShop, token: &str, order: &Value, status: &str) -> Response {
    shop.call(
        Method::PUT,
        &format!("/order-api/orders/{}/status", id_of(order)),
        Some(token),
        Some(json!({ "status": status })),
    )
    .await
}

async fn cancel(shop: &TestShop, token: &str, order: &Value) -> Response {
    shop.call(
        Method::PUT,
        &format!("/order-api/orders/{}/cancel", id_of(order)),
        Some(token),
        None,
    )
    .await
}

async fn list(shop: &TestShop, token: &str, query: &str) -> Vec<Value> {
    expect_json(
        shop.get(&format!("/order-api/orders/{query}"), Some(token))
            .await,
        StatusCode::OK,
    )
    .await
}

fn ids(orders: &[Value]) -> Vec<Uuid> {
    orders.iter().map(id_of).collect()
}

fn history(order: &Value) -> Vec<&str> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["status"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn order_get_returns_the_callers_order() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let order = new_order(&shop, &token, &[(mug, 1)]).await;
    let id = order["id"].as_str().unwrap();
    let stored: Value = expect_json(get_order(&shop, &token, id).await, StatusCode::OK).await;
    assert_eq!(stored, order);
    let seen_by_admin: Value =
        expect_json(get_order(&shop, &admin, id).await, StatusCode::OK).await;
    assert_eq!(seen_by_admin, order);
}

#[tokio::test]
async fn order_get_refuses_malformed_and_unknown_ids() {
    let shop = TestShop::start().await;
    let (_, token) = shop.new_user().await;
    for bad in ["42", "not-a-uuid", "summary-of-it"] {
        expect_refusal(
            get_order(&shop, &token, bad).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "invalid path parameter",
        )
        .await;
    }
    let unknown = Uuid::new_v4().to_string();
    expect_refusal(
        get_order(&shop, &token, &unknown).await,
        StatusCode::NOT_FOUND,
        "not-found",
        &format!("order {unknown} does not exist"),
    )
    .await;
}

#[tokio::test]
async fn order_summary_leaves_out_cancelled_orders() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (user, token) = shop.new_user().await;
    let (_, other) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 20).await;
    let lamp = shop.new_product(&admin, 4999, 20).await;
    let summary = || async {
        expect_json::<Value>(
            shop.get("/order-api/orders/summary", Some(&token)).await,
            StatusCode::OK,
        )
        .await
    };
    assert_eq!(
        summary().await,
        json!({"user_id": user, "order_count": 0, "total_spent_cents": 0})
    );
    new_order(&shop, &token, &[(mug, 2)]).await;
    let shipped = new_order(&shop, &token, &[(lamp, 1)]).await;
    expect_json::<Value>(
        set_status(&shop, &admin, &shipped, "shipped").await,
        StatusCode::OK,
    )
    .await;
    let cancelled = new_order(&shop, &token, &[(mug, 1), (lamp, 3)]).await;
    new_order(&shop, &other, &[(lamp, 5)]).await;
    assert_eq!(
        summary().await,
        json!({"user_id": user, "order_count": 3, "total_spent_cents": 2500 + 4999 + 1250 + 14997})
    );
    expect_json::<Value>(cancel(&shop, &token, &cancelled).await, StatusCode::OK).await;
    assert_eq!(
        summary().await,
        json!({"user_id": user, "order_count": 2, "total_spent_cents": 2500 + 4999})
    );
}

#[tokio::test]
async fn order_list_returns_the_callers_orders_newest_first() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let (_, other) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 20).await;
    assert_eq!(list(&shop, &token, "").await, Vec::<Value>::new());
    let first = new_order(&shop, &token, &[(mug, 1)]).await;
    let second = new_order(&shop, &token, &[(mug, 2)]).await;
    let third = new_order(&shop, &token, &[(mug, 3)]).await;
    new_order(&shop, &other, &[(mug, 4)]).await;

    let newest_first = vec![third.clone(), second.clone(), first.clone()];
    assert_eq!(list(&shop, &token, "").await, newest_first);
    assert_eq!(list(&shop, &token, "?scope=own").await, newest_first);
    assert_eq!(
        list(&shop, &token, "?limit=2").await,
        vec![third.clone(), second]
    );
    assert_eq!(list(&shop, &token, "?scope=own&limit=1").await, vec![third]);
    assert_eq!(list(&shop, &token, "?limit=1000").await.len(), 3);
}

#[tokio::test]
async fn order_list_refuses_invalid_limits_and_scopes() {
    let shop = TestShop::start().await;
    let (_, token) = shop.new_user().await;
    for limit in ["0", "-5", "1001"] {
        expect_invalid_fields(
            shop.get(&format!("/order-api/orders/?limit={limit}"), Some(&token))
                .await,
            &["limit"],
        )
        .await;
    }
    for query in ["limit=lots", "scope=everyone", "scope=ALL"] {
        expect_refusal(
            shop.get(&format!("/order-api/orders/?{query}"), Some(&token))
                .await,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "invalid query parameter",
        )
        .await;
    }
}

#[tokio::test]
async fn order_list_scope_all_is_for_admins_only() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, alice) = shop.new_user().await;
    let (_, bob) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 20).await;
    let from_alice = new_order(&shop, &alice, &[(mug, 1)]).await;
    let from_bob = new_order(&shop, &bob, &[(mug, 2)]).await;

    expect_refusal(
        shop.get("/order-api/orders/?scope=all", Some(&alice)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "only admins see everyone's orders",
    )
    .await;
    let everyone = vec![from_bob, from_alice];
    assert_eq!(list(&shop, &admin, "?scope=all").await, everyone);
    assert_eq!(
        list(&shop, &admin, "").await,
        everyone,
        "admins see all by default"
    );
    assert_eq!(
        list(&shop, &admin, "?scope=all&limit=1").await,
        everyone[..1]
    );
    assert_eq!(
        ids(&list(&shop, &admin, "?scope=own").await),
        Vec::<Uuid>::new()
    );
}

#[tokio::test]
async fn order_endpoints_need_a_token() {
    let shop = TestShop::start().await;
    let order = format!("/order-api/orders/{}", Uuid::new_v4());
    let status = format!("{order}/status");
    let cancel = format!("{order}/cancel");
    let create = json!({"items": [{"product_id": Uuid::new_v4(), "quantity": 1}]});
    for (method, path, body) in [
        (Method::GET, "/order-api/orders/", None),
        (Method::POST, "/order-api/orders/", Some(create)),
        (Method::GET, "/order-api/orders/summary", None),
        (Method::GET, order.as_str(), None),
        (
            Method::PUT,
            status.as_str(),
            Some(json!({"status": "shipped"})),
        ),
        (Method::PUT, cancel.as_str(), None),
    ] {
        assert_needs_a_token(&shop, method, path, body).await;
    }
}

#[tokio::test]
async fn order_service_health_endpoints_report_store_keys_and_backend() {
    let shop = TestShop::start().await;
    assert_healthy(&shop, "/order-api", &["backend", "signing_keys", "store"]).await;
}

#[tokio::test]
async fn order_service_answers_unknown_paths_and_methods_with_problems() {
    let shop = TestShop::start().await;
    let cancel = format!("/order-api/orders/{}/cancel", Uuid::new_v4());
    for (method, path, allowed) in [
        (Method::DELETE, "/order-api/orders/", "GET,HEAD,POST"),
        (Method::POST, cancel.as_str(), "PUT"),
    ] {
        assert_unknown_paths_and_methods_are_problems(&shop, "/order-api", method, path, allowed)
            .await;
    }
}

#[tokio::test]
async fn order_service_serves_its_metrics() {
    let shop = TestShop::start().await;
    assert_serves_metrics(
        &shop,
        "/order-api",
        "order-service",
        "/order-api/orders/statuses/list",
    )
    .await;
}

#[tokio::test]
async fn order_service_openapi_documents_every_route() {
    let shop = TestShop::start().await;
    assert_openapi_documents(&shop, "/order-api", ROUTES).await;
}
