//! Data for the measurements, created through the services' own API: products with a stock
//! that no run can exhaust, and users with their tokens.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

use super::ports;

pub const ADMIN_USERNAME: &str = "admin";
/// The bench's services listen on loopback only, for the length of the run.
pub const ADMIN_PASSWORD: &str = "bench-admin-dev";
/// Every bench user's password.
pub const PASSWORD: &str = "bench-password";
/// The backend's largest stock: checkouts take stock away, and must never run out.
const STOCK: i64 = 1_000_000_000;
/// How long a request is retried while the service cannot answer it, and how often.
const RETRY_FOR: Duration = Duration::from_secs(30);
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// Registering costs a bcrypt hash and logging in another: spread over threads.
const SEED_THREADS: usize = 4;

/// What the measurements use.
pub struct Seed {
    pub products: Vec<String>,
    pub users: Vec<User>,
}

pub struct User {
    pub username: String,
    pub token: String,
}

/// Creates `products` products and `users` users named after `run` (unique per run: with the
/// cql store, earlier runs' users are still there).
pub fn seed(http: &Client, run: &str, products: usize, users: usize) -> Result<Seed> {
    let admin = admin_token(http)?;
    let products = (0..products)
        .map(|i| create_product(http, &admin, &format!("bench {run} product {i}")))
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = (0..users).map(|i| format!("bench-{run}-{i}")).collect();
    let users = thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(users.div_ceil(SEED_THREADS).max(1))
            .map(|chunk| scope.spawn(move || register_all(http, chunk)))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a seeding thread does not panic"))
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(Seed {
        products,
        users: users.into_iter().flatten().collect(),
    })
}

fn register_all(http: &Client, names: &[String]) -> Result<Vec<User>> {
    names.iter().map(|name| register(http, name)).collect()
}

fn register(http: &Client, username: &str) -> Result<User> {
    let url = format!("{}/user-api/users/register", ports::url(ports::USER));
    let body = json!({
        "username": username,
        "email": format!("{username}@bench.local"),
        "password": PASSWORD,
    });
    // 409: a retried registration whose first attempt went through after all.
    call(
        || http.post(&url).json(&body),
        &[201, 409],
        "registering a bench user",
    )?;
    Ok(User {
        username: username.to_owned(),
        token: token(http, username, PASSWORD)?,
    })
}

/// The user service creates the admin account once its store answers, which can be just
/// after it reports ready: a refused login is retried for a while.
pub fn admin_token(http: &Client) -> Result<String> {
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        match token(http, ADMIN_USERNAME, ADMIN_PASSWORD) {
            Ok(token) => return Ok(token),
            Err(_) if Instant::now() < deadline => thread::sleep(RETRY_EVERY),
            Err(error) => return Err(error.context("the admin's token")),
        }
    }
}

fn token(http: &Client, username: &str, password: &str) -> Result<String> {
    let url = format!("{}/user-api/token", ports::url(ports::USER));
    let form = [("username", username), ("password", password)];
    let body = call(|| http.post(&url).form(&form), &[200], "logging in")?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("a token response without access_token")
}

fn create_product(http: &Client, admin: &str, name: &str) -> Result<String> {
    create_product_at(http, ports::BACKEND, admin, name)
}

/// A product created in the backend listening on `port`.
pub fn create_product_at(http: &Client, port: u16, admin: &str, name: &str) -> Result<String> {
    let url = format!("{}/api/products/", ports::url(port));
    let product = json!({"name": name, "price_cents": 1250, "stock": STOCK});
    let body = call(
        || http.post(&url).bearer_auth(admin).json(&product),
        &[201],
        "creating a product",
    )?;
    body["id"]
        .as_str()
        .map(str::to_owned)
        .context("a product without an id")
}

/// Empties every user's cart, so that a run starts from the same state as the last.
pub fn empty_carts(http: &Client, users: &[User]) -> Result<()> {
    let url = format!("{}/cart-api/cart/", ports::url(ports::CART));
    for user in users {
        call(
            || http.delete(&url).bearer_auth(&user.token),
            &[200],
            "emptying a cart",
        )?;
    }
    Ok(())
}

/// Sends a request, again while the service cannot answer it (a 5xx: with the cql store a
/// statement can time out while the database is busy), and reads the JSON answer.
fn call(request: impl Fn() -> RequestBuilder, accepted: &[u16], what: &str) -> Result<Value> {
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        let retry = Instant::now() < deadline;
        let (status, text) = match request().send() {
            Ok(response) => (
                response.status().as_u16(),
                response.text().unwrap_or_default(),
            ),
            Err(_) if retry => {
                thread::sleep(RETRY_EVERY);
                continue;
            }
            Err(error) => return Err(error).context(what.to_owned()),
        };
        if accepted.contains(&status) {
            return serde_json::from_str(&text)
                .with_context(|| format!("{what}: not JSON: {text}"));
        }
        if status < 500 || !retry {
            bail!("{what}: expected {accepted:?}, got {status}: {text}");
        }
        thread::sleep(RETRY_EVERY);
    }
}
