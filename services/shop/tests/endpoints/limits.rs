//! What keeps one user's data from growing a request without bound, or from building what a
//! later step must refuse: the orders a profile shows, the orders a summary reads, the
//! lines of a cart.

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use shop_common::models::order::MAX_ORDER_LINES;

use crate::support::{TestShop, expect_json};
use crate::{expect_invalid_fields, id_of, new_order};

/// How many orders the profile shows (`PROFILE_ORDERS` in the user service).
const PROFILE_ORDERS: usize = 20;

#[tokio::test]
async fn the_profile_shows_the_latest_orders_and_the_spending_of_all() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 100, 50).await;
    let mut placed = Vec::new();
    for _ in 0..=PROFILE_ORDERS {
        placed.push(id_of(&new_order(&shop, &token, &[(mug, 1)]).await));
    }

    let profile: Value = expect_json(
        shop.get("/user-api/users/me/profile", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    let shown: Vec<_> = profile["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    let newest: Vec<_> = placed.iter().rev().take(PROFILE_ORDERS).copied().collect();
    assert_eq!(shown, newest, "the latest {PROFILE_ORDERS}, newest first");
    assert_eq!(
        profile["total_spent_cents"],
        100 * (PROFILE_ORDERS as i64 + 1)
    );
}

#[tokio::test]
async fn a_cart_refuses_a_line_more_than_an_order_accepts() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mut products = Vec::new();
    for _ in 0..MAX_ORDER_LINES {
        let product = shop.new_product(&admin, 100, 10).await;
        expect_json::<Value>(
            shop.add_to_cart(&token, product, 1).await,
            StatusCode::CREATED,
        )
        .await;
        products.push(product);
    }

    let one_more = shop.new_product(&admin, 100, 10).await;
    let problem =
        expect_invalid_fields(shop.add_to_cart(&token, one_more, 1).await, &["product_id"]).await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_ORDER_LINES.to_string()),
        "{problem}"
    );
    let cart: Value = expect_json(
        shop.get("/cart-api/cart/", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cart["items"].as_array().unwrap().len(), MAX_ORDER_LINES);

    // More of a product already in the cart is no new line.
    expect_json::<Value>(
        shop.add_to_cart(&token, products[0], 1).await,
        StatusCode::CREATED,
    )
    .await;
    // And the full cart is one order.
    let order: Value = expect_json(
        shop.call(
            reqwest::Method::POST,
            "/cart-api/cart/checkout",
            Some(&token),
            None,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(order["items"].as_array().unwrap().len(), MAX_ORDER_LINES);
}

/// How many of the caller's latest orders the summary adds up (`MAX_LISTED` in the order
/// service).
const SUMMARIZED_ORDERS: usize = 1000;

#[tokio::test]
async fn the_summary_adds_up_a_bounded_number_of_orders() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop
        .new_product(&admin, 1, SUMMARIZED_ORDERS as i64 + 1)
        .await;
    futures_util::stream::iter(0..=SUMMARIZED_ORDERS)
        .for_each_concurrent(8, |_| async {
            new_order(&shop, &token, &[(mug, 1)]).await;
        })
        .await;

    let summary: Value = expect_json(
        shop.get("/order-api/orders/summary", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(summary["order_count"], SUMMARIZED_ORDERS, "{summary}");
    assert_eq!(summary["total_spent_cents"], SUMMARIZED_ORDERS, "{summary}");
}
