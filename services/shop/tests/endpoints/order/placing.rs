//! Placing an order: reservations at current prices, idempotency, and refused lines.

use super::*;

#[tokio::test]
async fn order_create_reserves_the_stock_at_the_current_prices() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (user, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let lamp = shop.new_product(&admin, 4999, 5).await;
    let order = new_order(&shop, &token, &[(mug, 3), (lamp, 1)]).await;

    assert_eq!(
        keys(&order),
        [
            "created_at",
            "history",
            "id",
            "items",
            "status",
            "total_cents",
            "updated_at",
            "user_id"
        ]
    );
    assert_eq!(order["user_id"], user.to_string());
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total_cents"], 3750 + 4999);
    assert_eq!(order["created_at"], order["updated_at"]);
    assert_eq!(
        order["history"],
        json!([{"status": "pending", "at": order["created_at"]}])
    );
    let mug_name = expect_json::<Value>(
        shop.get(&format!("/api/products/{mug}"), None).await,
        StatusCode::OK,
    )
    .await["name"]
        .clone();
    assert_eq!(
        order["items"][0],
        json!({"product_id": mug, "name": mug_name, "unit_price_cents": 1250,
            "quantity": 3, "line_total_cents": 3750})
    );
    assert_eq!(order["items"][1]["line_total_cents"], 4999);
    assert_eq!(shop.stock_of(mug).await, 7);
    assert_eq!(shop.stock_of(lamp).await, 4);

    // The order keeps the price it was placed at.
    shop.call(
        Method::PUT,
        &format!("/api/products/{mug}"),
        Some(&admin),
        Some(json!({"price_cents": 9999})),
    )
    .await;
    let stored: Value = expect_json(
        get_order(&shop, &token, order["id"].as_str().unwrap()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored, order);
}

#[tokio::test]
async fn order_create_merges_lines_of_the_same_product() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let order = new_order(&shop, &token, &[(mug, 2), (mug, 3)]).await;
    let items = order["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["quantity"], 5);
    assert_eq!(order["total_cents"], 6250);
    assert_eq!(shop.stock_of(mug).await, 5);
}

#[tokio::test]
async fn order_create_with_the_same_idempotency_key_returns_the_first_order() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let (_, other) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;

    let first: Value = expect_json(
        place_order(&shop, &token, &[(mug, 2)], Some("checkout-42")).await,
        StatusCode::CREATED,
    )
    .await;
    let repeated: Value = expect_json(
        place_order(&shop, &token, &[(mug, 2)], Some("checkout-42")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(repeated, first);
    assert_eq!(shop.stock_of(mug).await, 8, "the stock is taken once");
    assert_eq!(list(&shop, &token, "").await.len(), 1);

    let another: Value = expect_json(
        place_order(&shop, &token, &[(mug, 2)], Some("checkout-43")).await,
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(id_of(&another), id_of(&first));
    let theirs: Value = expect_json(
        place_order(&shop, &other, &[(mug, 1)], Some("checkout-42")).await,
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(id_of(&theirs), id_of(&first), "keys are per user");
    assert_eq!(shop.stock_of(mug).await, 5);
}

#[tokio::test]
async fn order_create_refuses_invalid_idempotency_keys() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let too_long = "k".repeat(201);
    for key in ["", too_long.as_str()] {
        expect_refusal(
            place_order(&shop, &token, &[(mug, 1)], Some(key)).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Idempotency-Key",
        )
        .await;
    }
    let not_ascii = shop
        .http
        .post(shop.url("/order-api/orders/"))
        .bearer_auth(&token)
        .header(
            "Idempotency-Key",
            HeaderValue::from_bytes("ключ".as_bytes()).unwrap(),
        )
        .json(&json!({"items": [{"product_id": mug, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    expect_refusal(
        not_ascii,
        StatusCode::BAD_REQUEST,
        "bad-request",
        "visible ASCII",
    )
    .await;
    assert_eq!(shop.stock_of(mug).await, 10);
    assert_eq!(list(&shop, &token, "").await, Vec::<Value>::new());
    let longest = "k".repeat(200);
    expect_json::<Value>(
        place_order(&shop, &token, &[(mug, 1)], Some(&longest)).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn order_create_refuses_more_than_the_stock_and_takes_nothing() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let lamp = shop.new_product(&admin, 4999, 1).await;
    expect_refusal(
        place_order(&shop, &token, &[(mug, 2), (lamp, 2)], None).await,
        StatusCode::CONFLICT,
        "conflict",
        "not enough stock",
    )
    .await;
    expect_refusal(
        place_order(&shop, &token, &[(mug, 6), (mug, 5)], None).await,
        StatusCode::CONFLICT,
        "conflict",
        "not enough stock",
    )
    .await;
    assert_eq!(shop.stock_of(mug).await, 10);
    assert_eq!(shop.stock_of(lamp).await, 1);
    assert_eq!(list(&shop, &token, "").await, Vec::<Value>::new());
}

#[tokio::test]
async fn order_create_refuses_unknown_products() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let unknown = Uuid::new_v4();
    expect_refusal(
        place_order(&shop, &token, &[(mug, 1), (unknown, 1)], None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        &format!("product {unknown} does not exist"),
    )
    .await;
    assert_eq!(shop.stock_of(mug).await, 10);
}

#[tokio::test]
async fn order_create_refuses_invalid_lines() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 100_000).await;
    let line = |quantity: i64| json!({"product_id": mug, "quantity": quantity});

    expect_invalid_fields(
        post_order(&shop, &token, json!({"items": []})).await,
        &["items"],
    )
    .await;
    let many: Vec<Value> = (0..51).map(|_| line(1)).collect();
    expect_invalid_fields(
        post_order(&shop, &token, json!({ "items": many })).await,
        &["items"],
    )
    .await;
    expect_invalid_fields(
        post_order(
            &shop,
            &token,
            json!({"items": [line(0), line(1), line(-1), line(10_001)]}),
        )
        .await,
        &["items.0.quantity", "items.2.quantity", "items.3.quantity"],
    )
    .await;
    for (body, detail) in [
        (json!({}), "missing field `items`"),
        (json!({"items": line(1)}), "invalid type"),
        (
            json!({"items": [{"product_id": mug}]}),
            "missing field `quantity`",
        ),
        (
            json!({"items": [{"product_id": "mug", "quantity": 1}]}),
            "product_id",
        ),
        (
            json!({"items": [{"product_id": mug, "quantity": "1"}]}),
            "invalid type",
        ),
        (
            json!({"items": [line(1)], "user_id": Uuid::new_v4()}),
            "unknown field `user_id`",
        ),
        (
            json!({"items": [{"product_id": mug, "quantity": 1, "unit_price_cents": 1}]}),
            "unknown field `unit_price_cents`",
        ),
    ] {
        expect_undecodable(post_order(&shop, &token, body).await, detail).await;
    }
    assert_refuses_bad_json_bodies(&shop, Method::POST, "/order-api/orders/", Some(&token)).await;
    assert_eq!(shop.stock_of(mug).await, 100_000);

    let most: Vec<Value> = (0..50).map(|_| line(200)).collect();
    let order: Value = expect_json(
        post_order(&shop, &token, json!({ "items": most })).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(order["items"][0]["quantity"], 10_000, "50 lines merged");
}
