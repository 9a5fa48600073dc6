//! Order events, which only the order service may report.

use super::*;

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
async fn order_event_with_a_status_of_the_wrong_json_type_is_unprocessable() {
    let shop = TestShop::start().await;
    let order_service = service_token(&shop, "order-service").await;
    let mut event = order_event(Uuid::new_v4(), "shipped");
    event["status"] = json!(3);
    expect_undecodable(post_event(&shop, &order_service, event).await, "status").await;
}
