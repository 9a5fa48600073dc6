//! Under any concurrency nothing is oversold and no stock is lost or invented.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestShop, expect_json};

const BUYERS: usize = 200;
const STOCK: i64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_checkouts_of_fifty_units_make_fifty_orders() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 999, STOCK).await;
    let buyers = join_all((0..BUYERS).map(|_| async {
        let (_, token) = shop.new_user().await;
        expect_json::<Value>(
            shop.add_to_cart(&token, product, 1).await,
            StatusCode::CREATED,
        )
        .await;
        token
    }))
    .await;

    let statuses = join_all(buyers.iter().map(|token| async {
        shop.call(Method::POST, "/user-api/users/me/orders", Some(token), None)
            .await
            .status()
    }))
    .await;

    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!(
        (created, refused),
        (STOCK as usize, BUYERS - STOCK as usize),
        "{statuses:?}"
    );
    assert_eq!(shop.stock_of(product).await, 0);
    let orders: Vec<Value> = expect_json(
        shop.get("/order-api/orders/?scope=all&limit=1000", Some(&admin))
            .await,
        StatusCode::OK,
    )
    .await;
    let units: i64 = orders
        .iter()
        .filter(|order| order["items"][0]["product_id"] == product.to_string())
        .map(|order| order["items"][0]["quantity"].as_i64().unwrap())
        .sum();
    assert_eq!(units, STOCK, "exactly the stock was sold");
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_direct_orders_and_cancellations_keep_stock_exact() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 500, 30).await;
    let (_, token) = shop.new_user().await;

    let placed = join_all((0..60).map(|_| async {
        shop.call(
            Method::POST,
            "/order-api/orders/",
            Some(&token),
            Some(json!({"items": [{"product_id": product, "quantity": 1}]})),
        )
        .await
    }))
    .await;
    let mut order_ids = Vec::new();
    for response in placed {
        if response.status() == StatusCode::CREATED {
            let order: Value = response.json().await.unwrap();
            order_ids.push(order["id"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(response.status(), StatusCode::CONFLICT);
        }
    }
    assert_eq!(order_ids.len(), 30);
    assert_eq!(shop.stock_of(product).await, 0);

    // Every order cancelled five times at once: each returns its unit exactly once.
    let cancel_paths: Vec<String> = order_ids
        .iter()
        .flat_map(|id| std::iter::repeat_n(format!("/order-api/orders/{id}/cancel"), 5))
        .collect();
    let cancels = join_all(cancel_paths.iter().map(|path| async {
        shop.call(Method::PUT, path, Some(&token), None)
            .await
            .status()
    }))
    .await;
    let succeeded = cancels.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(
        succeeded, 30,
        "one cancellation per order wins: {cancels:?}"
    );
    assert!(
        cancels
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT)
    );
    assert_eq!(
        shop.stock_of(product).await,
        30,
        "all stock is back, none invented"
    );
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_submitted_checkout_makes_one_order() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 700, 10).await;
    let (_, token) = shop.new_user().await;
    expect_json::<Value>(
        shop.add_to_cart(&token, product, 2).await,
        StatusCode::CREATED,
    )
    .await;

    let responses = join_all(
        (0..5).map(|_| shop.call(Method::POST, "/cart-api/cart/checkout", Some(&token), None)),
    )
    .await;
    let mut ids = Vec::new();
    for response in responses {
        match response.status() {
            StatusCode::CREATED => ids.push(response.json::<Value>().await.unwrap()["id"].clone()),
            // Clicks that arrive after the cart was emptied find nothing to order.
            status => assert_eq!(status, StatusCode::CONFLICT),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all successful checkouts name the same order");
    assert_eq!(shop.stock_of(product).await, 8, "stock is taken once");
    let mine: Vec<Value> = expect_json(
        shop.get("/order-api/orders/", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine.len(), 1);
    shop.stop().await;
}
