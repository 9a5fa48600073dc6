//! Identity comes only from a verified token; users see only their own things; admin-only
//! and internal endpoints refuse everyone else.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shop_common::auth::{AUDIENCE, Claims, ISSUER, Role, TokenSigner};
use uuid::Uuid;

use crate::support::{Options, SERVICE_SECRET, TestShop, expect_json, expect_problem};

/// The test shop's signing key, so tests can mint tokens with chosen claims.
const TEST_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGs0s5g3SkAiHh9OoxUKJ559/5u5d1VRXzjp8xT1qt8l
-----END PRIVATE KEY-----
";

async fn shop_with_known_key() -> TestShop {
    TestShop::start_with(Options {
        signing_key_pem: Some(TEST_SIGNING_KEY),
        ..Options::default()
    })
    .await
}

async fn key_id(shop: &TestShop) -> String {
    let jwks: Value = expect_json(
        shop.get("/user-api/.well-known/jwks.json", None).await,
        StatusCode::OK,
    )
    .await;
    jwks["keys"][0]["kid"].as_str().unwrap().to_owned()
}

fn claims(subject: Uuid, role: Role) -> Claims {
    let now = jsonwebtoken::get_current_timestamp();
    Claims {
        sub: subject.to_string(),
        name: "mallory".into(),
        role,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now,
        exp: now + 600,
        jti: Uuid::new_v4().to_string(),
    }
}

fn sign_with_test_key(kid: &str, claims: &Claims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ed_pem(TEST_SIGNING_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Every kind of bad token is refused by every service, with 401.
#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_refused_everywhere() {
    let shop = shop_with_known_key().await;
    let kid = key_id(&shop).await;
    let (user_id, genuine) = shop.new_user().await;

    let mut expired = claims(user_id, Role::User);
    expired.iat -= 7200;
    expired.exp -= 7200;
    let mut wrong_audience = claims(user_id, Role::User);
    wrong_audience.aud = "another-shop".into();
    let mut wrong_issuer = claims(user_id, Role::User);
    wrong_issuer.iss = "someone-else".into();
    let other_key = TokenSigner::generate(Duration::from_secs(600))
        .unwrap()
        .sign(&user_id.to_string(), "mallory", Role::Admin)
        .unwrap();
    let payload = genuine.split('.').nth(1).unwrap();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let tampered = {
        let mut parts: Vec<&str> = genuine.split('.').collect();
        let admin_payload = sign_with_test_key(&kid, &claims(user_id, Role::Admin));
        parts[1] = admin_payload.split('.').nth(1).unwrap();
        parts.join(".")
    };
    let bad_tokens = [
        ("expired", sign_with_test_key(&kid, &expired)),
        ("wrong audience", sign_with_test_key(&kid, &wrong_audience)),
        ("wrong issuer", sign_with_test_key(&kid, &wrong_issuer)),
        ("signed by another key", other_key),
        ("alg none", alg_none),
        ("payload swapped", tampered),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in &bad_tokens {
        for path in [
            "/user-api/users/me",
            "/cart-api/cart/",
            "/order-api/orders/",
        ] {
            let response = shop.get(path, Some(token)).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{what} token on {path}"
            );
            expect_problem(response, StatusCode::UNAUTHORIZED).await;
        }
    }
    // The same claims, properly signed, are accepted: the refusals above are about the token.
    let good = sign_with_test_key(&kid, &claims(user_id, Role::User));
    assert_eq!(
        shop.get("/cart-api/cart/", Some(&good)).await.status(),
        StatusCode::OK
    );
    shop.stop().await;
}

#[tokio::test]
async fn a_spoofed_identity_header_changes_nothing() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 100, 5).await;
    let (alice, alice_token) = shop.new_user().await;
    let (_, bob_token) = shop.new_user().await;
    expect_json::<Value>(
        shop.add_to_cart(&alice_token, product, 2).await,
        StatusCode::CREATED,
    )
    .await;

    for header in ["x-user-id", "x-forwarded-user", "x-user-role"] {
        let value = if header == "x-user-role" {
            "admin".to_owned()
        } else {
            alice.to_string()
        };
        let as_bob = shop
            .http
            .get(shop.url("/cart-api/cart/"))
            .bearer_auth(&bob_token)
            .header(header, &value)
            .send()
            .await
            .unwrap();
        let cart: Value = expect_json(as_bob, StatusCode::OK).await;
        assert_eq!(
            cart["items"],
            json!([]),
            "{header} did not make Bob see Alice's cart"
        );
        let anonymous = shop
            .http
            .get(shop.url("/cart-api/cart/"))
            .header(header, &value)
            .send()
            .await
            .unwrap();
        expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
    }
    let as_admin_by_header = shop
        .http
        .get(shop.url("/cart-api/carts/"))
        .bearer_auth(&bob_token)
        .header("x-user-role", "admin")
        .send()
        .await
        .unwrap();
    expect_problem(as_admin_by_header, StatusCode::FORBIDDEN).await;
    shop.stop().await;
}

#[tokio::test]
async fn users_never_see_or_change_each_others_carts_and_orders() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 300, 10).await;
    let (_, alice) = shop.new_user().await;
    let (_, bob) = shop.new_user().await;
    let cart: Value = expect_json(
        shop.add_to_cart(&alice, product, 1).await,
        StatusCode::CREATED,
    )
    .await;
    let alice_line = cart["items"][0]["id"].as_str().unwrap().to_owned();

    let line = format!("/cart-api/cart/items/{alice_line}");
    expect_problem(
        shop.call(Method::PUT, &line, Some(&bob), Some(json!({"quantity": 5})))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        shop.call(Method::DELETE, &line, Some(&bob), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    expect_json::<Value>(
        shop.add_to_cart(&alice, product, 1).await,
        StatusCode::CREATED,
    )
    .await;
    let order: Value = expect_json(
        shop.call(Method::POST, "/cart-api/cart/checkout", Some(&alice), None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let order_id = order["id"].as_str().unwrap();
    let order_path = format!("/order-api/orders/{order_id}");
    expect_problem(
        shop.get(&order_path, Some(&bob)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        shop.call(
            Method::PUT,
            &format!("{order_path}/cancel"),
            Some(&bob),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let bobs: Vec<Value> = expect_json(
        shop.get("/order-api/orders/", Some(&bob)).await,
        StatusCode::OK,
    )
    .await;
    assert!(bobs.is_empty());
    let bobs_via_user_service: Vec<Value> = expect_json(
        shop.get("/user-api/users/me/orders", Some(&bob)).await,
        StatusCode::OK,
    )
    .await;
    assert!(bobs_via_user_service.is_empty());
    expect_problem(
        shop.get("/order-api/orders/?scope=all", Some(&bob)).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Alice's order is untouched by Bob's attempts.
    let still: Value = expect_json(shop.get(&order_path, Some(&alice)).await, StatusCode::OK).await;
    assert_eq!(still["status"], "pending");
    shop.stop().await;
}

#[tokio::test]
async fn admin_endpoints_refuse_users() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let product = shop.new_product(&admin, 300, 10).await;
    let (_, user) = shop.new_user().await;
    expect_json::<Value>(
        shop.add_to_cart(&user, product, 1).await,
        StatusCode::CREATED,
    )
    .await;
    let order: Value = expect_json(
        shop.call(Method::POST, "/cart-api/cart/checkout", Some(&user), None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let product_path = format!("/api/products/{product}");
    let status_path = format!("/order-api/orders/{}/status", order["id"].as_str().unwrap());

    let attempts = [
        (
            Method::POST,
            "/api/products/".to_owned(),
            Some(json!({"name": "x", "price_cents": 1, "stock": 1})),
        ),
        (
            Method::PUT,
            product_path.clone(),
            Some(json!({"stock": 1_000_000})),
        ),
        (Method::DELETE, product_path.clone(), None),
        (Method::GET, "/cart-api/carts/".to_owned(), None),
        (
            Method::PUT,
            status_path.clone(),
            Some(json!({"status": "delivered"})),
        ),
    ];
    for (method, path, body) in attempts {
        let response = shop.call(method.clone(), &path, Some(&user), body).await;
        expect_problem(response, StatusCode::FORBIDDEN).await;
    }
    assert_eq!(shop.stock_of(product).await, 9, "nothing changed");
    let unchanged: Value = expect_json(
        shop.get(
            &format!("/order-api/orders/{}", order["id"].as_str().unwrap()),
            Some(&user),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(unchanged["status"], "pending");

    // And the same calls work for the admin.
    let moved: Value = expect_json(
        shop.call(
            Method::PUT,
            &status_path,
            Some(&admin),
            Some(json!({"status": "shipped"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["status"], "shipped");
    shop.stop().await;
}

#[tokio::test]
async fn internal_endpoints_refuse_users_admins_and_the_wrong_service() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (user_id, user) = shop.new_user().await;
    let product = shop.new_product(&admin, 100, 10).await;
    let event = json!({
        "order_id": Uuid::new_v4(), "user_id": user_id, "status": "delivered",
        "total_cents": 1, "occurred_at": "2026-01-01T00:00:00Z"
    });
    let reservation = format!("/api/internal/reservations/{}", Uuid::new_v4());
    let stock_request = json!({"items": [{"product_id": product, "quantity": 10}]});
    for token in [&user, &admin] {
        expect_problem(
            shop.call(
                Method::POST,
                "/user-api/internal/order-events",
                Some(token),
                Some(event.clone()),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        expect_problem(
            shop.call(
                Method::PUT,
                &reservation,
                Some(token),
                Some(stock_request.clone()),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        expect_problem(
            shop.call(Method::DELETE, &reservation, Some(token), None)
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    assert_eq!(shop.stock_of(product).await, 10, "no stock was taken");

    // A genuine service token, but not the order service's: order events are still refused.
    let backend_token: Value = expect_json(
        shop.http
            .post(shop.url("/user-api/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "backend"),
                ("client_secret", SERVICE_SECRET),
            ])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let backend_token = backend_token["access_token"].as_str().unwrap();
    expect_problem(
        shop.call(
            Method::POST,
            "/user-api/internal/order-events",
            Some(backend_token),
            Some(event),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let profile: Value = expect_json(
        shop.get("/user-api/users/me/profile", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        profile["recent_order_events"],
        json!([]),
        "no event was recorded"
    );
    shop.stop().await;
}
