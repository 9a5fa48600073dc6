//! The order service under `/order-api`: placing, listing and reading orders, their status
//! life cycle and cancellation, the summary, health, OpenAPI.

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
async fn order_statuses_list_the_life_cycle_in_order() {
    let shop = TestShop::start().await;
    let statuses: Value = expect_json(
        shop.get("/order-api/orders/statuses/list", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        statuses,
        json!(["pending", "processing", "shipped", "delivered", "cancelled"])
    );
}

#[tokio::test]
async fn order_status_moves_forward_only() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let order = new_order(&shop, &token, &[(mug, 2)]).await;

    let shipped: Value = expect_json(
        set_status(&shop, &admin, &order, "shipped").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shipped["status"], "shipped");
    assert_eq!(history(&shipped), ["pending", "shipped"]);
    assert_eq!(shipped["history"][1]["at"], shipped["updated_at"]);
    assert!(shipped["updated_at"].as_str() >= order["updated_at"].as_str());
    for field in ["id", "user_id", "items", "total_cents", "created_at"] {
        assert_eq!(shipped[field], order[field], "{field} is kept");
    }

    for backwards in ["pending", "processing", "shipped"] {
        expect_refusal(
            set_status(&shop, &admin, &order, backwards).await,
            StatusCode::CONFLICT,
            "conflict",
            &format!("an order that is shipped cannot become {backwards}"),
        )
        .await;
    }
    expect_refusal(
        set_status(&shop, &admin, &order, "cancelled").await,
        StatusCode::CONFLICT,
        "conflict",
        "cannot become cancelled",
    )
    .await;
    expect_refusal(
        cancel(&shop, &token, &order).await,
        StatusCode::CONFLICT,
        "conflict",
        "cannot become cancelled",
    )
    .await;
    assert_eq!(
        shop.stock_of(mug).await,
        8,
        "a shipped order keeps its stock"
    );

    let delivered: Value = expect_json(
        set_status(&shop, &admin, &order, "delivered").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history(&delivered), ["pending", "shipped", "delivered"]);
    let stored: Value = expect_json(
        get_order(&shop, &token, order["id"].as_str().unwrap()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored, delivered);
}

#[tokio::test]
async fn order_status_to_cancelled_by_an_admin_returns_the_stock() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let order = new_order(&shop, &token, &[(mug, 4)]).await;
    let processing: Value = expect_json(
        set_status(&shop, &admin, &order, "processing").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history(&processing), ["pending", "processing"]);
    let cancelled: Value = expect_json(
        set_status(&shop, &admin, &order, "cancelled").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history(&cancelled), ["pending", "processing", "cancelled"]);
    assert_eq!(shop.stock_of(mug).await, 10);
    expect_refusal(
        set_status(&shop, &admin, &order, "delivered").await,
        StatusCode::CONFLICT,
        "conflict",
        "an order that is cancelled cannot become delivered",
    )
    .await;
}

#[tokio::test]
async fn order_status_refuses_unknown_statuses_ids_and_bodies() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let order = new_order(&shop, &token, &[(mug, 1)]).await;
    let path = format!("/order-api/orders/{}/status", id_of(&order));
    for (body, detail) in [
        (json!({"status": "lost"}), "unknown variant `lost`"),
        (json!({"status": "Shipped"}), "unknown variant `Shipped`"),
        (json!({}), "missing field `status`"),
        (
            json!({"status": "shipped", "note": "x"}),
            "unknown field `note`",
        ),
    ] {
        expect_undecodable(
            shop.call(Method::PUT, &path, Some(&admin), Some(body))
                .await,
            detail,
        )
        .await;
    }
    assert_refuses_bad_json_bodies(&shop, Method::PUT, &path, Some(&admin)).await;

    let unknown = json!({"id": Uuid::new_v4()});
    expect_refusal(
        set_status(&shop, &admin, &unknown, "shipped").await,
        StatusCode::NOT_FOUND,
        "not-found",
        "does not exist",
    )
    .await;
    expect_refusal(
        shop.call(
            Method::PUT,
            "/order-api/orders/123/status",
            Some(&admin),
            Some(json!({"status": "shipped"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad-request",
        "invalid path parameter",
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
async fn order_status_is_for_admins_only() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let order = new_order(&shop, &token, &[(mug, 1)]).await;
    let path = format!("/order-api/orders/{}/status", id_of(&order));
    let body = Some(json!({"status": "shipped"}));
    assert_needs_a_token(&shop, Method::PUT, &path, body.clone()).await;
    assert_admin_only(&shop, Method::PUT, &path, body.clone()).await;
    expect_refusal(
        shop.call(Method::PUT, &path, Some(&token), body).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "for admins only",
    )
    .await;
    let stored: Value = expect_json(
        get_order(&shop, &token, order["id"].as_str().unwrap()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["status"], "pending");
}

#[tokio::test]
async fn order_cancel_before_shipping_restores_the_stock() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let lamp = shop.new_product(&admin, 4999, 2).await;
    let order = new_order(&shop, &token, &[(mug, 3), (lamp, 2)]).await;
    assert_eq!(shop.stock_of(lamp).await, 0);

    let cancelled: Value = expect_json(cancel(&shop, &token, &order).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(history(&cancelled), ["pending", "cancelled"]);
    for field in ["id", "user_id", "items", "total_cents", "created_at"] {
        assert_eq!(cancelled[field], order[field], "{field} is kept");
    }
    assert_eq!(shop.stock_of(mug).await, 10);
    assert_eq!(shop.stock_of(lamp).await, 2);

    expect_refusal(
        cancel(&shop, &token, &order).await,
        StatusCode::CONFLICT,
        "conflict",
        "an order that is cancelled cannot become cancelled",
    )
    .await;
    assert_eq!(shop.stock_of(mug).await, 10, "stock comes back once");
}

#[tokio::test]
async fn order_cancel_while_processing_works_for_the_owner_and_for_admins() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let mine = new_order(&shop, &token, &[(mug, 1)]).await;
    let other = new_order(&shop, &token, &[(mug, 2)]).await;
    for order in [&mine, &other] {
        expect_json::<Value>(
            set_status(&shop, &admin, order, "processing").await,
            StatusCode::OK,
        )
        .await;
    }
    let by_owner: Value = expect_json(cancel(&shop, &token, &mine).await, StatusCode::OK).await;
    assert_eq!(history(&by_owner), ["pending", "processing", "cancelled"]);
    let by_admin: Value = expect_json(cancel(&shop, &admin, &other).await, StatusCode::OK).await;
    assert_eq!(by_admin["status"], "cancelled");
    assert_eq!(shop.stock_of(mug).await, 10);
}

#[tokio::test]
async fn order_cancel_refuses_malformed_and_unknown_ids() {
    let shop = TestShop::start().await;
    let (_, token) = shop.new_user().await;
    expect_refusal(
        cancel(&shop, &token, &json!({"id": Uuid::new_v4()})).await,
        StatusCode::NOT_FOUND,
        "not-found",
        "does not exist",
    )
    .await;
    expect_refusal(
        shop.call(
            Method::PUT,
            "/order-api/orders/abc/cancel",
            Some(&token),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad-request",
        "invalid path parameter",
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

#[tokio::test]
async fn order_status_of_a_wrong_json_type_is_unprocessable() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let order = new_order(&shop, &token, &[(mug, 1)]).await;
    let path = format!("/order-api/orders/{}/status", id_of(&order));
    for status in [json!(2), json!(null), json!(true), json!(["shipped"])] {
        expect_undecodable(
            shop.call(
                Method::PUT,
                &path,
                Some(&admin),
                Some(json!({ "status": status })),
            )
            .await,
            "status",
        )
        .await;
    }
}
