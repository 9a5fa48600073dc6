//! The lines of a cart: adding, merging, changing, removing and totalling them.

use super::*;

#[tokio::test]
async fn cart_add_returns_the_cart_with_the_new_line() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (id, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let name = expect_json::<Value>(
        shop.get(&format!("/api/products/{mug}"), None).await,
        StatusCode::OK,
    )
    .await["name"]
        .clone();

    let cart_after = added(&shop, &token, mug, 3).await;
    assert_eq!(cart_after["user_id"], id.to_string());
    assert_eq!(cart_after["total_cents"], 3750);
    assert_eq!(cart_after["item_count"], 3);
    assert_eq!(cart_after["version"], 1);
    let items = cart_after["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(
        keys(item),
        [
            "added_at",
            "id",
            "line_total_cents",
            "name",
            "product_id",
            "quantity",
            "unit_price_cents"
        ]
    );
    assert_ne!(id_of(item), mug, "a line has its own id");
    assert_eq!(item["product_id"], mug.to_string());
    assert_eq!(item["name"], name);
    assert_eq!(item["unit_price_cents"], 1250);
    assert_eq!(item["quantity"], 3);
    assert_eq!(item["line_total_cents"], 3750);
    assert_eq!(cart(&shop, &token).await, cart_after);
    assert_eq!(shop.stock_of(mug).await, 10, "a cart reserves nothing");
}

#[tokio::test]
async fn cart_add_merges_lines_of_the_same_product() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let first = added(&shop, &token, mug, 2).await;
    let merged = added(&shop, &token, mug, 3).await;
    assert_eq!(merged["items"].as_array().unwrap().len(), 1);
    assert_eq!(line_id(&merged, mug), line_id(&first, mug), "the same line");
    assert_eq!(line(&merged, mug)["quantity"], 5);
    assert_eq!(line(&merged, mug)["line_total_cents"], 6250);
    assert_eq!(merged["total_cents"], 6250);
    assert_eq!(merged["item_count"], 5);
    assert_eq!(merged["version"], 2);
}

#[tokio::test]
async fn cart_total_adds_up_every_line_in_cents() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 100).await;
    let lamp = shop.new_product(&admin, 4999, 100).await;
    let pin = shop.new_product(&admin, 1, 100).await;
    let dear = shop.new_product(&admin, 100_000_000, 100).await;
    added(&shop, &token, mug, 3).await;
    added(&shop, &token, lamp, 2).await;
    added(&shop, &token, pin, 7).await;
    let full = added(&shop, &token, dear, 100).await;
    assert_eq!(line(&full, mug)["line_total_cents"], 3750);
    assert_eq!(line(&full, lamp)["line_total_cents"], 9998);
    assert_eq!(line(&full, pin)["line_total_cents"], 7);
    assert_eq!(line(&full, dear)["line_total_cents"], 10_000_000_000_i64);
    let expected_total = 3750 + 9998 + 7 + 10_000_000_000_i64;
    assert_eq!(full["total_cents"], expected_total);
    assert_eq!(full["item_count"], 112);
    let total: Value = expect_json(
        shop.get("/cart-api/cart/total", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        total,
        json!({"total_cents": expected_total, "item_count": 112})
    );
}

#[tokio::test]
async fn cart_add_refuses_more_than_the_stock() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 5).await;
    expect_refusal(
        shop.add_to_cart(&token, mug, 6).await,
        StatusCode::CONFLICT,
        "conflict",
        "only 5 of",
    )
    .await;
    let before = added(&shop, &token, mug, 3).await;
    expect_refusal(
        shop.add_to_cart(&token, mug, 3).await,
        StatusCode::CONFLICT,
        "conflict",
        "3 already in your cart",
    )
    .await;
    assert_eq!(
        cart(&shop, &token).await,
        before,
        "a refused add changes nothing"
    );
    let full = added(&shop, &token, mug, 2).await;
    assert_eq!(line(&full, mug)["quantity"], 5, "exactly the stock is fine");
}

#[tokio::test]
async fn cart_add_refuses_an_unknown_product() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let unknown = Uuid::new_v4();
    expect_refusal(
        shop.add_to_cart(&token, unknown, 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        &format!("product {unknown} does not exist"),
    )
    .await;
    let deleted = shop.new_product(&admin, 100, 5).await;
    shop.call(
        Method::DELETE,
        &format!("/api/products/{deleted}"),
        Some(&admin),
        None,
    )
    .await;
    expect_refusal(
        shop.add_to_cart(&token, deleted, 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        "does not exist",
    )
    .await;
    assert_eq!(cart(&shop, &token).await["items"], json!([]));
}

#[tokio::test]
async fn cart_add_refuses_zero_negative_and_oversized_quantities() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 1000).await;
    for quantity in [0, -1, -100, 101, i64::MAX] {
        expect_invalid_fields(shop.add_to_cart(&token, mug, quantity).await, &["quantity"]).await;
    }
    assert_eq!(cart(&shop, &token).await["items"], json!([]));
}

#[tokio::test]
async fn cart_add_refuses_missing_fields_wrong_types_and_unknown_fields() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    for (body, detail) in [
        (json!({"product_id": mug}), "missing field `quantity`"),
        (json!({"quantity": 1}), "missing field `product_id`"),
        (json!({"product_id": mug, "quantity": "2"}), "invalid type"),
        (json!({"product_id": mug, "quantity": 1.5}), "invalid type"),
        (json!({"product_id": "mug", "quantity": 1}), "product_id"),
        (json!({"product_id": 7, "quantity": 1}), "invalid type"),
        (
            json!({"product_id": mug, "quantity": 1, "unit_price_cents": 1}),
            "unknown field `unit_price_cents`",
        ),
        (json!(42), "invalid type"),
    ] {
        expect_undecodable(post_item(&shop, &token, body).await, detail).await;
    }
    assert_refuses_bad_json_bodies(&shop, Method::POST, "/cart-api/cart/items", Some(&token)).await;
    assert_eq!(cart(&shop, &token).await["items"], json!([]));
}

#[tokio::test]
async fn cart_line_holds_at_most_100_units() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 10, 1000).await;
    let before = added(&shop, &token, mug, 60).await;
    expect_invalid_fields(shop.add_to_cart(&token, mug, 41).await, &["quantity"]).await;
    assert_eq!(cart(&shop, &token).await, before);
    let full = added(&shop, &token, mug, 40).await;
    assert_eq!(line(&full, mug)["quantity"], 100);
    expect_invalid_fields(shop.add_to_cart(&token, mug, 1).await, &["quantity"]).await;
}

#[tokio::test]
async fn cart_update_sets_the_quantity_and_recomputes_totals() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 200).await;
    let lamp = shop.new_product(&admin, 4999, 10).await;
    added(&shop, &token, mug, 2).await;
    let before = added(&shop, &token, lamp, 1).await;
    let item = line_id(&before, mug);

    let updated: Value = expect_json(
        set_quantity(&shop, &token, &item, json!(7)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(line(&updated, mug)["quantity"], 7);
    assert_eq!(line(&updated, mug)["line_total_cents"], 8750);
    assert_eq!(line(&updated, mug)["id"], item.as_str());
    assert_eq!(
        line(&updated, lamp),
        line(&before, lamp),
        "other lines are kept"
    );
    assert_eq!(updated["total_cents"], 8750 + 4999);
    assert_eq!(updated["item_count"], 8);
    assert_eq!(updated["version"], 3);

    let lowered: Value = expect_json(
        set_quantity(&shop, &token, &item, json!(1)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(lowered["total_cents"], 1250 + 4999);
    let most: Value = expect_json(
        set_quantity(&shop, &token, &item, json!(100)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(line(&most, mug)["quantity"], 100);
    assert_eq!(cart(&shop, &token).await, most);
}

#[tokio::test]
async fn cart_update_refuses_bad_quantities_and_bodies() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let before = added(&shop, &token, mug, 2).await;
    let item = line_id(&before, mug);
    for quantity in [0, -1, 101] {
        expect_invalid_fields(
            set_quantity(&shop, &token, &item, json!(quantity)).await,
            &["quantity"],
        )
        .await;
    }
    let path = format!("/cart-api/cart/items/{item}");
    for (body, detail) in [
        (json!({}), "missing field `quantity`"),
        (json!({"quantity": "3"}), "invalid type"),
        (
            json!({"quantity": 3, "product_id": mug}),
            "unknown field `product_id`",
        ),
    ] {
        expect_undecodable(
            shop.call(Method::PUT, &path, Some(&token), Some(body))
                .await,
            detail,
        )
        .await;
    }
    assert_refuses_bad_json_bodies(&shop, Method::PUT, &path, Some(&token)).await;
    assert_eq!(cart(&shop, &token).await, before);
}

#[tokio::test]
async fn cart_update_and_remove_of_an_unknown_item_are_not_found() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let (_, other) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let theirs = line_id(&added(&shop, &other, mug, 1).await, mug);
    let mine = added(&shop, &token, mug, 2).await;
    for item in [Uuid::new_v4().to_string(), theirs.clone(), mug.to_string()] {
        expect_refusal(
            set_quantity(&shop, &token, &item, json!(3)).await,
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("your cart has no item {item}"),
        )
        .await;
        expect_refusal(
            remove(&shop, &token, &item).await,
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("your cart has no item {item}"),
        )
        .await;
    }
    for item in ["1", "not-a-uuid"] {
        expect_refusal(
            set_quantity(&shop, &token, item, json!(3)).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "invalid path parameter",
        )
        .await;
        expect_refusal(
            remove(&shop, &token, item).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "invalid path parameter",
        )
        .await;
    }
    assert_eq!(cart(&shop, &token).await, mine);
    assert_eq!(line(&cart(&shop, &other).await, mug)["quantity"], 1);
}

#[tokio::test]
async fn cart_remove_deletes_only_that_line() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 10).await;
    let lamp = shop.new_product(&admin, 4999, 10).await;
    added(&shop, &token, mug, 2).await;
    let before = added(&shop, &token, lamp, 1).await;
    let item = line_id(&before, mug);

    let after: Value = expect_json(remove(&shop, &token, &item).await, StatusCode::OK).await;
    assert_eq!(after["items"], json!([line(&before, lamp)]));
    assert_eq!(after["total_cents"], 4999);
    assert_eq!(after["item_count"], 1);
    expect_refusal(
        remove(&shop, &token, &item).await,
        StatusCode::NOT_FOUND,
        "not-found",
        "your cart has no item",
    )
    .await;
    assert_eq!(cart(&shop, &token).await, after);
}

#[tokio::test]
async fn cart_update_refuses_more_than_the_stock() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let (_, token) = shop.new_user().await;
    let mug = shop.new_product(&admin, 1250, 5).await;
    let before = added(&shop, &token, mug, 2).await;
    let item = line_id(&before, mug);
    expect_refusal(
        set_quantity(&shop, &token, &item, json!(6)).await,
        StatusCode::CONFLICT,
        "conflict",
        "only 5 of",
    )
    .await;
    assert_eq!(cart(&shop, &token).await, before);
}
