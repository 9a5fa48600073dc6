//! The user service under `/user-api`: registration, tokens, keys, the caller's account and
//! their view of cart and orders, order events, health, OpenAPI.

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

async fn register(shop: &TestShop, body: Value) -> Response {
    shop.call(Method::POST, "/user-api/users/register", None, Some(body))
        .await
}

fn registration(username: &str) -> Value {
    json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD})
}

fn unique_username() -> String {
    format!("user-{}", &Uuid::new_v4().simple().to_string()[..12])
}

async fn token_form(shop: &TestShop, form: &[(&str, &str)]) -> Response {
    shop.http
        .post(shop.url("/user-api/token"))
        .form(form)
        .send()
        .await
        .unwrap()
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
async fn register_creates_a_user_with_a_lower_case_username_and_the_user_role() {
    let shop = TestShop::start().await;
    let username = format!("Alice_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let user: Value = expect_json(
        register(
            &shop,
            json!({"username": username, "email": "alice@example.com",
                "full_name": "Alice Liddell", "password": PASSWORD}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        keys(&user),
        ["created_at", "email", "full_name", "id", "role", "username"],
        "never a password or its hash"
    );
    assert_eq!(user["username"], username.to_lowercase());
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["full_name"], "Alice Liddell");
    assert_eq!(user["role"], "user");

    let token = access_token(shop.token(&username, PASSWORD).await).await;
    assert_eq!(me(&shop, &token).await, user);
}

#[tokio::test]
async fn register_accepts_the_boundaries_of_each_field() {
    let shop = TestShop::start().await;
    let long_username = format!(
        "{}{}",
        &Uuid::new_v4().simple().to_string()[..8],
        "u".repeat(42)
    );
    let short_username = Uuid::new_v4().simple().to_string()[..3].to_owned();
    for (username, password, full_name) in [
        (
            long_username.as_str(),
            "p".repeat(72),
            Some("f".repeat(100)),
        ),
        (short_username.as_str(), "ü".repeat(8), None),
    ] {
        let user: Value = expect_json(
            register(
                &shop,
                json!({"username": username, "email": format!("{username}@x"),
                    "password": password, "full_name": full_name}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(user["full_name"], json!(full_name));
        access_token(shop.token(username, &password).await).await;
    }
}

#[tokio::test]
async fn register_refuses_a_taken_username_whatever_its_case() {
    let shop = TestShop::start().await;
    let bob = format!("Bob-{}", &Uuid::new_v4().simple().to_string()[..8]);
    expect_json::<Value>(
        register(&shop, registration(&bob)).await,
        StatusCode::CREATED,
    )
    .await;
    for taken in [bob.to_lowercase(), bob.to_uppercase(), "ADMIN".to_owned()] {
        expect_refusal(
            register(&shop, registration(&taken)).await,
            StatusCode::CONFLICT,
            "conflict",
            &format!("the username {} is taken", taken.to_lowercase()),
        )
        .await;
    }
    // The first account keeps its password.
    access_token(shop.token(&bob, PASSWORD).await).await;
}

#[tokio::test]
async fn register_refuses_invalid_fields() {
    let shop = TestShop::start().await;
    let cases = [
        ("username", json!("ab")),
        ("username", json!("a".repeat(51))),
        ("username", json!("alice smith")),
        ("username", json!("ålice")),
        ("username", json!("alice/../admin")),
        ("email", json!("alice.example.com")),
        ("email", json!("a@b@c")),
        ("email", json!("@example.com")),
        ("email", json!("alice@")),
        ("email", json!("al ice@example.com")),
        ("email", json!(format!("{}@example.com", "e".repeat(243)))),
        ("password", json!("short")),
        ("password", json!("p".repeat(73))),
        ("password", json!("é".repeat(37))),
        ("full_name", json!("f".repeat(101))),
    ];
    for (field, value) in cases {
        let mut body = registration(&unique_username());
        body[field] = value;
        expect_invalid_fields(register(&shop, body).await, &[field]).await;
    }
    expect_invalid_fields(
        register(
            &shop,
            json!({"username": "x", "email": "y", "password": "z"}),
        )
        .await,
        &["username", "email", "password"],
    )
    .await;
}

#[tokio::test]
async fn register_refuses_missing_fields_wrong_types_and_unknown_fields() {
    let shop = TestShop::start().await;
    let username = unique_username();
    let cases = [
        (
            json!({"username": username, "email": "a@b"}),
            "missing field `password`",
        ),
        (
            json!({"email": "a@b", "password": PASSWORD}),
            "missing field `username`",
        ),
        (
            json!({"username": username, "password": PASSWORD}),
            "missing field `email`",
        ),
        (
            json!({"username": 42, "email": "a@b", "password": PASSWORD}),
            "invalid type",
        ),
        (
            json!({"username": username, "email": "a@b", "password": null}),
            "invalid type",
        ),
        (
            json!({"username": username, "email": "a@b", "password": PASSWORD, "role": "admin"}),
            "unknown field `role`",
        ),
    ];
    for (body, detail) in cases {
        expect_undecodable(register(&shop, body).await, detail).await;
    }
    expect_refusal(
        shop.token(&username, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "wrong username or password",
    )
    .await;
    assert_refuses_bad_json_bodies(&shop, Method::POST, "/user-api/users/register", None).await;
}

#[tokio::test]
async fn token_password_grant_issues_a_verifiable_bearer_token() {
    let shop = TestShop::start().await;
    let username = unique_username();
    let user: Value = expect_json(
        register(&shop, registration(&username)).await,
        StatusCode::CREATED,
    )
    .await;
    let token: Value = expect_json(
        token_form(
            &shop,
            &[
                ("grant_type", "password"),
                ("username", &username.to_uppercase()),
                ("password", PASSWORD),
                ("scope", "ignored"),
            ],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(keys(&token), ["access_token", "expires_in", "token_type"]);
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], 3600);
    let claims = verified_claims(&shop, token["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["name"], username.as_str());
    assert_eq!(claims["role"], "user");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    let admin = shop.admin_token().await;
    assert_eq!(verified_claims(&shop, &admin).await["role"], "admin");
}

#[tokio::test]
async fn token_refuses_a_wrong_password_and_an_unknown_user_alike() {
    let shop = TestShop::start().await;
    let username = unique_username();
    expect_json::<Value>(
        register(&shop, registration(&username)).await,
        StatusCode::CREATED,
    )
    .await;
    for (username, password) in [
        (username.as_str(), "not the password"),
        (username.as_str(), ""),
        ("nobody-at-all", PASSWORD),
        ("admin", PASSWORD),
    ] {
        expect_refusal(
            shop.token(username, password).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong username or password",
        )
        .await;
    }
}

#[tokio::test]
async fn token_refuses_incomplete_forms_and_unsupported_grants() {
    let shop = TestShop::start().await;
    for form in [
        &[][..],
        &[("username", "admin")][..],
        &[("grant_type", "password"), ("password", PASSWORD)][..],
    ] {
        expect_refusal(
            token_form(&shop, form).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "needs username and password",
        )
        .await;
    }
    for form in [
        &[("grant_type", "client_credentials")][..],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "order-service"),
        ][..],
    ] {
        expect_refusal(
            token_form(&shop, form).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "needs client_id and client_secret",
        )
        .await;
    }
    for grant in ["authorization_code", "implicit", "refresh_token", ""] {
        expect_refusal(
            token_form(&shop, &[("grant_type", grant), ("username", "admin")]).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "unsupported grant_type",
        )
        .await;
    }
}

#[tokio::test]
async fn token_needs_a_form_body_within_the_size_limit() {
    let shop = TestShop::start().await;
    let as_json = shop
        .call(
            Method::POST,
            "/user-api/token",
            None,
            Some(json!({"username": "admin", "password": "x"})),
        )
        .await;
    expect_refusal(
        as_json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "application/x-www-form-urlencoded",
    )
    .await;
    let untyped = send_raw(
        &shop,
        Method::POST,
        "/user-api/token",
        None,
        None,
        "username=admin",
    )
    .await;
    expect_refusal(
        untyped,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "application/x-www-form-urlencoded",
    )
    .await;
    let oversized = format!(
        "username=admin&password={}",
        "x".repeat(crate::OVER_BODY_LIMIT)
    );
    let response = send_raw(
        &shop,
        Method::POST,
        "/user-api/token",
        None,
        Some("application/x-www-form-urlencoded"),
        oversized,
    )
    .await;
    expect_refusal(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "larger",
    )
    .await;
}

#[tokio::test]
async fn client_credentials_need_a_known_service_and_the_right_secret() {
    let shop = TestShop::start().await;
    let padded = format!("{SERVICE_SECRET} ");
    for (client_id, secret) in [
        ("order-service", "wrong-secret"),
        ("order-service", ""),
        ("order-service", "dev-service-secret"),
        ("order-service", padded.as_str()),
        ("mallory", SERVICE_SECRET),
        ("admin", SERVICE_SECRET),
    ] {
        let response = token_form(
            &shop,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ],
        )
        .await;
        expect_refusal(
            response,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown client or wrong secret",
        )
        .await;
    }
}

#[tokio::test]
async fn service_tokens_cannot_act_as_a_user() {
    let shop = TestShop::start().await;
    let token = service_token(&shop, "order-service").await;
    let claims = verified_claims(&shop, &token).await;
    assert_eq!(claims["sub"], "order-service");
    assert_eq!(claims["role"], "service");
    for (method, path, body) in [
        (Method::GET, "/user-api/users/me", None),
        (
            Method::PUT,
            "/user-api/users/me",
            Some(json!({"full_name": "Robot"})),
        ),
        (Method::GET, "/user-api/users/me/profile", None),
        (Method::GET, "/user-api/users/me/orders", None),
        (Method::POST, "/user-api/users/me/orders", None),
        (Method::GET, "/user-api/users/me/cart", None),
        (Method::GET, "/user-api/users/me/total-spent", None),
    ] {
        let response = shop.call(method, path, Some(&token), body).await;
        expect_refusal(
            response,
            StatusCode::FORBIDDEN,
            "forbidden",
            "service tokens cannot act as a user",
        )
        .await;
    }
}

#[tokio::test]
async fn jwks_publishes_one_ed25519_key_named_by_the_tokens() {
    let shop = TestShop::start().await;
    let jwks: Value = expect_json(
        shop.get("/user-api/.well-known/jwks.json", None).await,
        StatusCode::OK,
    )
    .await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(
        key["x"].as_str().unwrap().len(),
        43,
        "32 bytes in unpadded base64url"
    );
    assert!(key.get("d").is_none(), "never the private key");
    let kid = key["kid"].as_str().unwrap();
    assert!(!kid.is_empty());
    let admin = shop.admin_token().await;
    assert_eq!(
        jsonwebtoken::decode_header(&admin).unwrap().kid.as_deref(),
        Some(kid)
    );
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

fn order_event(user: Uuid, status: &str) -> Value {
    json!({"order_id": Uuid::new_v4(), "user_id": user, "status": status,
        "total_cents": 1234, "occurred_at": "2030-01-02T03:04:05Z"})
}

async fn post_event(shop: &TestShop, token: &str, body: Value) -> Response {
    shop.call(
        Method::POST,
        "/user-api/internal/order-events",
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn order_events_from_the_order_service_reach_the_profile() {
    let shop = TestShop::start().await;
    let (id, token) = shop.new_user().await;
    let order_service = service_token(&shop, "order-service").await;
    let shipped = order_event(id, "shipped");
    let delivered = order_event(id, "delivered");
    for event in [&shipped, &delivered] {
        let response = post_event(&shop, &order_service, event.clone()).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.text().await.unwrap().is_empty());
    }
    let profile: Value = expect_json(
        shop.get("/user-api/users/me/profile", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        profile["recent_order_events"],
        json!([delivered, shipped]),
        "newest first"
    );
}

#[tokio::test]
async fn order_events_are_refused_from_anyone_but_the_order_service() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (id, token) = shop.new_user().await;
    let cart_service = service_token(&shop, "cart-service").await;
    let event = order_event(id, "shipped");
    expect_refusal(
        post_event(&shop, &cart_service, event.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "only the order service",
    )
    .await;
    for user in [&token, &admin] {
        expect_refusal(
            post_event(&shop, user, event.clone()).await,
            StatusCode::FORBIDDEN,
            "forbidden",
            "internal to the shop's services",
        )
        .await;
    }
    let profile: Value = expect_json(
        shop.get("/user-api/users/me/profile", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(profile["recent_order_events"], json!([]));
}

#[tokio::test]
async fn order_events_refuse_invalid_bodies() {
    let shop = TestShop::start().await;
    let order_service = service_token(&shop, "order-service").await;
    let user = Uuid::new_v4();
    let mut unknown_status = order_event(user, "shipped");
    unknown_status["status"] = json!("lost");
    let mut extra = order_event(user, "shipped");
    extra["note"] = json!("x");
    let mut bad_id = order_event(user, "shipped");
    bad_id["order_id"] = json!("order-1");
    let mut missing = order_event(user, "shipped");
    missing.as_object_mut().unwrap().remove("total_cents");
    for (body, detail) in [
        (unknown_status, "unknown variant `lost`"),
        (extra, "unknown field `note`"),
        (bad_id, "order_id"),
        (missing, "missing field `total_cents`"),
    ] {
        expect_undecodable(post_event(&shop, &order_service, body).await, detail).await;
    }
    assert_refuses_bad_json_bodies(
        &shop,
        Method::POST,
        "/user-api/internal/order-events",
        Some(&order_service),
    )
    .await;
}

#[tokio::test]
async fn user_service_health_endpoints_report_store_and_dependencies() {
    let shop = TestShop::start().await;
    assert_healthy(
        &shop,
        "/user-api",
        &["cart-service", "order-service", "store"],
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

#[tokio::test]
async fn order_event_with_a_status_of_the_wrong_json_type_is_unprocessable() {
    let shop = TestShop::start().await;
    let order_service = service_token(&shop, "order-service").await;
    let mut event = order_event(Uuid::new_v4(), "shipped");
    event["status"] = json!(3);
    expect_undecodable(post_event(&shop, &order_service, event).await, "status").await;
}
