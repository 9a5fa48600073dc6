//! The cart service under `/cart-api`: the caller's cart, its lines, totals and checkout, the
//! admins' list of carts, health, OpenAPI.

mod kept_products;
mod lines;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestShop, expect_json};
use crate::{
    Route, assert_admin_only, assert_healthy, assert_needs_a_token, assert_openapi_documents,
    assert_refuses_bad_json_bodies, assert_serves_metrics,
    assert_unknown_paths_and_methods_are_problems, expect_invalid_fields, expect_refusal,
    expect_undecodable, id_of, keys,
};

const ROUTES: &[Route] = &[
    ("get", "/cart/"),
    ("delete", "/cart/"),
    ("post", "/cart/items"),
    ("put", "/cart/items/{item_id}"),
    ("delete", "/cart/items/{item_id}"),
    ("get", "/cart/total"),
    ("post", "/cart/checkout"),
    ("get", "/carts/"),
];

async fn cart(shop: &TestShop, token: &str) -> Value {
    expect_json(
        shop.get("/cart-api/cart/", Some(token)).await,
        StatusCode::OK,
    )
    .await
}

async fn added(shop: &TestShop, token: &str, product: Uuid, quantity: i64) -> Value {
    expect_json(
        shop.add_to_cart(token, product, quantity).await,
        StatusCode::CREATED,
    )
    .await
}

async fn post_item(shop: &TestShop, token: &str, body: Value) -> Response {
    shop.call(
        Method::POST,
        "/cart-api/cart/items",
        Some(token),
        Some(body),
    )
    .await
}

async fn set_quantity(shop: &TestShop, token: &str, item: &str, quantity: Value) -> Response {
    shop.call(
        Method::PUT,
        &format!("/cart-api/cart/items/{item}"),
        Some(token),
        Some(json!({ "quantity": quantity })),
    )
    .await
}

async fn remove(shop: &TestShop, token: &str, item: &str) -> Response {
    shop.call(
        Method::DELETE,
        &format!("/cart-api/cart/items/{item}"),
        Some(token),
        None,
    )
    .await
}

async fn checkout(shop: &TestShop, token: &str) -> Response {
    shop.call(Method::POST, "/cart-api/cart/checkout", Some(token), None)
        .await
}

/// The cart's line for a product.
async fn delete_product(shop: &TestShop, admin: &str, product: Uuid) {
    let deleted = shop
        .call(
            Method::DELETE,
            &format!("/api/products/{product}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

fn line(cart: &Value, product: Uuid) -> &Value {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["product_id"] == product.to_string())
        .unwrap_or_else(|| panic!("no line for {product} in {cart}"))
}

fn line_id(cart: &Value, product: Uuid) -> String {
    line(cart, product)["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn cart_of_a_new_user_is_empty() {
    let shop = TestShop::start().await;
    let (id, token) = shop.new_user().await;
    assert_eq!(
        cart(&shop, &token).await,
        json!({"user_id": id, "items": [], "total_cents": 0, "item_count": 0, "version": 0})
    );
    let total: Value = expect_json(
        shop.get("/cart-api/cart/total", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(total, json!({"total_cents": 0, "item_count": 0}));
}

#[tokio::test]
async fn cart_delete_empties_the_cart() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (id, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let lamp = shop.new_product(&admin, 4999, 10).await;
    added(&shop, &token, mug, 2).await;
    let full = added(&shop, &token, lamp, 1).await;

    let emptied: Value = expect_json(
        shop.call(Method::DELETE, "/cart-api/cart/", Some(&token), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        emptied,
        json!({"user_id": id, "items": [], "total_cents": 0, "item_count": 0,
            "version": full["version"].as_i64().unwrap() + 1})
    );
    assert_eq!(cart(&shop, &token).await, emptied);
    assert_eq!(shop.stock_of(mug).await, 10);
}

#[tokio::test]
async fn cart_checkout_of_an_empty_cart_is_a_conflict() {
    let shop = TestShop::start().await;
    let (_, token) = shop.new_user().await;
    expect_refusal(
        checkout(&shop, &token).await,
        StatusCode::CONFLICT,
        "conflict",
        "the cart is empty",
    )
    .await;
    let orders: Value = expect_json(
        shop.get("/order-api/orders/", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(orders, json!([]));
}

#[tokio::test]
async fn cart_checkout_creates_an_order_takes_the_stock_and_empties_the_cart() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (id, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let lamp = shop.new_product(&admin, 4999, 3).await;
    added(&shop, &token, mug, 2).await;
    let full = added(&shop, &token, lamp, 3).await;

    let order: Value = expect_json(checkout(&shop, &token).await, StatusCode::CREATED).await;
    assert_eq!(order["user_id"], id.to_string());
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total_cents"], full["total_cents"]);
    assert_eq!(order["total_cents"], 2500 + 14997);
    let items = order["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for product in [mug, lamp] {
        let ordered = items
            .iter()
            .find(|item| item["product_id"] == product.to_string())
            .unwrap();
        let in_cart = line(&full, product);
        for field in ["name", "unit_price_cents", "quantity", "line_total_cents"] {
            assert_eq!(ordered[field], in_cart[field], "{field} of {product}");
        }
    }
    assert_eq!(shop.stock_of(mug).await, 8);
    assert_eq!(shop.stock_of(lamp).await, 0);

    let emptied = cart(&shop, &token).await;
    assert_eq!(emptied["items"], json!([]));
    assert_eq!(emptied["total_cents"], 0);
    let stored: Value = expect_json(
        shop.get(
            &format!("/order-api/orders/{}", id_of(&order)),
            Some(&token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored, order);
    expect_refusal(
        checkout(&shop, &token).await,
        StatusCode::CONFLICT,
        "conflict",
        "the cart is empty",
    )
    .await;
}

#[tokio::test]
async fn cart_checkout_when_the_stock_ran_out_keeps_the_cart() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let before = added(&shop, &token, mug, 4).await;
    shop.call(
        Method::PUT,
        &format!("/api/products/{mug}"),
        Some(&admin),
        Some(json!({"stock": 3})),
    )
    .await;
    expect_refusal(
        checkout(&shop, &token).await,
        StatusCode::CONFLICT,
        "conflict",
        "not enough stock",
    )
    .await;
    assert_eq!(cart(&shop, &token).await, before);
    assert_eq!(shop.stock_of(mug).await, 3);
}

#[tokio::test]
async fn cart_checkout_of_a_deleted_product_is_unprocessable() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let before = added(&shop, &token, mug, 1).await;
    delete_product(&shop, &admin, mug).await;
    expect_refusal(
        checkout(&shop, &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        &format!("product {mug} does not exist"),
    )
    .await;
    assert_eq!(cart(&shop, &token).await, before);
}

#[tokio::test]
async fn carts_list_shows_admins_the_non_empty_carts() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, shopper) = shop.new_user().await;
    let (quitter_id, quitter) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let full = added(&shop, &shopper, mug, 2).await;
    added(&shop, &quitter, mug, 1).await;
    shop.call(Method::DELETE, "/cart-api/cart/", Some(&quitter), None)
        .await;

    let carts: Value = expect_json(
        shop.get("/cart-api/carts/", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        carts,
        json!([full]),
        "the emptied cart of {quitter_id} is left out"
    );
    let limited: Value = expect_json(
        shop.get("/cart-api/carts/?limit=1", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(limited, json!([full]));
}

#[tokio::test]
async fn carts_list_limits_the_number_of_carts() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    for _ in 0..3 {
        let (_, token) = shop.new_user().await;
        added(&shop, &token, mug, 1).await;
    }
    for (limit, expected) in [("1", 1), ("2", 2), ("1000", 3)] {
        let carts: Vec<Value> = expect_json(
            shop.get(&format!("/cart-api/carts/?limit={limit}"), Some(&admin))
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(carts.len(), expected, "limit {limit}");
    }
    for limit in ["0", "-1", "1001"] {
        expect_invalid_fields(
            shop.get(&format!("/cart-api/carts/?limit={limit}"), Some(&admin))
                .await,
            &["limit"],
        )
        .await;
    }
    expect_refusal(
        shop.get("/cart-api/carts/?limit=many", Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "bad-request",
        "invalid query parameter",
    )
    .await;
}

#[tokio::test]
async fn carts_list_is_for_admins_only() {
    let shop = TestShop::start().await;
    assert_needs_a_token(&shop, Method::GET, "/cart-api/carts/", None).await;
    assert_admin_only(&shop, Method::GET, "/cart-api/carts/", None).await;
}

#[tokio::test]
async fn cart_endpoints_need_a_token() {
    let shop = TestShop::start().await;
    let item = format!("/cart-api/cart/items/{}", Uuid::new_v4());
    let add = json!({"product_id": Uuid::new_v4(), "quantity": 1});
    for (method, path, body) in [
        (Method::GET, "/cart-api/cart/", None),
        (Method::DELETE, "/cart-api/cart/", None),
        (Method::POST, "/cart-api/cart/items", Some(add)),
        (Method::PUT, item.as_str(), Some(json!({"quantity": 1}))),
        (Method::DELETE, item.as_str(), None),
        (Method::GET, "/cart-api/cart/total", None),
        (Method::POST, "/cart-api/cart/checkout", None),
    ] {
        assert_needs_a_token(&shop, method, path, body).await;
    }
}

#[tokio::test]
async fn cart_service_health_endpoints_report_store_keys_and_dependencies() {
    let shop = TestShop::start().await;
    assert_healthy(
        &shop,
        "/cart-api",
        &["backend", "order-service", "signing_keys", "store"],
    )
    .await;
}

#[tokio::test]
async fn cart_service_answers_unknown_paths_and_methods_with_problems() {
    let shop = TestShop::start().await;
    for (method, path, allowed) in [
        (Method::PUT, "/cart-api/cart/", "GET,HEAD,DELETE"),
        (Method::GET, "/cart-api/cart/checkout", "POST"),
    ] {
        assert_unknown_paths_and_methods_are_problems(&shop, "/cart-api", method, path, allowed)
            .await;
    }
}

#[tokio::test]
async fn cart_service_serves_its_metrics() {
    let shop = TestShop::start().await;
    assert_serves_metrics(&shop, "/cart-api", "cart-service", "/cart-api/health/live").await;
}

#[tokio::test]
async fn cart_service_openapi_documents_every_route() {
    let shop = TestShop::start().await;
    assert_openapi_documents(&shop, "/cart-api", ROUTES).await;
}
