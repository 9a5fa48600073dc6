//! Products: creating, reading, updating, deleting and listing them, and who may.

use super::*;

#[tokio::test]
async fn product_create_returns_the_product_with_defaults_and_trimmed_name() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let created: Value = expect_json(
        create_product(
            &shop,
            &admin,
            json!({"name": "  Blue mug  ", "price_cents": 1250, "stock": 7}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        keys(&created),
        [
            "category",
            "created_at",
            "description",
            "id",
            "name",
            "price_cents",
            "stock",
            "updated_at"
        ]
    );
    assert_eq!(created["name"], "Blue mug");
    assert_eq!(created["description"], "");
    assert_eq!(created["category"], "general");
    assert_eq!(created["price_cents"], 1250);
    assert_eq!(created["stock"], 7);
    assert_eq!(created["created_at"], created["updated_at"]);
    assert_eq!(product(&shop, id_of(&created)).await, created);
}

#[tokio::test]
async fn product_create_keeps_description_and_category_and_accepts_the_limits() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let name = "é".repeat(200);
    let description = "d".repeat(2000);
    let category = "c".repeat(100);
    let created: Value = expect_json(
        create_product(
            &shop,
            &admin,
            json!({"name": name, "description": description, "category": category,
                "price_cents": 100_000_000, "stock": 1_000_000_000}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["name"], name.as_str());
    assert_eq!(created["description"], description.as_str());
    assert_eq!(created["category"], category.as_str());
    assert_eq!(created["price_cents"], 100_000_000);
    assert_eq!(created["stock"], 1_000_000_000);

    let free: Value = expect_json(
        create_product(
            &shop,
            &admin,
            json!({"name": "Free sample", "price_cents": 0, "stock": 0}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (&free["price_cents"], &free["stock"]),
        (&json!(0), &json!(0))
    );
}

#[tokio::test]
async fn product_create_refuses_out_of_range_fields_and_creates_nothing() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let valid = json!({"name": "Mug", "price_cents": 100, "stock": 1});
    let cases = [
        ("price_cents", json!(-1), &["price_cents"][..]),
        ("price_cents", json!(100_000_001), &["price_cents"]),
        ("price_cents", json!(i64::MAX), &["price_cents"]),
        ("stock", json!(-1), &["stock"]),
        ("stock", json!(1_000_000_001), &["stock"]),
        ("name", json!(""), &["name", "name"]),
        ("name", json!("   "), &["name"]),
        ("name", json!("n".repeat(201)), &["name"]),
        ("description", json!("d".repeat(2001)), &["description"]),
        ("category", json!(""), &["category", "category"]),
        ("category", json!("  "), &["category"]),
        ("category", json!("c".repeat(101)), &["category"]),
    ];
    for (field, value, errors) in cases {
        let mut body = valid.clone();
        body[field] = value;
        expect_invalid_fields(create_product(&shop, &admin, body).await, errors).await;
    }
    let all_wrong = json!({"name": " ", "price_cents": -5, "stock": -5});
    expect_invalid_fields(
        create_product(&shop, &admin, all_wrong).await,
        &["name", "price_cents", "stock"],
    )
    .await;
    let listed: Value = expect_json(shop.get("/api/products/", None).await, StatusCode::OK).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn product_create_refuses_missing_fields_wrong_types_and_unknown_fields() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let cases = [
        (
            json!({"price_cents": 100, "stock": 1}),
            "missing field `name`",
        ),
        (
            json!({"name": "Mug", "stock": 1}),
            "missing field `price_cents`",
        ),
        (
            json!({"name": "Mug", "price_cents": 100}),
            "missing field `stock`",
        ),
        (
            json!({"name": "Mug", "price_cents": "100", "stock": 1}),
            "invalid type",
        ),
        (
            json!({"name": "Mug", "price_cents": 12.5, "stock": 1}),
            "invalid type",
        ),
        (
            json!({"name": "Mug", "price_cents": 1e30, "stock": 1}),
            "invalid type",
        ),
        (
            json!({"name": 42, "price_cents": 100, "stock": 1}),
            "invalid type",
        ),
        (
            json!({"name": "Mug", "price_cents": 100, "stock": null}),
            "invalid type",
        ),
        (json!("Mug"), "invalid type"),
        (
            json!({"name": "Mug", "price_cents": 100, "stock": 1, "discount": 5}),
            "unknown field `discount`",
        ),
        (
            json!({"name": "Mug", "price_cents": 100, "stock": 1, "id": Uuid::new_v4()}),
            "unknown field `id`",
        ),
    ];
    for (body, detail) in cases {
        expect_undecodable(create_product(&shop, &admin, body).await, detail).await;
    }
}

#[tokio::test]
async fn product_create_refuses_malformed_unsupported_and_oversized_bodies() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    assert_refuses_bad_json_bodies(&shop, Method::POST, "/api/products/", Some(&admin)).await;
}

#[tokio::test]
async fn product_writes_need_an_admin() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let id = shop.new_product(&admin, 100, 1).await;
    let body = json!({"name": "Mug", "price_cents": 100, "stock": 1});
    let item = format!("/api/products/{id}");
    for (method, path, body) in [
        (Method::POST, "/api/products/", Some(body.clone())),
        (Method::PUT, item.as_str(), Some(json!({"price_cents": 1}))),
        (Method::DELETE, item.as_str(), None),
    ] {
        assert_needs_a_token(&shop, method.clone(), path, body.clone()).await;
        assert_admin_only(&shop, method, path, body).await;
    }
    let unchanged = product(&shop, id).await;
    assert_eq!(unchanged["price_cents"], 100);
    let listed: Vec<Value> =
        expect_json(shop.get("/api/products/", None).await, StatusCode::OK).await;
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn product_get_refuses_ids_that_are_not_uuids_and_unknown_ids() {
    let shop = TestShop::start().await;
    for bad in ["not-a-uuid", "123", "0000"] {
        let response = shop.get(&format!("/api/products/{bad}"), None).await;
        expect_refusal(
            response,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "invalid path parameter",
        )
        .await;
    }
    let unknown = Uuid::new_v4();
    let response = shop.get(&format!("/api/products/{unknown}"), None).await;
    expect_refusal(
        response,
        StatusCode::NOT_FOUND,
        "not-found",
        &unknown.to_string(),
    )
    .await;
}

#[tokio::test]
async fn product_update_changes_only_the_given_fields() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let created: Value = expect_json(
        create_product(
            &shop,
            &admin,
            json!({"name": "Mug", "description": "A mug", "category": "kitchen",
                "price_cents": 1250, "stock": 7}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = id_of(&created);

    let repriced: Value = expect_json(
        update_product(&shop, &admin, id, json!({"price_cents": 999})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(repriced["price_cents"], 999);
    for field in [
        "id",
        "name",
        "description",
        "category",
        "stock",
        "created_at",
    ] {
        assert_eq!(repriced[field], created[field], "{field} is kept");
    }
    assert!(repriced["updated_at"].as_str() >= created["updated_at"].as_str());

    let renamed: Value = expect_json(
        update_product(
            &shop,
            &admin,
            id,
            json!({"name": " Big mug ", "description": "", "category": "mugs", "stock": 0}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["name"], "Big mug");
    assert_eq!(renamed["description"], "");
    assert_eq!(renamed["category"], "mugs");
    assert_eq!(renamed["stock"], 0);
    assert_eq!(renamed["price_cents"], 999, "the earlier change stays");

    let untouched: Value = expect_json(
        update_product(&shop, &admin, id, json!({})).await,
        StatusCode::OK,
    )
    .await;
    for field in ["name", "description", "category", "price_cents", "stock"] {
        assert_eq!(untouched[field], renamed[field], "{field} is kept");
    }
    assert_eq!(product(&shop, id).await, untouched);
}

#[tokio::test]
async fn product_update_refuses_invalid_fields_and_changes_nothing() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let id = shop.new_product(&admin, 1250, 7).await;
    let before = product(&shop, id).await;
    for (field, value, errors) in [
        ("price_cents", json!(-1), &["price_cents"][..]),
        ("price_cents", json!(100_000_001), &["price_cents"]),
        ("stock", json!(-3), &["stock"]),
        ("stock", json!(1_000_000_001), &["stock"]),
        ("name", json!(""), &["name", "name"]),
        ("name", json!("\t "), &["name"]),
        ("name", json!("n".repeat(201)), &["name"]),
        ("description", json!("d".repeat(2001)), &["description"]),
        ("category", json!(""), &["category", "category"]),
        ("category", json!("c".repeat(101)), &["category"]),
    ] {
        let response = update_product(&shop, &admin, id, json!({ field: value })).await;
        expect_invalid_fields(response, errors).await;
    }
    for (body, detail) in [
        (json!({"price_cents": "cheap"}), "invalid type"),
        (json!({"stock": 1.5}), "invalid type"),
        (json!({"name": ["Mug"]}), "invalid type"),
        (json!({"colour": "blue"}), "unknown field `colour`"),
        (json!({"id": Uuid::new_v4()}), "unknown field `id`"),
    ] {
        expect_undecodable(update_product(&shop, &admin, id, body).await, detail).await;
    }
    assert_eq!(product(&shop, id).await, before);
}

#[tokio::test]
async fn product_update_of_unknown_or_malformed_ids_is_refused() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let unknown = Uuid::new_v4();
    expect_refusal(
        update_product(&shop, &admin, unknown, json!({"price_cents": 1})).await,
        StatusCode::NOT_FOUND,
        "not-found",
        &unknown.to_string(),
    )
    .await;
    let response = shop
        .call(
            Method::PUT,
            "/api/products/not-a-uuid",
            Some(&admin),
            Some(json!({"price_cents": 1})),
        )
        .await;
    expect_refusal(
        response,
        StatusCode::BAD_REQUEST,
        "bad-request",
        "invalid path parameter",
    )
    .await;
    let id = shop.new_product(&admin, 100, 1).await;
    assert_refuses_bad_json_bodies(
        &shop,
        Method::PUT,
        &format!("/api/products/{id}"),
        Some(&admin),
    )
    .await;
}

#[tokio::test]
async fn product_delete_removes_the_product_for_good() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let kept = shop.new_product(&admin, 100, 1).await;
    let gone = shop.new_product(&admin, 200, 2).await;
    let path = format!("/api/products/{gone}");

    let response = shop.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.text().await.unwrap().is_empty());

    expect_refusal(
        shop.get(&path, None).await,
        StatusCode::NOT_FOUND,
        "not-found",
        "does not exist",
    )
    .await;
    expect_refusal(
        shop.call(Method::DELETE, &path, Some(&admin), None).await,
        StatusCode::NOT_FOUND,
        "not-found",
        "does not exist",
    )
    .await;
    expect_refusal(
        update_product(&shop, &admin, gone, json!({"stock": 5})).await,
        StatusCode::NOT_FOUND,
        "not-found",
        "does not exist",
    )
    .await;
    let listed: Vec<Value> =
        expect_json(shop.get("/api/products/", None).await, StatusCode::OK).await;
    let ids: Vec<Uuid> = listed.iter().map(id_of).collect();
    assert_eq!(ids, [kept]);

    let response = shop
        .call(Method::DELETE, "/api/products/42", Some(&admin), None)
        .await;
    expect_refusal(
        response,
        StatusCode::BAD_REQUEST,
        "bad-request",
        "invalid path parameter",
    )
    .await;
}

#[tokio::test]
async fn product_list_of_an_empty_catalogue_is_an_empty_page() {
    let shop = TestShop::start().await;
    let response = shop.get("/api/products/", None).await;
    assert!(header(&response, "link").is_none());
    assert!(header(&response, "x-next-cursor").is_none());
    let listed: Value = expect_json(response, StatusCode::OK).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn product_list_pages_follow_the_link_header_to_the_end() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let mut created = BTreeSet::new();
    for price in 1..=5 {
        created.insert(shop.new_product(&admin, price * 100, price).await);
    }

    let mut seen = Vec::new();
    let mut page_sizes = Vec::new();
    let mut next = Some("/api/products/?limit=2".to_owned());
    while let Some(path) = next.take() {
        let response = shop.get(&path, None).await;
        let link = header(&response, "link");
        let cursor = header(&response, "x-next-cursor");
        let page: Vec<Value> = expect_json(response, StatusCode::OK).await;
        page_sizes.push(page.len());
        seen.extend(page.iter().map(id_of));
        match (link, cursor) {
            (Some(link), Some(cursor)) => {
                let url = link
                    .strip_prefix('<')
                    .and_then(|rest| rest.strip_suffix(">; rel=\"next\""))
                    .unwrap_or_else(|| panic!("unexpected Link header {link}"));
                assert_eq!(url, format!("/api/products/?limit=2&cursor={cursor}"));
                assert_eq!(cursor, seen.last().unwrap().to_string());
                next = Some(url.to_owned());
            }
            (None, None) => {}
            other => panic!("Link and X-Next-Cursor go together: {other:?}"),
        }
        assert!(page_sizes.len() <= 5, "the pages never end: {page_sizes:?}");
    }
    assert_eq!(page_sizes, [2, 2, 1]);
    let distinct: BTreeSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "a product came twice: {seen:?}");
    assert_eq!(distinct, created);
    assert!(seen.is_sorted(), "pages are in id order");
}

#[tokio::test]
async fn product_list_cursor_still_works_after_its_product_is_deleted() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    let mut created = Vec::new();
    for _ in 0..4 {
        created.push(shop.new_product(&admin, 100, 1).await);
    }
    created.sort();
    let response = shop.get("/api/products/?limit=2", None).await;
    let cursor = header(&response, "x-next-cursor").expect("a next page");
    assert_eq!(cursor, created[1].to_string());
    let deleted = shop
        .call(
            Method::DELETE,
            &format!("/api/products/{cursor}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let response = shop
        .get(&format!("/api/products/?limit=2&cursor={cursor}"), None)
        .await;
    assert!(header(&response, "link").is_none(), "the last page");
    let rest: Vec<Value> = expect_json(response, StatusCode::OK).await;
    assert_eq!(rest.iter().map(id_of).collect::<Vec<_>>(), created[2..]);
}

#[tokio::test]
async fn product_list_pages_hold_50_products_unless_told_otherwise() {
    let shop = TestShop::start().await;
    let admin = shop.admin_token().await;
    for _ in 0..51 {
        shop.new_product(&admin, 100, 1).await;
    }
    let response = shop.get("/api/products/", None).await;
    let link = header(&response, "link").expect("a next page");
    assert!(link.contains("limit=50&cursor="), "{link}");
    let first: Vec<Value> = expect_json(response, StatusCode::OK).await;
    assert_eq!(first.len(), 50);

    let response = shop.get("/api/products/?limit=100", None).await;
    assert!(header(&response, "link").is_none());
    let all: Vec<Value> = expect_json(response, StatusCode::OK).await;
    assert_eq!(all.len(), 51);
}

#[tokio::test]
async fn product_list_refuses_invalid_limits_and_cursors() {
    let shop = TestShop::start().await;
    for limit in ["0", "101"] {
        let response = shop
            .get(&format!("/api/products/?limit={limit}"), None)
            .await;
        expect_invalid_fields(response, &["limit"]).await;
    }
    for query in ["limit=-1", "limit=ten", "limit=1.5"] {
        let response = shop.get(&format!("/api/products/?{query}"), None).await;
        expect_refusal(
            response,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "invalid query parameter",
        )
        .await;
    }
    for cursor in ["garbage", "12345", "%00"] {
        let response = shop
            .get(&format!("/api/products/?cursor={cursor}"), None)
            .await;
        expect_refusal(
            response,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "cursor is not valid",
        )
        .await;
    }
}
