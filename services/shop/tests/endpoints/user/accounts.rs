//! Accounts and tokens: registration, the password and client-credentials grants, the key set.

use super::*;

async fn register(shop: &TestShop, body: Value) -> Response {
    shop.call(Method::POST, "/user-api/users/register", None, Some(body))
        .await
}

async fn token_form(shop: &TestShop, form: &[(&str, &str)]) -> Response {
    shop.http
        .post(shop.url("/user-api/token"))
        .form(form)
        .send()
        .await
        .unwrap()
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
