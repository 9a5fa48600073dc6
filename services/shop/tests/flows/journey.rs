//! The customer journey end to end, over loopback ports, as a user would walk it with curl.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Options, TestShop, eventually, expect_json};

#[tokio::test]
async fn a_customer_shops_checks_out_follows_and_cancels_orders() {
    let shop = TestShop::start_with(Options {
        order_step: Duration::from_millis(400),
        ..Options::default()
    })
    .await;
    let admin = shop.admin_token().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let lamp = shop.new_product(&admin, 4999, 3).await;
    let (user_id, token) = shop.new_user().await;

    // Browse: the catalogue lists both products, and each can be viewed.
    let listed: Vec<Value> = expect_json(
        shop.get("/api/products/?limit=100", None).await,
        StatusCode::OK,
    )
    .await;
    for id in [mug, lamp] {
        assert!(
            listed.iter().any(|p| p["id"] == id.to_string()),
            "{id} is listed"
        );
    }

    // Fill the cart, change a quantity, remove a line.
    let cart: Value =
        expect_json(shop.add_to_cart(&token, mug, 2).await, StatusCode::CREATED).await;
    let mug_line = cart["items"][0]["id"].as_str().unwrap().to_owned();
    let cart: Value =
        expect_json(shop.add_to_cart(&token, lamp, 1).await, StatusCode::CREATED).await;
    let lamp_line = cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["product_id"] == lamp.to_string())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_json::<Value>(
        shop.call(
            Method::PUT,
            &format!("/cart-api/cart/items/{mug_line}"),
            Some(&token),
            Some(json!({"quantity": 3})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_json::<Value>(
        shop.call(
            Method::DELETE,
            &format!("/cart-api/cart/items/{lamp_line}"),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let total: Value = expect_json(
        shop.get("/cart-api/cart/total", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(total, json!({"total_cents": 3750, "item_count": 3}));

    // Check out through the user service: user → cart → order → backend.
    let order: Value = expect_json(
        shop.call(
            Method::POST,
            "/user-api/users/me/orders",
            Some(&token),
            None,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order["total_cents"], 3750);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["user_id"], user_id.to_string());
    assert_eq!(shop.stock_of(mug).await, 7, "three mugs are reserved");
    let cart: Value = expect_json(
        shop.get("/user-api/users/me/cart", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cart["items"], json!([]), "checkout empties the cart");

    // The order is visible in the order service and through the user service.
    let direct: Value = expect_json(
        shop.get(&format!("/order-api/orders/{order_id}"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(direct["items"][0]["unit_price_cents"], 1250);
    let mine: Vec<Value> = expect_json(
        shop.get("/user-api/users/me/orders", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], order_id);

    // The processor moves it along, and the user service hears of every step.
    eventually(Duration::from_secs(10), || async {
        let profile: Value = expect_json(
            shop.get("/user-api/users/me/profile", Some(&token)).await,
            StatusCode::OK,
        )
        .await;
        let statuses: Vec<&str> = profile["recent_order_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["status"].as_str().unwrap())
            .collect();
        statuses == ["delivered", "shipped", "processing", "pending"]
    })
    .await;
    let delivered: Value = expect_json(
        shop.get(&format!("/order-api/orders/{order_id}"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    let history: Vec<&str> = delivered["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["pending", "processing", "shipped", "delivered"]);
    let spent: Value = expect_json(
        shop.get("/user-api/users/me/total-spent", Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(spent["total_spent_cents"], 3750);

    // A second order, cancelled before it ships: stock comes back, nothing more is spent.
    expect_json::<Value>(shop.add_to_cart(&token, lamp, 2).await, StatusCode::CREATED).await;
    let second: Value = expect_json(
        shop.call(Method::POST, "/cart-api/cart/checkout", Some(&token), None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(shop.stock_of(lamp).await, 1);
    let cancelled: Value = expect_json(
        shop.call(
            Method::PUT,
            &format!(
                "/order-api/orders/{}/cancel",
                second["id"].as_str().unwrap()
            ),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(shop.stock_of(lamp).await, 3, "cancelling returns the stock");
    let spent: Value = expect_json(
        shop.get("/user-api/users/me/total-spent", Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        spent,
        json!({"user_id": user_id, "order_count": 1, "total_spent_cents": 3750})
    );

    shop.stop().await;
}
