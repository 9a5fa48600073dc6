//! Stock reservations, the internal endpoints the order service calls.

use super::*;

#[tokio::test]
async fn reservation_takes_stock_once_per_id_and_release_returns_it_once() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let service = service_token(&shop, "order-service").await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let id = Uuid::new_v4();
    let body = json!({"items": [
        {"product_id": mug, "quantity": 2},
        {"product_id": mug, "quantity": 1},
    ]});

    let reservation: Value = expect_json(
        reserve(&shop, &service, id, body.clone()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(id_of(&reservation), id);
    let name = product(&shop, mug).await["name"].clone();
    assert_eq!(
        reservation["items"],
        json!([{"product_id": mug, "name": name, "unit_price_cents": 1250, "quantity": 3}])
    );
    assert_eq!(shop.stock_of(mug).await, 7);

    let again: Value = expect_json(
        reserve(&shop, &service, id, body.clone()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        again, reservation,
        "a repeated reservation is the first one"
    );
    assert_eq!(shop.stock_of(mug).await, 7, "stock is taken once");

    for _ in 0..2 {
        let response = release(&shop, &service, id).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(shop.stock_of(mug).await, 10, "stock is returned once");
    }
    let response = release(&shop, &service, Uuid::new_v4()).await;
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "nothing to release is fine"
    );

    expect_refusal(
        reserve(&shop, &service, id, body).await,
        StatusCode::CONFLICT,
        "conflict",
        "was released",
    )
    .await;
    assert_eq!(shop.stock_of(mug).await, 10);
}

#[tokio::test]
async fn reservation_is_all_or_nothing() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let service = service_token(&shop, "order-service").await;
    let plenty = shop.new_product(&admin, 100, 50).await;
    let scarce = shop.new_product(&admin, 100, 2).await;

    let response = reserve(
        &shop,
        &service,
        Uuid::new_v4(),
        json!({"items": [
            {"product_id": plenty, "quantity": 5},
            {"product_id": scarce, "quantity": 3},
        ]}),
    )
    .await;
    expect_refusal(
        response,
        StatusCode::CONFLICT,
        "conflict",
        &format!("not enough stock for product {scarce}: 2 available"),
    )
    .await;

    let unknown = Uuid::new_v4();
    let response = reserve(
        &shop,
        &service,
        Uuid::new_v4(),
        json!({"items": [
            {"product_id": plenty, "quantity": 5},
            {"product_id": unknown, "quantity": 1},
        ]}),
    )
    .await;
    expect_refusal(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        &format!("product {unknown} does not exist"),
    )
    .await;
    assert_eq!(shop.stock_of(plenty).await, 50);
    assert_eq!(shop.stock_of(scarce).await, 2);
}

#[tokio::test]
async fn reservation_refuses_invalid_lines_and_bodies() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let service = service_token(&shop, "order-service").await;
    let mug = shop.new_product(&admin, 100, 100_000).await;
    let line = |quantity: i64| json!({"product_id": mug, "quantity": quantity});

    let response = reserve(&shop, &service, Uuid::new_v4(), json!({"items": []})).await;
    expect_invalid_fields(response, &["items"]).await;
    let too_many: Vec<Value> = (0..101).map(|_| line(1)).collect();
    let response = reserve(
        &shop,
        &service,
        Uuid::new_v4(),
        json!({ "items": too_many }),
    )
    .await;
    expect_invalid_fields(response, &["items"]).await;
    let response = reserve(
        &shop,
        &service,
        Uuid::new_v4(),
        json!({"items": [line(1), line(0), line(-1), line(10_001)]}),
    )
    .await;
    expect_invalid_fields(
        response,
        &["items.1.quantity", "items.2.quantity", "items.3.quantity"],
    )
    .await;

    for (body, detail) in [
        (json!({}), "missing field `items`"),
        (
            json!({"items": [{"product_id": "mug", "quantity": 1}]}),
            "invalid",
        ),
        (
            json!({"items": [{"product_id": mug}]}),
            "missing field `quantity`",
        ),
        (
            json!({"items": [line(1)], "note": "x"}),
            "unknown field `note`",
        ),
        (
            json!({"items": [{"product_id": mug, "quantity": 1, "price_cents": 0}]}),
            "unknown field `price_cents`",
        ),
    ] {
        expect_undecodable(reserve(&shop, &service, Uuid::new_v4(), body).await, detail).await;
    }
    assert_eq!(shop.stock_of(mug).await, 100_000);

    assert_refuses_bad_json_bodies(
        &shop,
        Method::PUT,
        &format!("/api/internal/reservations/{}", Uuid::new_v4()),
        Some(&service),
    )
    .await;
    for method in [Method::PUT, Method::DELETE] {
        let response = shop
            .call(
                method,
                "/api/internal/reservations/order-1",
                Some(&service),
                Some(json!({"items": [line(1)]})),
            )
            .await;
        expect_refusal(
            response,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "invalid path parameter",
        )
        .await;
    }
}

#[tokio::test]
async fn reservations_are_for_the_shops_services_only() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, user) = shop.new_user().await;
    let mug = shop.new_product(&admin, 100, 10).await;
    let path = format!("/api/internal/reservations/{}", Uuid::new_v4());
    let body = json!({"items": [{"product_id": mug, "quantity": 1}]});
    for (method, body) in [(Method::PUT, Some(body)), (Method::DELETE, None)] {
        assert_needs_a_token(&shop, method.clone(), &path, body.clone()).await;
        for token in [&user, &admin] {
            let response = shop
                .call(method.clone(), &path, Some(token), body.clone())
                .await;
            expect_refusal(
                response,
                StatusCode::FORBIDDEN,
                "forbidden",
                "internal to the shop's services",
            )
            .await;
        }
    }
    assert_eq!(shop.stock_of(mug).await, 10);
}
