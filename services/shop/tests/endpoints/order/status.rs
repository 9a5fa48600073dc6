//! The life cycle of an order: statuses, who may change them, and cancellation.

use super::*;

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
