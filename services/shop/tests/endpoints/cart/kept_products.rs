//! The products the cart service keeps for `PRODUCT_CACHE_TTL_MS`: a kept product may accept
//! a cart add, never refuse one, never outlive its bound, and never let a checkout oversell.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use super::{added, cart, checkout, delete_product, line};
use crate::expect_refusal;
use crate::support::{Options, TestShop, expect_json};

/// Longer than any of these tests, so that what they see within it is the kept copy.
const LONG: Duration = Duration::from_secs(600);
/// Short enough to wait out.
const SHORT: Duration = Duration::from_millis(300);

/// A shop whose cart service keeps products for `ttl`, and a customer whose cart holds one
/// unit of a product of that stock: the cart service has read and kept it.
struct OneInCart {
    shop: TestShop,
    admin: String,
    token: String,
    product: Uuid,
    cart: serde_json::Value,
}

impl OneInCart {
    async fn start(ttl: Duration, stock: i64) -> Self {
        let shop = TestShop::start_with(Options {
            product_cache_ttl: Some(ttl),
            ..Options::default()
        })
        .await;
        let admin = shop.admin_token().await;
        let (_, token) = shop.new_user().await;
        let product = shop.new_product(&admin, 1250, stock).await;
        let cart = added(&shop, &token, product, 1).await;
        Self {
            shop,
            admin,
            token,
            product,
            cart,
        }
    }

    async fn change_product(&self, change: serde_json::Value) {
        let changed = self
            .shop
            .call(
                Method::PUT,
                &format!("/api/products/{}", self.product),
                Some(&self.admin),
                Some(change),
            )
            .await;
        assert_eq!(changed.status(), StatusCode::OK);
    }

    async fn add(&self, quantity: i64) -> reqwest::Response {
        self.shop
            .add_to_cart(&self.token, self.product, quantity)
            .await
    }

    /// With a stock of 1 now, a second unit is refused, and the cart stays as it was.
    async fn expect_a_second_unit_refused(&self) {
        expect_refusal(
            self.add(1).await,
            StatusCode::CONFLICT,
            "conflict",
            "only 1 of",
        )
        .await;
        assert_eq!(cart(&self.shop, &self.token).await, self.cart);
    }
}

#[tokio::test]
async fn a_kept_product_accepts_an_add_but_the_checkout_still_refuses_to_oversell() {
    let one = OneInCart::start(LONG, 5).await;
    one.change_product(json!({"stock": 1, "price_cents": 900}))
        .await;

    let stale = expect_json(one.add(3).await, StatusCode::CREATED).await;
    assert_eq!(
        line(&stale, one.product)["quantity"],
        4,
        "within its bound the kept product (stock 5) accepts the add"
    );
    assert_eq!(line(&stale, one.product)["unit_price_cents"], 1250);
    expect_refusal(
        checkout(&one.shop, &one.token).await,
        StatusCode::CONFLICT,
        "conflict",
        "not enough stock",
    )
    .await;
    assert_eq!(one.shop.stock_of(one.product).await, 1, "nothing was sold");
    assert_eq!(cart(&one.shop, &one.token).await, stale, "the cart is kept");
}

#[tokio::test]
async fn a_refusal_is_read_afresh_so_a_restock_is_seen_at_once() {
    let one = OneInCart::start(LONG, 1).await;
    one.change_product(json!({"stock": 10})).await;

    let more = expect_json(one.add(3).await, StatusCode::CREATED).await;
    assert_eq!(
        line(&more, one.product)["quantity"],
        4,
        "the kept copy (stock 1) would have refused: the add read the product again"
    );
}

#[tokio::test]
async fn a_product_that_ran_out_is_refused_once_its_copy_expires() {
    let one = OneInCart::start(SHORT, 5).await;
    one.change_product(json!({"stock": 1})).await;
    tokio::time::sleep(SHORT * 2).await;

    one.expect_a_second_unit_refused().await;
}

#[tokio::test]
async fn a_deleted_product_is_unknown_once_its_copy_expires() {
    let one = OneInCart::start(SHORT, 5).await;
    delete_product(&one.shop, &one.admin, one.product).await;
    tokio::time::sleep(SHORT * 2).await;

    expect_refusal(
        one.add(1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        &format!("product {} does not exist", one.product),
    )
    .await;
    assert_eq!(cart(&one.shop, &one.token).await, one.cart);
}

#[tokio::test]
async fn a_price_change_reaches_new_lines_once_the_copy_expires() {
    let one = OneInCart::start(SHORT, 50).await;
    one.change_product(json!({"price_cents": 900})).await;
    tokio::time::sleep(SHORT * 2).await;

    let repriced = expect_json(one.add(1).await, StatusCode::CREATED).await;
    assert_eq!(line(&repriced, one.product)["unit_price_cents"], 900);
}

#[tokio::test]
async fn with_no_ttl_every_add_reads_the_backend() {
    let one = OneInCart::start(Duration::ZERO, 5).await;
    one.change_product(json!({"stock": 1})).await;

    one.expect_a_second_unit_refused().await;
}
