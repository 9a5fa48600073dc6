//! The user service under `/user-api`: registration, tokens, keys, the caller's account and
//! their view of cart and orders, order events, health, OpenAPI.

mod accounts;
mod events;

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{PASSWORD, SERVICE_SECRET, TestShop, eventually, expect_json};
use crate::{
    Route, assert_healthy, assert_needs_a_token, assert_openapi_documents,
    assert_refuses_bad_json_bodies, assert_serves_metrics,
    assert_unknown_paths_and_methods_are_problems, expect_invalid_fields, expect_refusal,
    expect_undecodable, id_of, keys, new_order, send_raw, service_token,
};

const ROUTES: &[Route] = &[
    ("post", "/users/register"),
    ("post", "/token"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/users/me"),
    ("put", "/users/me"),
    ("get", "/users/me/profile"),
    ("get", "/users/me/orders"),
    ("post", "/users/me/orders"),
    ("get", "/users/me/cart"),
    ("get", "/users/me/total-spent"),
    ("post", "/internal/order-events"),
];

fn registration(username: &str) -> Value {
    json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD})
}

fn unique_username() -> String {
    format!("user-{}", &Uuid::new_v4().simple().to_string()[..12])
}

async fn access_token(response: Response) -> String {
    let token: Value = expect_json(response, StatusCode::OK).await;
    token["access_token"].as_str().unwrap().to_owned()
}

async fn update_me(shop: &TestShop, token: &str, body: Value) -> Response {
    shop.call(Method::PUT, "/user-api/users/me", Some(token), Some(body))
        .await
}

async fn me(shop: &TestShop, token: &str) -> Value {
    expect_json(
        shop.get("/user-api/users/me", Some(token)).await,
        StatusCode::OK,
    )
    .await
}

/// Verifies a token against the published key set, as every service does, and returns its claims.
async fn verified_claims(shop: &TestShop, token: &str) -> Value {
    let jwks: JwkSet = expect_json(
        shop.get("/user-api/.well-known/jwks.json", None).await,
        StatusCode::OK,
    )
    .await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.expect("tokens name their key");
    let jwk = jwks.find(&kid).expect("the token's key is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["shop-user-service"]);
    validation.set_audience(&["shop"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies with the published key")
        .claims
}

#[tokio::test]
async fn me_returns_the_callers_own_account() {
    let shop = TestShop::start().await;
    let (id, token) = shop.new_user().await;
    let user = me(&shop, &token).await;
    assert_eq!(id_of(&user), id);
    assert_eq!(user["role"], "user");
    assert_eq!(
        user["email"],
        format!("{}@example.com", user["username"].as_str().unwrap()).as_str()
    );
    assert_eq!(user["full_name"], Value::Null);

    let admin = shop.admin_token().await;
    let admin_account = me(&shop, &admin).await;
    assert_eq!(admin_account["username"], "admin");
    assert_eq!(admin_account["role"], "admin");
}

#[tokio::test]
async fn me_update_changes_email_and_password() {
    let shop = TestShop::start().await;
    let (_, token) = shop.new_user().await;
    let before = me(&shop, &token).await;
    let username = before["username"].as_str().unwrap();
    let new_password = "a brand new passphrase";

    let updated: Value = expect_json(
        update_me(
            &shop,
            &token,
            json!({"email": "new@example.org", "password": new_password, "current_password": PASSWORD}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["email"], "new@example.org");
    for field in ["id", "username", "full_name", "role", "created_at"] {
        assert_eq!(updated[field], before[field], "{field} is kept");
    }
    assert_eq!(me(&shop, &token).await, updated);

    expect_refusal(
        shop.token(username, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "wrong username or password",
    )
    .await;
    let fresh = access_token(shop.token(username, new_password).await).await;
    assert_eq!(me(&shop, &fresh).await, updated);
}

#[tokio::test]
async fn me_update_keeps_the_fields_it_is_not_given() {
    let shop = TestShop::start().await;
    let (_, token) = shop.new_user().await;
    let before = me(&shop, &token).await;
    let updated: Value = expect_json(
        update_me(&shop, &token, json!({"full_name": "Ada Lovelace"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["full_name"], "Ada Lovelace");
    assert_eq!(updated["email"], before["email"]);
    let unchanged: Value =
        expect_json(update_me(&shop, &token, json!({})).await, StatusCode::OK).await;
    assert_eq!(unchanged, updated);
    access_token(
        shop.token(before["username"].as_str().unwrap(), PASSWORD)
            .await,
    )
    .await;
}

#[tokio::test]
async fn me_update_refuses_invalid_fields_and_changes_to_username_or_role() {
    let shop = TestShop::start().await;
    let (_, token) = shop.new_user().await;
    let before = me(&shop, &token).await;
    for (field, value) in [
        ("email", json!("not-an-email")),
        ("email", json!("")),
        ("email", json!(format!("{}@example.com", "e".repeat(243)))),
        ("password", json!("short")),
        ("password", json!("p".repeat(73))),
        ("full_name", json!("f".repeat(101))),
    ] {
        expect_invalid_fields(
            update_me(
                &shop,
                &token,
                json!({ field: value, "current_password": PASSWORD }),
            )
            .await,
            &[field],
        )
        .await;
    }
    for (body, detail) in [
        (json!({"role": "admin"}), "unknown field `role`"),
        (json!({"username": "admin"}), "unknown field `username`"),
        (json!({"id": Uuid::new_v4()}), "unknown field `id`"),
        (json!({"email": 5}), "invalid type"),
        (json!("email"), "invalid type"),
    ] {
        expect_undecodable(update_me(&shop, &token, body).await, detail).await;
    }
    assert_refuses_bad_json_bodies(&shop, Method::PUT, "/user-api/users/me", Some(&token)).await;
    assert_eq!(me(&shop, &token).await, before);
    access_token(
        shop.token(before["username"].as_str().unwrap(), PASSWORD)
            .await,
    )
    .await;
}

#[tokio::test]
async fn account_endpoints_need_a_token() {
    let shop = TestShop::start().await;
    for (method, path, body) in [
        (Method::GET, "/user-api/users/me", None),
        (
            Method::PUT,
            "/user-api/users/me",
            Some(json!({"full_name": "X"})),
        ),
        (Method::GET, "/user-api/users/me/profile", None),
        (Method::GET, "/user-api/users/me/orders", None),
        (Method::POST, "/user-api/users/me/orders", None),
        (Method::GET, "/user-api/users/me/cart", None),
        (Method::GET, "/user-api/users/me/total-spent", None),
        (
            Method::POST,
            "/user-api/internal/order-events",
            Some(json!({})),
        ),
    ] {
        assert_needs_a_token(&shop, method, path, body).await;
    }
}

#[tokio::test]
async fn profile_gathers_account_cart_orders_spending_and_order_news() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (id, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let lamp = shop.new_product(&admin, 4999, 10).await;
    let order = new_order(&shop, &token, &[(mug, 2)]).await;
    expect_json::<Value>(shop.add_to_cart(&token, lamp, 1).await, StatusCode::CREATED).await;

    let profile = || async {
        expect_json::<Value>(
            shop.get("/user-api/users/me/profile", Some(&token)).await,
            StatusCode::OK,
        )
        .await
    };
    eventually(Duration::from_secs(5), || async {
        profile().await["recent_order_events"] != json!([])
    })
    .await;
    let profile = profile().await;
    assert_eq!(
        keys(&profile),
        [
            "cart",
            "orders",
            "recent_order_events",
            "total_spent_cents",
            "user"
        ]
    );
    assert_eq!(profile["user"], me(&shop, &token).await);
    assert_eq!(profile["cart"]["user_id"], id.to_string());
    assert_eq!(profile["cart"]["total_cents"], 4999);
    assert_eq!(profile["orders"], json!([order]));
    assert_eq!(profile["total_spent_cents"], 2500);
    let event = &profile["recent_order_events"][0];
    assert_eq!(event["order_id"], order["id"]);
    assert_eq!(event["user_id"], id.to_string());
    assert_eq!(event["status"], "pending");
    assert_eq!(event["total_cents"], 2500);
}

#[tokio::test]
async fn my_orders_lists_the_callers_orders_newest_first() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let (_, other) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let empty: Value = expect_json(
        shop.get("/user-api/users/me/orders", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(empty, json!([]));

    let first = new_order(&shop, &token, &[(mug, 1)]).await;
    let second = new_order(&shop, &token, &[(mug, 2)]).await;
    new_order(&shop, &other, &[(mug, 3)]).await;
    let listed: Value = expect_json(
        shop.get("/user-api/users/me/orders", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed, json!([second, first]));
}

#[tokio::test]
async fn my_orders_post_checks_out_the_cart() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (id, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;

    let response = shop
        .call(
            Method::POST,
            "/user-api/users/me/orders",
            Some(&token),
            None,
        )
        .await;
    expect_refusal(
        response,
        StatusCode::CONFLICT,
        "conflict",
        "the cart is empty",
    )
    .await;

    expect_json::<Value>(shop.add_to_cart(&token, mug, 3).await, StatusCode::CREATED).await;
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
    assert_eq!(order["user_id"], id.to_string());
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total_cents"], 3750);
    assert_eq!(order["items"][0]["product_id"], mug.to_string());
    assert_eq!(order["items"][0]["quantity"], 3);
    assert_eq!(shop.stock_of(mug).await, 7);
    let cart: Value = expect_json(
        shop.get("/user-api/users/me/cart", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cart["items"], json!([]));
}

#[tokio::test]
async fn my_cart_is_the_cart_the_cart_service_holds() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (id, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let empty: Value = expect_json(
        shop.get("/user-api/users/me/cart", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        empty,
        json!({"user_id": id, "items": [], "total_cents": 0, "item_count": 0, "version": 0})
    );
    let added: Value =
        expect_json(shop.add_to_cart(&token, mug, 2).await, StatusCode::CREATED).await;
    let relayed: Value = expect_json(
        shop.get("/user-api/users/me/cart", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(relayed, added);
}

#[tokio::test]
async fn total_spent_leaves_out_cancelled_orders() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (id, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let nothing: Value = expect_json(
        shop.get("/user-api/users/me/total-spent", Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        nothing,
        json!({"user_id": id, "order_count": 0, "total_spent_cents": 0})
    );

    new_order(&shop, &token, &[(mug, 2)]).await;
    let cancelled = new_order(&shop, &token, &[(mug, 3)]).await;
    new_order(&shop, &token, &[(mug, 1)]).await;
    let path = format!(
        "/order-api/orders/{}/cancel",
        cancelled["id"].as_str().unwrap()
    );
    expect_json::<Value>(
        shop.call(Method::PUT, &path, Some(&token), None).await,
        StatusCode::OK,
    )
    .await;
    let total: Value = expect_json(
        shop.get("/user-api/users/me/total-spent", Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        total,
        json!({"user_id": id, "order_count": 2, "total_spent_cents": 3750})
    );
}

#[tokio::test]
async fn user_service_health_endpoints_report_store_and_dependencies() {
    let shop = TestShop::start().await;
    assert_healthy(
        &shop,
        "/user-api",
        &["admin_account", "cart-service", "order-service", "store"],
    )
    .await;
}

#[tokio::test]
async fn user_service_answers_unknown_paths_and_methods_with_problems() {
    let shop = TestShop::start().await;
    for (method, path, allowed) in [
        (Method::DELETE, "/user-api/users/me", "GET,HEAD,PUT"),
        (Method::GET, "/user-api/token", "POST"),
    ] {
        assert_unknown_paths_and_methods_are_problems(&shop, "/user-api", method, path, allowed)
            .await;
    }
}

#[tokio::test]
async fn user_service_serves_its_metrics() {
    let shop = TestShop::start().await;
    assert_serves_metrics(
        &shop,
        "/user-api",
        "user-service",
        "/user-api/.well-known/jwks.json",
    )
    .await;
}

#[tokio::test]
async fn user_service_openapi_documents_every_route() {
    let shop = TestShop::start().await;
    assert_openapi_documents(&shop, "/user-api", ROUTES).await;
}
