//! Orders and stock stay in step when a step of placing an order is cut off: an order
//! whose write timed out yet applied keeps its stock, and an order whose reservation
//! expired before it was committed is cancelled, never shipped, and an order retried after
//! its write timed out is placed once, on the stock its first try reserved. The backend's
//! stock audit balances after each.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shop_common::testing::{TestKeyspace, cassandra_available};
use uuid::Uuid;

use support::{Options, TestShop, eventually, expect_json};

async fn add_fault(shop: &TestShop, admin: &str, prefix: &str, fault: Value) -> String {
    let path = format!("{prefix}/admin/faults");
    let created: Value = expect_json(
        shop.call(Method::POST, &path, Some(admin), Some(fault))
            .await,
        StatusCode::CREATED,
    )
    .await;
    format!("{path}/{}", created["id"].as_str().unwrap())
}

async fn place_order(
    shop: &TestShop,
    token: &str,
    product: Uuid,
    quantity: i64,
) -> reqwest::Response {
    let body = json!({"items": [{"product_id": product, "quantity": quantity}]});
    shop.call(Method::POST, "/order-api/orders/", Some(token), Some(body))
        .await
}

async fn audit(shop: &TestShop, admin: &str) -> Value {
    expect_json(
        shop.get("/api/admin/stock-audit", Some(admin)).await,
        StatusCode::OK,
    )
    .await
}

/// A shop, ready, whose order service keeps its orders in Cassandra, where database
/// faults apply to its statements; `None` without Cassandra. The keyspace is dropped with
/// the first half.
async fn shop_with_cql_orders() -> Option<(TestKeyspace, TestShop)> {
    if !cassandra_available().await {
        return None;
    }
    let keyspace = TestKeyspace::new("test_orders");
    let shop = TestShop::start_with(Options {
        faults: true,
        order_keyspace: Some(keyspace.name().to_owned()),
        ..Options::default()
    })
    .await;
    eventually(Duration::from_secs(60), || async {
        shop.get("/order-api/health/ready", None).await.status() == StatusCode::OK
    })
    .await;
    Some((keyspace, shop))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_written_although_its_write_timed_out_keeps_its_stock() {
    let Some((_keyspace, shop)) = shop_with_cql_orders().await else {
        return;
    };
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 500, 5).await;
    let (_, token) = shop.new_user().await;
    // The order's row is written, then its writer hears a timeout.
    let lost_answer = json!({"kind": "database", "statement": "insert_order", "fail": true,
        "applied": true, "ttl_seconds": 60});
    let fault = add_fault(&shop, &admin, "/order-api", lost_answer).await;

    let order: Value = expect_json(
        place_order(&shop, &token, product, 2).await,
        StatusCode::CREATED,
    )
    .await;
    shop.call(Method::DELETE, &fault, Some(&admin), None).await;

    let read: Value = expect_json(
        shop.get(
            &format!("/order-api/orders/{}", order["id"].as_str().unwrap()),
            Some(&token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["status"], "pending");
    assert_eq!(shop.stock_of(product).await, 3, "the order keeps its stock");
    let books = audit(&shop, &admin).await;
    assert_eq!(books["passed"], true, "{books}");
    assert_eq!(books["committed"], 1, "{books}");
    shop.stop().await;
}

/// A checkout the cart service retries after the order's write timed out: the retry must
/// find the reservation the first try made, not one already given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_retried_after_its_write_timed_out_is_placed_once() {
    let Some((_keyspace, shop)) = shop_with_cql_orders().await else {
        return;
    };
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 500, 5).await;
    let (_, token) = shop.new_user().await;
    let place = || {
        shop.http
            .post(shop.url("/order-api/orders/"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "checkout-1")
            .json(&json!({"items": [{"product_id": product, "quantity": 2}]}))
            .send()
    };
    let write_times_out = json!({"kind": "database", "statement": "insert_order", "fail": true,
        "ttl_seconds": 60});
    let fault = add_fault(&shop, &admin, "/order-api", write_times_out).await;

    let timed_out = place().await.unwrap();
    assert_eq!(timed_out.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        shop.stock_of(product).await,
        3,
        "the reservation waits for a retry, or its expiry"
    );
    shop.call(Method::DELETE, &fault, Some(&admin), None).await;

    let order: Value = expect_json(place().await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(order["status"], "pending");
    let again: Value = expect_json(place().await.unwrap(), StatusCode::OK).await;
    assert_eq!(again["id"], order["id"], "one order per key");
    assert_eq!(shop.stock_of(product).await, 3, "its stock taken once");
    let books = audit(&shop, &admin).await;
    assert_eq!(books["passed"], true, "{books}");
    assert_eq!(books["committed"], 1, "{books}");
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_reservation_expired_before_its_commit_is_cancelled_not_shipped() {
    let shop = TestShop::start_with(Options {
        faults: true,
        reservation_ttl_seconds: 5,
        order_step: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 500, 5).await;
    let (_, token) = shop.new_user().await;
    let commit_fails = json!({"kind": "error", "status": 500, "ttl_seconds": 60,
        "route": "/api/internal/reservations/{reservation_id}/commit"});
    let fault = add_fault(&shop, &admin, "/api", commit_fails).await;

    let refused = place_order(&shop, &token, product, 2).await;
    assert!(refused.status().is_server_error(), "{}", refused.status());
    assert_eq!(shop.stock_of(product).await, 3, "reserved, not committed");
    eventually(Duration::from_secs(15), || async {
        shop.stock_of(product).await == 5
    })
    .await;
    shop.call(Method::DELETE, &fault, Some(&admin), None).await;

    let mine = || async {
        let orders: Value = expect_json(
            shop.get("/order-api/orders/", Some(&token)).await,
            StatusCode::OK,
        )
        .await;
        orders[0].clone()
    };
    eventually(Duration::from_secs(10), || async {
        mine().await["status"] == "cancelled"
    })
    .await;
    let order = mine().await;
    let statuses: Vec<&str> = order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["pending", "cancelled"],
        "it never went on without its stock"
    );
    assert_eq!(shop.stock_of(product).await, 5);

    let forbidden = shop.get("/api/admin/stock-audit", Some(&token)).await;
    assert_eq!(
        forbidden.status(),
        StatusCode::FORBIDDEN,
        "the audit is for admins"
    );
    let books = audit(&shop, &admin).await;
    assert_eq!(books["passed"], true, "{books}");
    shop.stop().await;
}
