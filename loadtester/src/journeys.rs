//! The journeys, as goose scenarios: anonymous browsers, shoppers, admins, a credential
//! stuffer and a flash sale. Every response's content is checked, not only its status.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use goose::prelude::*;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::client::{Answer, Call, Ctx, send};
use crate::model::{Cart, CartTotal, Order, Problem, Profile, Token, TotalSpent, User};
use crate::seed::{Product, VICTIM_PASSWORD};

pub const BROWSER: &str = "browser";
pub const SHOPPER: &str = "shopper";
pub const ADMIN: &str = "admin";
pub const STUFFER: &str = "stuffer";
pub const FLASH_SALE: &str = "flashsale";
/// The gateway's static answer alone: what the load generator itself can do
/// (`cargo xtask bench`). It needs the gateway: `--direct` has no `/static-ok`.
pub const STATIC: &str = "static";
/// Every journey, in the order `--mix` lists them.
pub const ALL: &[&str] = &[BROWSER, SHOPPER, ADMIN, STUFFER, FLASH_SALE, STATIC];

/// The password every registered shopper uses.
const PASSWORD: &str = "loadtest-password";
/// Pages an anonymous browser follows at most.
const MAX_PAGES: usize = 3;
const PAGE_SIZE: usize = 10;
/// Products an admin creates and later retires, so the catalogue does not grow forever.
pub const ADMIN_PREFIX: &str = "loadtest:admin ";

type TxResult = TransactionResult;

/// A goose transaction running `$func(&ctx, user)`.
macro_rules! step {
    ($ctx:expr, $name:expr, $func:path) => {{
        let ctx = $ctx.clone();
        Transaction::new(Arc::new(move |user| {
            let ctx = ctx.clone();
            Box::pin(async move { $func(&ctx, user).await })
        }))
        .set_name($name)
    }};
}

/// Think times: each journey waits between `min` and `max` between its steps.
#[derive(Debug, Clone, Copy)]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}

impl ThinkTime {
    fn scaled(self, factor: f64) -> (Duration, Duration) {
        (self.min.mul_f64(factor), self.max.mul_f64(factor))
    }
}

/// The scenario of a journey with its weight; `None` for an unknown name.
pub fn scenario(
    name: &str,
    weight: usize,
    think: ThinkTime,
    ctx: &Arc<Ctx>,
) -> Result<Scenario, GooseError> {
    let (scenario, factor) = match name {
        BROWSER => (
            Scenario::new(BROWSER)
                .register_transaction(step!(ctx, "arrive", arrive_anonymous).set_on_start())
                .register_transaction(step!(ctx, "browse catalogue", browse_catalogue))
                .register_transaction(step!(ctx, "view product", view_product))
                .register_transaction(step!(ctx, "leave", leave).set_on_stop()),
            1.0,
        ),
        SHOPPER => (
            Scenario::new(SHOPPER)
                .register_transaction(
                    step!(ctx, "register and log in", shopper_start).set_on_start(),
                )
                .register_transaction(step!(ctx, "browse", shopper_browse))
                .register_transaction(step!(ctx, "fill cart", fill_cart))
                .register_transaction(step!(ctx, "change cart", change_cart))
                .register_transaction(step!(ctx, "view cart and total", view_cart))
                .register_transaction(step!(ctx, "check out", check_out))
                .register_transaction(step!(ctx, "view orders", view_orders))
                .register_transaction(step!(ctx, "profile and total spent", profile))
                .register_transaction(step!(ctx, "maybe cancel", maybe_cancel))
                .register_transaction(step!(ctx, "leave", leave).set_on_stop()),
            1.0,
        ),
        ADMIN => (
            Scenario::new(ADMIN)
                .register_transaction(step!(ctx, "log in", admin_start).set_on_start())
                .register_transaction(step!(ctx, "create product", admin_create_product))
                .register_transaction(step!(ctx, "update product", admin_update_product))
                .register_transaction(step!(ctx, "restock", admin_restock))
                .register_transaction(step!(ctx, "move orders", admin_move_orders))
                .register_transaction(step!(ctx, "list carts", admin_list_carts))
                .register_transaction(step!(ctx, "retire product", admin_retire_product))
                .register_transaction(step!(ctx, "leave", leave).set_on_stop()),
            2.0,
        ),
        STUFFER => (
            Scenario::new(STUFFER)
                .register_transaction(step!(ctx, "arrive", arrive_anonymous).set_on_start())
                .register_transaction(step!(ctx, "stuff credentials", stuff_credentials))
                .register_transaction(step!(ctx, "leave", leave).set_on_stop()),
            0.1,
        ),
        FLASH_SALE => (
            Scenario::new(FLASH_SALE)
                .register_transaction(step!(ctx, "register and log in", flash_start).set_on_start())
                .register_transaction(step!(ctx, "grab the deal", flash_grab))
                .register_transaction(step!(ctx, "leave", leave).set_on_stop()),
            0.5,
        ),
        STATIC => (
            Scenario::new(STATIC)
                .register_transaction(step!(ctx, "arrive", arrive_anonymous).set_on_start())
                .register_transaction(step!(ctx, "static ok", static_ok))
                .register_transaction(step!(ctx, "leave", leave).set_on_stop()),
            1.0,
        ),
        other => {
            return Err(GooseError::InvalidOption {
                option: "--mix".to_owned(),
                value: other.to_owned(),
                detail: format!("no journey is called {other}; journeys: {}", ALL.join(", ")),
            });
        }
    };
    let (min, max) = think.scaled(factor);
    scenario.set_weight(weight)?.set_wait_time(min, max)
}

// ---------------------------------------------------------------- sessions

#[derive(Clone, Default)]
struct Session {
    token: String,
    user_id: Option<Uuid>,
    username: String,
    /// Products seen while browsing.
    seen: Vec<Uuid>,
    /// The shopper's orders: id and total.
    orders: Vec<(Uuid, i64)>,
    /// Products this admin created and has not retired yet.
    created: Vec<Uuid>,
}

fn session(user: &mut GooseUser) -> &mut Session {
    if user.get_session_data::<Session>().is_none() {
        user.set_session_data(Session::default());
    }
    user.get_session_data_unchecked_mut::<Session>()
}

fn token(user: &mut GooseUser) -> String {
    session(user).token.clone()
}

async fn arrive_anonymous(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    ctx.metrics.users.inc();
    session(user);
    Ok(())
}

async fn leave(ctx: &Ctx, _user: &mut GooseUser) -> TxResult {
    ctx.metrics.users.dec();
    Ok(())
}

/// Logs in and returns the token.
/// How often a shopper tries to log in while the gateway answers 429, backing off a little
/// longer each time.
const LOGIN_ATTEMPTS: u32 = 8;
const LOGIN_BACKOFF: Duration = Duration::from_millis(250);

async fn log_in(
    ctx: &Ctx,
    user: &mut GooseUser,
    scenario: &'static str,
    username: &str,
    password: &str,
) -> Result<String, Box<TransactionError>> {
    let mut attempt = 1;
    let mut answer = loop {
        let answer = send(
            ctx,
            user,
            Call::new(scenario, "token", Method::POST, "/user-api/token".into())
                .form(&[("username", username), ("password", password)])
                .accept(&[200, 429]),
        )
        .await?;
        // The gateway limits logins per address (429); a real client backs off and tries
        // again rather than carrying on without a token.
        if answer.status != 429 || attempt == LOGIN_ATTEMPTS {
            break answer;
        }
        tokio::time::sleep(LOGIN_BACKOFF * attempt).await;
        attempt += 1;
    };
    let token: Token = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        !token.access_token.is_empty() && token.token_type.eq_ignore_ascii_case("bearer"),
        || format!("not a bearer token: type {:?}", token.token_type),
    )?;
    Ok(token.access_token)
}

/// A new user arrives: registers a unique account and logs in.
async fn register(ctx: &Ctx, user: &mut GooseUser, scenario: &'static str) -> TxResult {
    ctx.metrics.users.inc();
    sign_up(ctx, user, scenario).await
}

async fn sign_up(ctx: &Ctx, user: &mut GooseUser, scenario: &'static str) -> TxResult {
    let username = format!(
        "lt-{scenario}-{}",
        &Uuid::new_v4().simple().to_string()[..16]
    );
    let mut answer = send(
        ctx,
        user,
        Call::new(
            scenario,
            "register",
            Method::POST,
            "/user-api/users/register".into(),
        )
        .json(json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "full_name": "Load Test Shopper",
            "password": PASSWORD,
        }))
        .accept(&[201]),
    )
    .await?;
    let registered: User = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        registered.username == username && registered.role == "user",
        || {
            format!(
                "registered {:?} as {:?}",
                registered.username, registered.role
            )
        },
    )?;
    let token = log_in(ctx, user, scenario, &username, PASSWORD).await?;
    let session = session(user);
    session.token = token;
    session.user_id = Some(registered.id);
    session.username = username;
    Ok(())
}

// ---------------------------------------------------------------- browser

/// Reads one page of the catalogue and checks each product; returns the page and the next
/// page's path.
async fn product_page(
    ctx: &Ctx,
    user: &mut GooseUser,
    scenario: &'static str,
    path: String,
) -> Result<(Vec<Product>, Option<String>), Box<TransactionError>> {
    let mut answer = send(
        ctx,
        user,
        Call::new(scenario, "list products", Method::GET, path),
    )
    .await?;
    let products: Vec<Product> = answer.json(ctx, user)?;
    if let Some(bad) = products
        .iter()
        .find(|p| p.name.is_empty() || p.price_cents < 0 || p.stock < 0)
    {
        return Err(answer.fail(ctx, user, &format!("invalid product {}", bad.id)));
    }
    answer.check(ctx, user, products.len() <= PAGE_SIZE, || {
        format!("{} products on a page of {PAGE_SIZE}", products.len())
    })?;
    let next = next_page(&mut answer, ctx, user)?;
    if next.is_some() {
        answer.check(ctx, user, products.len() == PAGE_SIZE, || {
            format!("a short page ({}) with a next page", products.len())
        })?;
    }
    Ok((products, next))
}

/// The next page from `Link: <...>; rel="next"`, checked against `X-Next-Cursor`.
fn next_page(
    answer: &mut Answer,
    ctx: &Ctx,
    user: &mut GooseUser,
) -> Result<Option<String>, Box<TransactionError>> {
    let link = answer.header("link").map(str::to_owned);
    let cursor = answer.header("x-next-cursor").map(str::to_owned);
    let next = link.as_deref().and_then(|link| {
        link.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            params.contains("rel=\"next\"").then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
    });
    match (&next, &cursor) {
        (None, None) => Ok(None),
        (Some(next), Some(cursor)) if next.contains(&format!("cursor={cursor}")) => {
            // The link may be absolute; keep its path and query.
            let path = match next.find("/api/") {
                Some(start) => next[start..].to_owned(),
                None => next.clone(),
            };
            Ok(Some(path))
        }
        _ => Err(answer.fail(
            ctx,
            user,
            &format!("Link {link:?} and X-Next-Cursor {cursor:?} disagree"),
        )),
    }
}

async fn browse_catalogue(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let mut path = Some(format!("/api/products/?limit={PAGE_SIZE}"));
    let mut ids = HashSet::new();
    let mut pages = 0;
    let wanted_pages = fastrand::usize(1..=MAX_PAGES);
    while let Some(current) = path.take() {
        let (products, next) = product_page(ctx, user, BROWSER, current).await?;
        for product in &products {
            if !ids.insert(product.id) {
                // A product on two pages: cursor pagination is broken.
                let mut answer = send(
                    ctx,
                    user,
                    Call::new(
                        BROWSER,
                        "list products",
                        Method::GET,
                        format!("/api/products/{}", product.id),
                    ),
                )
                .await?;
                return Err(answer.fail(
                    ctx,
                    user,
                    &format!("product {} on two pages", product.id),
                ));
            }
        }
        pages += 1;
        if pages < wanted_pages {
            path = next;
        }
    }
    let seen: Vec<Uuid> = ids.into_iter().collect();
    session(user).seen = seen;
    Ok(())
}

async fn view_product(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let seen = session(user).seen.clone();
    for _ in 0..fastrand::usize(1..=3) {
        let id = if seen.is_empty() {
            ctx.catalogue.pick().id
        } else {
            seen[fastrand::usize(..seen.len())]
        };
        let mut answer = send(
            ctx,
            user,
            // An admin may retire one of its own products between the list and the view.
            Call::new(
                BROWSER,
                "view product",
                Method::GET,
                format!("/api/products/{id}"),
            )
            .accept(&[200, 404]),
        )
        .await?;
        if answer.status == 404 {
            continue;
        }
        let product: Product = answer.json(ctx, user)?;
        answer.check(ctx, user, product.id == id, || {
            format!("asked for {id}, got {}", product.id)
        })?;
        if let Some(price) = ctx.catalogue.price_of(id)
            && id != ctx.catalogue.flash.id
        {
            answer.check(ctx, user, product.price_cents == price, || {
                format!(
                    "{} costs {} instead of {price}",
                    product.name, product.price_cents
                )
            })?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- shopper

async fn shopper_start(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    register(ctx, user, SHOPPER).await
}

async fn shopper_browse(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let (products, _) = product_page(
        ctx,
        user,
        SHOPPER,
        format!("/api/products/?limit={PAGE_SIZE}"),
    )
    .await?;
    session(user).seen = products.iter().map(|p| p.id).collect();
    let product = ctx.catalogue.pick();
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "view product",
            Method::GET,
            format!("/api/products/{}", product.id),
        ),
    )
    .await?;
    let seen: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        seen.id == product.id && seen.price_cents == product.price_cents,
        || {
            format!(
                "product {} came back as {} at {}",
                product.id, seen.id, seen.price_cents
            )
        },
    )
}

async fn get_cart(
    ctx: &Ctx,
    user: &mut GooseUser,
    token: &str,
) -> Result<Cart, Box<TransactionError>> {
    let mut answer = send(
        ctx,
        user,
        Call::new(SHOPPER, "view cart", Method::GET, "/cart-api/cart/".into()).token(token),
    )
    .await?;
    checked_cart(&mut answer, ctx, user)
}

fn checked_cart(
    answer: &mut Answer,
    ctx: &Ctx,
    user: &mut GooseUser,
) -> Result<Cart, Box<TransactionError>> {
    let cart: Cart = answer.json(ctx, user)?;
    if let Some(error) = cart.arithmetic_error() {
        return Err(answer.fail(ctx, user, &error));
    }
    let me = session(user).user_id;
    answer.check(ctx, user, me.is_none_or(|me| me == cart.user_id), || {
        format!("someone else's cart ({})", cart.user_id)
    })?;
    Ok(cart)
}

async fn fill_cart(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let mut cart = get_cart(ctx, user, &token).await?;
    for _ in 0..fastrand::usize(1..=3) {
        let product = ctx.catalogue.pick().clone();
        let quantity = fastrand::i64(1..=3);
        let before = cart.line_for(product.id).map_or(0, |line| line.quantity);
        let mut answer = send(
            ctx,
            user,
            Call::new(
                SHOPPER,
                "add to cart",
                Method::POST,
                "/cart-api/cart/items".into(),
            )
            .token(&token)
            .json(json!({"product_id": product.id, "quantity": quantity}))
            .accept(&[201]),
        )
        .await?;
        cart = checked_cart(&mut answer, ctx, user)?;
        let after = cart.line_for(product.id).map_or(0, |line| line.quantity);
        answer.check(ctx, user, after == before + quantity, || {
            format!(
                "{} in the cart after adding {quantity} to {before}: {after}",
                product.name
            )
        })?;
    }
    Ok(())
}

async fn change_cart(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let cart = get_cart(ctx, user, &token).await?;
    let Some(line) = cart.items.first().cloned() else {
        return Ok(());
    };
    let quantity = fastrand::i64(1..=4);
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "update cart item",
            Method::PUT,
            format!("/cart-api/cart/items/{}", line.id),
        )
        .token(&token)
        .json(json!({"quantity": quantity})),
    )
    .await?;
    let updated = checked_cart(&mut answer, ctx, user)?;
    let now = updated
        .items
        .iter()
        .find(|i| i.id == line.id)
        .map(|i| i.quantity);
    answer.check(ctx, user, now == Some(quantity), || {
        format!("line {} holds {now:?} after setting {quantity}", line.id)
    })?;
    if updated.items.len() > 1 && fastrand::bool() {
        let last = updated.items.last().cloned().expect("two lines");
        let mut answer = send(
            ctx,
            user,
            Call::new(
                SHOPPER,
                "remove cart item",
                Method::DELETE,
                format!("/cart-api/cart/items/{}", last.id),
            )
            .token(&token),
        )
        .await?;
        let after = checked_cart(&mut answer, ctx, user)?;
        answer.check(
            ctx,
            user,
            after.items.iter().all(|i| i.id != last.id)
                && after.total_cents == updated.total_cents - last.line_total_cents,
            || format!("removing line {} left total {}", last.id, after.total_cents),
        )?;
    }
    Ok(())
}

async fn view_cart(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let cart = get_cart(ctx, user, &token).await?;
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "cart total",
            Method::GET,
            "/cart-api/cart/total".into(),
        )
        .token(&token),
    )
    .await?;
    let total: CartTotal = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        total.total_cents == cart.total_cents && total.item_count == cart.item_count,
        || {
            format!(
                "total {} cents / {} items, but the cart adds up to {} / {}",
                total.total_cents, total.item_count, cart.total_cents, cart.item_count
            )
        },
    )
}

async fn check_out(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let cart = get_cart(ctx, user, &token).await?;
    if cart.items.is_empty() {
        return Ok(());
    }
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "check out",
            Method::POST,
            "/user-api/users/me/orders".into(),
        )
        .token(&token)
        .accept(&[201]),
    )
    .await?;
    let order: Order = answer.json(ctx, user)?;
    if let Some(error) = order.arithmetic_error() {
        return Err(answer.fail(ctx, user, &error));
    }
    // The order is at the prices of this moment; the seeded catalogue's never change.
    let expected: i64 = cart
        .items
        .iter()
        .map(|i| {
            ctx.catalogue
                .price_of(i.product_id)
                .unwrap_or(i.unit_price_cents)
                * i.quantity
        })
        .sum();
    answer.check(
        ctx,
        user,
        order.total_cents == expected
            && order.status == "pending"
            && order.items.len() == cart.items.len(),
        || {
            format!(
                "order {} of {} lines totals {} ({}), the cart of {} lines {expected}",
                order.id,
                order.items.len(),
                order.total_cents,
                order.status,
                cart.items.len()
            )
        },
    )?;
    session(user).orders.push((order.id, order.total_cents));
    let after = get_cart(ctx, user, &token).await?;
    if !after.items.is_empty() {
        let mut answer = send(
            ctx,
            user,
            Call::new(SHOPPER, "view cart", Method::GET, "/cart-api/cart/".into()).token(&token),
        )
        .await?;
        return Err(answer.fail(ctx, user, "the cart is not empty after checkout"));
    }
    Ok(())
}

async fn my_orders(
    ctx: &Ctx,
    user: &mut GooseUser,
    token: &str,
) -> Result<Vec<Order>, Box<TransactionError>> {
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "list orders",
            Method::GET,
            "/user-api/users/me/orders".into(),
        )
        .token(token),
    )
    .await?;
    let orders: Vec<Order> = answer.json(ctx, user)?;
    if let Some(error) = orders.iter().find_map(Order::arithmetic_error) {
        return Err(answer.fail(ctx, user, &error));
    }
    // The list holds the newest 100 orders.
    let mine = session(user).orders.clone();
    let missing = mine
        .iter()
        .rev()
        .take(50)
        .find(|(id, _)| !orders.iter().any(|o| o.id == *id));
    answer.check(ctx, user, missing.is_none(), || {
        format!("order {:?} is missing from the list", missing.map(|m| m.0))
    })?;
    Ok(orders)
}

async fn view_orders(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let orders = my_orders(ctx, user, &token).await?;
    let Some(latest) = session(user).orders.last().copied() else {
        return Ok(());
    };
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "view order",
            Method::GET,
            format!("/order-api/orders/{}", latest.0),
        )
        .token(&token),
    )
    .await?;
    let order: Order = answer.json(ctx, user)?;
    let listed = orders
        .iter()
        .find(|o| o.id == latest.0)
        .map(|o| o.total_cents);
    answer.check(
        ctx,
        user,
        order.id == latest.0 && order.total_cents == latest.1 && listed == Some(latest.1),
        || {
            format!(
                "order {} totals {} (listed {listed:?}), placed at {}",
                order.id, order.total_cents, latest.1
            )
        },
    )
}

async fn profile(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let orders = my_orders(ctx, user, &token).await?;
    if orders.len() >= 100 {
        // Only the newest 100 are listed; the sums below would not compare.
        return Ok(());
    }
    let kept: Vec<&Order> = orders.iter().filter(|o| o.status != "cancelled").collect();
    let spent: i64 = kept.iter().map(|o| o.total_cents).sum();
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "total spent",
            Method::GET,
            "/user-api/users/me/total-spent".into(),
        )
        .token(&token),
    )
    .await?;
    let total: TotalSpent = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        total.total_spent_cents == spent && total.order_count == kept.len() as i64,
        || {
            format!(
                "total spent {} over {} orders; the orders say {spent} over {}",
                total.total_spent_cents,
                total.order_count,
                kept.len()
            )
        },
    )?;
    let mut answer = send(
        ctx,
        user,
        Call::new(
            SHOPPER,
            "profile",
            Method::GET,
            "/user-api/users/me/profile".into(),
        )
        .token(&token),
    )
    .await?;
    let profile: Profile = answer.json(ctx, user)?;
    let username = session(user).username.clone();
    answer.check(
        ctx,
        user,
        profile.user.username == username
            && profile.total_spent_cents == spent
            && profile.cart.arithmetic_error().is_none(),
        || {
            format!(
                "profile of {:?}: spent {} (expected {spent}), {} orders listed",
                profile.user.username,
                profile.total_spent_cents,
                profile.orders.len()
            )
        },
    )
}

async fn maybe_cancel(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    if fastrand::u32(..100) >= ctx.cancel_percent {
        return Ok(());
    }
    let Some((id, _)) = session(user).orders.last().copied() else {
        return Ok(());
    };
    cancel(ctx, user, SHOPPER, id).await
}

async fn cancel(ctx: &Ctx, user: &mut GooseUser, journey: &'static str, id: Uuid) -> TxResult {
    let token = token(user);
    let mut answer = send(
        ctx,
        user,
        // 409: it shipped already (or was cancelled), which the shop rightly refuses.
        Call::new(
            journey,
            "cancel order",
            Method::PUT,
            format!("/order-api/orders/{id}/cancel"),
        )
        .token(&token)
        .accept(&[200, 409]),
    )
    .await?;
    if answer.status == 200 {
        let order: Order = answer.json(ctx, user)?;
        answer.check(
            ctx,
            user,
            order.id == id && order.status == "cancelled",
            || format!("cancelling {id} left it {}", order.status),
        )?;
    } else {
        let problem: Problem = answer.json(ctx, user)?;
        answer.check(ctx, user, problem.status == 409, || {
            format!("problem {problem:?}")
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------- admin

async fn admin_start(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    ctx.metrics.users.inc();
    let token = log_in(ctx, user, ADMIN, &ctx.admin_username, &ctx.admin_password).await?;
    session(user).token = token;
    Ok(())
}

async fn admin_create_product(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let name = format!(
        "{ADMIN_PREFIX}{}",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let price = fastrand::i64(100..=20_000);
    let stock = fastrand::i64(0..=500);
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "create product",
            Method::POST,
            "/api/products/".into(),
        )
        .token(&token)
        .json(json!({
            "name": name,
            "category": "new-arrivals",
            "description": "Added by the load tester's admin journey.",
            "price_cents": price,
            "stock": stock,
        }))
        .accept(&[201]),
    )
    .await?;
    let product: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        product.name == name && product.price_cents == price && product.stock == stock,
        || format!("created {name:?} at {price} x {stock}, got {product:?}"),
    )?;
    session(user).created.push(product.id);
    Ok(())
}

async fn admin_update_product(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let Some(id) = session(user).created.last().copied() else {
        return Ok(());
    };
    let price = fastrand::i64(100..=20_000);
    let description = format!("Repriced at {price} cents.");
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "update product",
            Method::PUT,
            format!("/api/products/{id}"),
        )
        .token(&token)
        .json(json!({"price_cents": price, "description": description})),
    )
    .await?;
    let product: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        product.id == id && product.price_cents == price && product.description == description,
        || format!("updated {id} to {price}, got {product:?}"),
    )
}

async fn admin_restock(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let product = ctx.catalogue.pick().clone();
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "view product",
            Method::GET,
            format!("/api/products/{}", product.id),
        ),
    )
    .await?;
    let current: Product = answer.json(ctx, user)?;
    if current.stock >= crate::seed::CATALOGUE_STOCK / 2 {
        return Ok(());
    }
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "restock",
            Method::PUT,
            format!("/api/products/{}", product.id),
        )
        .token(&token)
        .json(json!({"stock": crate::seed::CATALOGUE_STOCK})),
    )
    .await?;
    let restocked: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        restocked.stock == crate::seed::CATALOGUE_STOCK,
        || format!("restocked {} to {}", restocked.name, restocked.stock),
    )
}

async fn admin_move_orders(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "list orders",
            Method::GET,
            "/order-api/orders/?scope=all&limit=50".into(),
        )
        .token(&token),
    )
    .await?;
    let orders: Vec<Order> = answer.json(ctx, user)?;
    if let Some(error) = orders.iter().find_map(Order::arithmetic_error) {
        return Err(answer.fail(ctx, user, &error));
    }
    let movable: Vec<&Order> = orders
        .iter()
        .filter(|o| o.status == "pending" || o.status == "processing")
        .take(2)
        .collect();
    for order in movable {
        let next = if order.status == "pending" {
            "processing"
        } else {
            "shipped"
        };
        let mut answer = send(
            ctx,
            user,
            // 409: the order moved on (or was cancelled) since it was listed.
            Call::new(
                ADMIN,
                "set order status",
                Method::PUT,
                format!("/order-api/orders/{}/status", order.id),
            )
            .token(&token)
            .json(json!({"status": next}))
            .accept(&[200, 409]),
        )
        .await?;
        if answer.status == 200 {
            let moved: Order = answer.json(ctx, user)?;
            answer.check(
                ctx,
                user,
                moved.id == order.id && moved.status == next,
                || {
                    format!(
                        "order {} is {} after moving it to {next}",
                        moved.id, moved.status
                    )
                },
            )?;
        }
    }
    Ok(())
}

async fn admin_list_carts(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let token = token(user);
    let mut answer = send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "list carts",
            Method::GET,
            "/cart-api/carts/?limit=50".into(),
        )
        .token(&token),
    )
    .await?;
    let carts: Vec<Cart> = answer.json(ctx, user)?;
    match carts.iter().find_map(Cart::arithmetic_error) {
        Some(error) => Err(answer.fail(ctx, user, &error)),
        None => Ok(()),
    }
}

async fn admin_retire_product(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    if session(user).created.len() < 3 {
        return Ok(());
    }
    let id = session(user).created.remove(0);
    let token = token(user);
    send(
        ctx,
        user,
        Call::new(
            ADMIN,
            "retire product",
            Method::DELETE,
            format!("/api/products/{id}"),
        )
        .token(&token)
        .accept(&[204]),
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- credential stuffer

async fn stuff_credentials(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    for _ in 0..5 {
        let victims = &ctx.catalogue.victims;
        let username = victims[fastrand::usize(..victims.len())].clone();
        let guess = format!("guess-{:08x}", fastrand::u32(..));
        debug_assert_ne!(guess, VICTIM_PASSWORD);
        let mut answer = send(
            ctx,
            user,
            Call::new(
                STUFFER,
                "wrong password",
                Method::POST,
                "/user-api/token".into(),
            )
            .form(&[("username", &username), ("password", &guess)])
            .accept(&[401]),
        )
        .await?;
        let content_type = answer.header("content-type").unwrap_or_default().to_owned();
        let problem: Problem = answer.json(ctx, user)?;
        answer.check(
            ctx,
            user,
            problem.status == 401 && content_type.starts_with("application/problem+json"),
            || format!("a refused login answered {content_type} {problem:?}"),
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- flash sale

async fn flash_start(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    register(ctx, user, FLASH_SALE).await
}

async fn flash_grab(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    // A buyer whose sign-up failed signs up again instead of queueing without a token.
    if session(user).token.is_empty() {
        return sign_up(ctx, user, FLASH_SALE).await;
    }
    let token = token(user);
    let flash = ctx.catalogue.flash.clone();
    let mut answer = send(
        ctx,
        user,
        Call::new(
            FLASH_SALE,
            "view deal",
            Method::GET,
            format!("/api/products/{}", flash.id),
        ),
    )
    .await?;
    let product: Product = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        product.id == flash.id && product.stock >= 0,
        || format!("the deal came back as {product:?}"),
    )?;
    let mut answer = send(
        ctx,
        user,
        // 409: sold out before it reached the cart; expected first when the deal showed no
        // stock, so goose's error table lists only the races lost after seeing stock.
        Call::new(
            FLASH_SALE,
            "add deal to cart",
            Method::POST,
            "/cart-api/cart/items".into(),
        )
        .token(&token)
        .json(json!({"product_id": flash.id, "quantity": 1}))
        .accept(if product.stock > 0 {
            &[201, 409]
        } else {
            &[409, 201]
        }),
    )
    .await?;
    if answer.status == 409 {
        return sold_out(ctx, user, &mut answer);
    }
    let cart = checked_cart(&mut answer, ctx, user)?;
    let mut answer = send(
        ctx,
        user,
        // 409: another shopper checked out the last unit first.
        Call::new(
            FLASH_SALE,
            "check out",
            Method::POST,
            "/user-api/users/me/orders".into(),
        )
        .token(&token)
        .accept(&[201, 409]),
    )
    .await?;
    if answer.status == 409 {
        sold_out(ctx, user, &mut answer)?;
        let mut answer = send(
            ctx,
            user,
            Call::new(
                FLASH_SALE,
                "empty cart",
                Method::DELETE,
                "/cart-api/cart/".into(),
            )
            .token(&token),
        )
        .await?;
        let emptied = checked_cart(&mut answer, ctx, user)?;
        return answer.check(ctx, user, emptied.items.is_empty(), || {
            format!("{} lines left after emptying the cart", emptied.items.len())
        });
    }
    let order: Order = answer.json(ctx, user)?;
    let units: i64 = order
        .items
        .iter()
        .filter(|i| i.product_id == flash.id)
        .map(|i| i.quantity)
        .sum();
    answer.check(
        ctx,
        user,
        order.arithmetic_error().is_none()
            && order.total_cents == cart.total_cents
            && units == cart.line_for(flash.id).map_or(0, |l| l.quantity),
        || {
            format!(
                "the deal's order {} totals {} for {units} units",
                order.id, order.total_cents
            )
        },
    )?;
    // Some buyers change their minds: each cancellation puts a unit back, which the
    // waiting crowd races for again, as in a real flash sale.
    if fastrand::u32(..100) < ctx.cancel_percent {
        cancel(ctx, user, FLASH_SALE, order.id).await?;
    }
    Ok(())
}

/// A 409 in a flash sale must say why: out of stock.
fn sold_out(ctx: &Ctx, user: &mut GooseUser, answer: &mut Answer) -> TxResult {
    let problem: Problem = answer.json(ctx, user)?;
    answer.check(
        ctx,
        user,
        problem.status == 409 && problem.kind.contains("conflict"),
        || format!("a sold-out answer should be a conflict problem: {problem:?}"),
    )?;
    let _ = &problem.detail;
    Ok(())
}

// ---------------------------------------------------------------- static

/// The body of the gateway's `location = /static-ok`.
const STATIC_BODY: &str = "ok\n";

async fn static_ok(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let mut answer = send(
        ctx,
        user,
        Call::new(STATIC, "static ok", Method::GET, "/static-ok".into()),
    )
    .await?;
    if answer.body == STATIC_BODY {
        return Ok(());
    }
    let why = format!("the static answer was {:?}", answer.body);
    Err(answer.fail(ctx, user, &why))
}
