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
use crate::orders_log::Event;
use crate::seed::{Product, VICTIM_PASSWORD};

mod admin;
mod browser;
mod flash_sale;
mod shopper;
mod static_ok;
mod stuffer;

// Each journey's steps, for scenario() and for the journeys that share them.
use admin::*;
use browser::*;
use flash_sale::*;
use shopper::*;
use static_ok::*;
use stuffer::*;

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

/// The password every registered shopper uses (the audit logs in as them with it).
pub(crate) const PASSWORD: &str = "loadtest-password";
/// Pages an anonymous browser follows at most.
pub(super) const MAX_PAGES: usize = 3;
pub(super) const PAGE_SIZE: usize = 10;
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
pub(super) struct Session {
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

pub(super) fn session(user: &mut GooseUser) -> &mut Session {
    if user.get_session_data::<Session>().is_none() {
        user.set_session_data(Session::default());
    }
    user.get_session_data_unchecked_mut::<Session>()
}

/// The signed-in session's token; `None` when its sign-up or login failed. A journey that
/// could not sign in ends there: its later steps send nothing, so the one failure is
/// counted once rather than again as a 401 at every step after it.
pub(super) fn signed_in(user: &mut GooseUser) -> Option<String> {
    let token = &session(user).token;
    (!token.is_empty()).then(|| token.clone())
}

/// Writes what this client learnt about one of its orders to the orders log, if the run
/// keeps one.
pub(super) fn note_order(
    ctx: &Ctx,
    user: &mut GooseUser,
    order: Uuid,
    event: Event,
    status: Option<&str>,
) {
    if let Some(log) = &ctx.orders {
        log.record(order, &session(user).username, event, status);
    }
}

pub(super) async fn arrive_anonymous(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    ctx.metrics.users.inc();
    session(user);
    Ok(())
}

pub(super) async fn leave(ctx: &Ctx, _user: &mut GooseUser) -> TxResult {
    ctx.metrics.users.dec();
    Ok(())
}

/// Logs in and returns the token.
/// How often a shopper tries to log in while the gateway answers 429, backing off a little
/// longer each time.
pub(super) const LOGIN_ATTEMPTS: u32 = 8;
pub(super) const LOGIN_BACKOFF: Duration = Duration::from_millis(250);

pub(super) async fn log_in(
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
pub(super) async fn register(ctx: &Ctx, user: &mut GooseUser, scenario: &'static str) -> TxResult {
    ctx.metrics.users.inc();
    sign_up(ctx, user, scenario).await
}

pub(super) async fn sign_up(ctx: &Ctx, user: &mut GooseUser, scenario: &'static str) -> TxResult {
    let username = format!(
        "lt-{}{scenario}-{}",
        ctx.name_prefix,
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
